package tiered

import (
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestRestoreKeyOrderSameOnEveryMachine: two machines (two local tiers
// over one remote) pick the same entry for a restore key, after a re-push
// whose upload was skipped and after a hydration, both of which date the
// local entry later than the remote one.
func TestRestoreKeyOrderSameOnEveryMachine(t *testing.T) {
	store := memstore.New()
	pusher := newTiered(t, store, Options{})
	fresh := newTiered(t, store, Options{})
	srcA, srcB := smallTree(t, "a"), smallTree(t, "b")
	for _, p := range []struct{ key, src string }{{"k-a", srcA}, {"k-b", srcB}} {
		if _, err := pusher.Put(t.Context(), p.key, p.src, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The job re-runs: same tree, so nothing is uploaded, but the local
	// entry of k-a is now newer than k-b's.
	res, err := pusher.PutResult(t.Context(), "k-a", srcA, "")
	if err != nil || !res.UploadSkipped {
		t.Fatalf("re-push of k-a = %+v, %v; want the upload skipped", res, err)
	}

	restore := func(name string, c *Cache) string {
		t.Helper()
		h, ok, err := c.Restore(t.Context(), "k-zzz", []string{"k-"})
		if err != nil || !ok {
			t.Fatalf("%s: Restore = %v, %v; want a hit", name, ok, err)
		}
		tag, err := treetest.CheckSmall(h.Path)
		if err != nil {
			t.Fatal(err)
		}
		if tag != h.Key[len("k-"):] {
			t.Fatalf("%s: restored %s holds tree %q", name, h.Key, tag)
		}
		return h.Key
	}
	onPusher, onFresh := restore("pusher", pusher), restore("fresh machine", fresh)
	if onPusher != onFresh {
		t.Fatalf("restore key k- picks %s on the pusher and %s on a fresh machine", onPusher, onFresh)
	}
	// Uploaded last: the newest for every machine.
	if onFresh != "k-b" {
		t.Fatalf("restore key k- picks %s, want k-b, the last one uploaded", onFresh)
	}

	// A hydration dates the local entry now; it must not win either.
	other := newTiered(t, store, Options{})
	if _, ok, err := other.Get(t.Context(), "k-a"); err != nil || !ok {
		t.Fatalf("hydrating k-a: %v, %v", ok, err)
	}
	if got := restore("machine that hydrated k-a", other); got != "k-b" {
		t.Fatalf("after hydrating k-a, restore key k- picks %s, want k-b", got)
	}
}
