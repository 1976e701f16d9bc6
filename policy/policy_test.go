package policy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
)

// base is when items(...)[0] was last accessed.
var base = time.Unix(1_700_000_000, 0)

// testNow is a "now" at which no item of items(...) is stale for any
// MaxAge the tests use, unless they ask for one.
var testNow = base.Add(time.Hour)

func items(sizes ...int64) []Item {
	var out []Item
	for i, s := range sizes {
		// Item i was accessed i minutes after base: item 0 is the LRU.
		out = append(out, Item{Key: fmt.Sprintf("k%d", i), Size: s, LastAccess: base.Add(time.Duration(i) * time.Minute)})
	}
	return out
}

func keys(v []Item) string {
	s := ""
	for _, it := range v {
		s += it.Key + " "
	}
	return s
}

func TestVictims(t *testing.T) {
	cases := []struct {
		name  string
		items []Item
		l     Limits
		want  string
	}{
		{"unlimited", items(10, 10, 10), Limits{}, ""},
		{"within", items(10, 10, 10), Limits{MaxEntries: 3, MaxBytes: 30}, ""},
		{"entries", items(10, 10, 10), Limits{MaxEntries: 1}, "k0 k1 "},
		{"bytes", items(10, 20, 30), Limits{MaxBytes: 35}, "k0 k1 "},
		{"both, bytes binding", items(100, 1, 1, 1), Limits{MaxEntries: 3, MaxBytes: 5}, "k0 "},
		{"both, entries binding", items(1, 1, 1, 1), Limits{MaxEntries: 2, MaxBytes: 100}, "k0 k1 "},
		{"one huge newest", items(1, 1, 100), Limits{MaxBytes: 50}, "k0 k1 k2 "},
		{"empty", nil, Limits{MaxEntries: 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Victims(c.items, c.l, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(v); got != c.want {
				t.Fatalf("victims = %q, want %q", got, c.want)
			}
		})
	}
}

// TestVictimsMaxAge: the items unused for longer than MaxAge go, and the
// other limits then evict from the rest as before; an item is evicted if
// any limit says so.
func TestVictimsMaxAge(t *testing.T) {
	// Item i was last accessed i minutes after base; at now, item 0 is
	// 10 minutes old and item 4 six.
	now := base.Add(10 * time.Minute)
	cases := []struct {
		name string
		l    Limits
		now  time.Time
		want string
	}{
		{"none old enough", Limits{MaxAge: time.Hour}, now, ""},
		{"two stale", Limits{MaxAge: 8*time.Minute + 30*time.Second}, now, "k0 k1 "},
		{"exactly MaxAge old stays", Limits{MaxAge: 8 * time.Minute}, now, "k0 k1 "},
		{"all stale", Limits{MaxAge: time.Minute}, now, "k0 k1 k2 k3 k4 "},
		{"age binding", Limits{MaxAge: 8*time.Minute + 30*time.Second, MaxEntries: 4}, now, "k0 k1 "},
		{"entries binding", Limits{MaxAge: 9*time.Minute + 30*time.Second, MaxEntries: 2}, now, "k0 k1 k2 "},
		{"bytes binding", Limits{MaxAge: 9*time.Minute + 30*time.Second, MaxBytes: 25}, now, "k0 k1 k2 "},
		{"accessed after now", Limits{MaxAge: time.Second}, base.Add(-time.Hour), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Victims(items(10, 10, 10, 10, 10), c.l, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(v); got != c.want {
				t.Fatalf("victims = %q, want %q", got, c.want)
			}
		})
	}
	// Whatever the input order.
	in := items(1, 1, 1)
	v, _ := Victims([]Item{in[2], in[0], in[1]}, Limits{MaxAge: 8*time.Minute + 30*time.Second}, now)
	if keys(v) != "k0 k1 " {
		t.Fatalf("shuffled: victims = %q", keys(v))
	}
}

func TestLimitsUnlimited(t *testing.T) {
	if !(Limits{}).Unlimited() {
		t.Error("zero Limits is not unlimited")
	}
	if (Limits{MaxAge: time.Hour}).Unlimited() {
		t.Error("a MaxAge alone counts as unlimited")
	}
}

func TestVictimsOrderIndependentOfInput(t *testing.T) {
	in := items(1, 1, 1, 1)
	rev := []Item{in[3], in[1], in[0], in[2]}
	v, err := Victims(rev, Limits{MaxEntries: 2}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(v); got != "k0 k1 " {
		t.Fatalf("victims = %q", got)
	}
	if rev[0].Key != "k3" {
		t.Fatal("input was reordered")
	}
}

func TestVictimsTieBreakByKey(t *testing.T) {
	now := time.Now()
	in := []Item{{Key: "b", LastAccess: now}, {Key: "a", LastAccess: now}}
	v, _ := Victims(in, Limits{MaxEntries: 1}, now)
	if keys(v) != "a " {
		t.Fatalf("victims = %q", keys(v))
	}
}

func TestNegativeLimits(t *testing.T) {
	for _, l := range []Limits{{MaxEntries: -1}, {MaxBytes: -1}, {MaxAge: -time.Second}} {
		if _, err := Victims(items(1), l, testNow); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%+v: err = %v", l, err)
		}
	}
}

func BenchmarkVictims100k(b *testing.B) {
	in := make([]Item, 100_000)
	for i := range in {
		in[i] = Item{Key: fmt.Sprint(i), Size: 1000, LastAccess: base.Add(time.Duration((i*7919)%100_000) * time.Second)}
	}
	for b.Loop() {
		if _, err := Victims(in, Limits{MaxEntries: 50_000, MaxAge: 24 * time.Hour}, base); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVictimsNegativeSize: a negative size would lower the total and
// keep entries that must go; it is refused.
func TestVictimsNegativeSize(t *testing.T) {
	if _, err := Victims(items(10, -70, 10), Limits{MaxBytes: 15}, testNow); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("Victims with a negative size: %v; want ErrInvalidArgument", err)
	}
}
