package policy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
)

func items(sizes ...int64) []Item {
	base := time.Unix(1_700_000_000, 0)
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
			v, err := Victims(c.items, c.l)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(v); got != c.want {
				t.Fatalf("victims = %q, want %q", got, c.want)
			}
		})
	}
}

func TestVictimsOrderIndependentOfInput(t *testing.T) {
	in := items(1, 1, 1, 1)
	rev := []Item{in[3], in[1], in[0], in[2]}
	v, err := Victims(rev, Limits{MaxEntries: 2})
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
	v, _ := Victims(in, Limits{MaxEntries: 1})
	if keys(v) != "a " {
		t.Fatalf("victims = %q", keys(v))
	}
}

func TestNegativeLimits(t *testing.T) {
	for _, l := range []Limits{{MaxEntries: -1}, {MaxBytes: -1}} {
		if _, err := Victims(items(1), l); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%+v: err = %v", l, err)
		}
	}
}

func BenchmarkVictims100k(b *testing.B) {
	in := make([]Item, 100_000)
	base := time.Now()
	for i := range in {
		in[i] = Item{Key: fmt.Sprint(i), Size: 1000, LastAccess: base.Add(time.Duration((i*7919)%100_000) * time.Second)}
	}
	for b.Loop() {
		if _, err := Victims(in, Limits{MaxEntries: 50_000}); err != nil {
			b.Fatal(err)
		}
	}
}
