package tiered

import (
	"fmt"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPruneListsEvicted: PruneTiers and PruneScope list the entries they
// evicted, the local tier's first, least recently used first, each with
// its tier, scope, key and bytes, and still call the limits' own OnEvict
// with the stored key.
func TestPruneListsEvicted(t *testing.T) {
	store := memstore.New()
	l := newLocal(t)
	def, err := New(l, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	mainC, err := New(l, Options{Remote: store, Scope: "main"})
	if err != nil {
		t.Fatal(err)
	}
	pushes := []struct {
		c   *Cache
		key string
	}{{mainC, "x"}, {def, "a"}, {def, "b"}}
	for _, p := range pushes {
		push(t, p.c, p.key, p.key)
		time.Sleep(10 * time.Millisecond)
	}
	describe := func(evs []Evicted) string {
		s := ""
		for _, ev := range evs {
			s += fmt.Sprintf("%s:%s/%s ", ev.Tier, ev.Scope, ev.Key)
			if ev.Bytes <= 0 {
				t.Errorf("evicted %+v without its bytes", ev)
			}
		}
		return s
	}
	var hooked []string
	hook := func(it policy.Item) { hooked = append(hooked, it.Key) }

	res, err := def.PruneTiers(t.Context(), policy.Limits{MaxEntries: 1}, policy.Limits{MaxEntries: 2, OnEvict: hook})
	if err != nil || res.Local != 2 || res.Remote != 1 {
		t.Fatalf("PruneTiers = %+v, %v; want 2 local and 1 remote evicted", res, err)
	}
	if got, want := describe(res.Evicted), "local:main/x local:/a remote:main/x "; got != want {
		t.Errorf("PruneTiers listed %q, want %q", got, want)
	}
	if len(hooked) != 1 || hooked[0] != tiercache.ScopedKey("main", "x") {
		t.Errorf("the remote limits' OnEvict got %q, want the stored key of x in main", hooked)
	}

	for _, k := range []string{"y", "z"} {
		push(t, mainC, k, k)
		time.Sleep(10 * time.Millisecond)
	}
	hooked = nil
	res, err = mainC.PruneScope(t.Context(), policy.Limits{MaxEntries: 1, OnEvict: hook}, policy.Limits{MaxEntries: 1})
	if err != nil || res.Local != 1 || res.Remote != 1 {
		t.Fatalf("PruneScope = %+v, %v; want 1 local and 1 remote evicted", res, err)
	}
	if got, want := describe(res.Evicted), "local:main/y remote:main/y "; got != want {
		t.Errorf("PruneScope listed %q, want %q", got, want)
	}
	if len(hooked) != 1 || hooked[0] != tiercache.ScopedKey("main", "y") {
		t.Errorf("the local limits' OnEvict got %q, want the stored key of y in main", hooked)
	}
}
