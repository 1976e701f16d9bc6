package tiered

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPruneUsesLatestUseAnywhere: Prune ranks a key by its latest use in
// either tier, so a key another machine keeps using stays, though this
// machine last used it before the others.
func TestPruneUsesLatestUseAnywhere(t *testing.T) {
	store := memstore.New()
	a := newTiered(t, store, Options{TouchInterval: -1})
	push(t, a, "k1", "k1")
	time.Sleep(20 * time.Millisecond)
	push(t, a, "k2", "k2")
	time.Sleep(20 * time.Millisecond)
	b := newTiered(t, store, Options{TouchInterval: -1})
	if _, ok, err := b.Get(t.Context(), "k1"); err != nil || !ok {
		t.Fatalf("B's Get: %v, %v", ok, err)
	}
	b.Wait()
	n, err := a.Prune(t.Context(), 1, 0)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 evicted", n, err)
	}
	if _, err := store.Stat(t.Context(), "k1"); err != nil {
		t.Errorf("k1, which B used last, was evicted from the remote: %v", err)
	}
	if _, err := store.Stat(t.Context(), "k2"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("k2, the least recently used anywhere: %v; want it evicted", err)
	}
}

// TestPruneKeepsPutMeanwhile: a key put again between Prune's listing
// and its eviction keeps the new version in both tiers.
func TestPruneKeepsPutMeanwhile(t *testing.T) {
	store := memstore.New()
	a := newTiered(t, store, Options{})
	push(t, a, "k1", "old")
	time.Sleep(20 * time.Millisecond)
	push(t, a, "k2", "k2")
	other := newTiered(t, store, Options{})
	meddled := false
	testHookPruneListed = func(tiercache.Tier) {
		if !meddled {
			meddled = true
			push(t, other, "k1", "new")
			push(t, a, "k1", "new")
		}
	}
	t.Cleanup(func() { testHookPruneListed = nil })
	if _, err := a.Prune(t.Context(), 1, 0); err != nil {
		t.Fatal(err)
	}
	if !meddled {
		t.Fatal("the hook did not run between the listing and the eviction")
	}
	if _, tag, ok := pullTag(t, dropLocal(t, a), "k1", nil, PullOptions{}); !ok || tag != "new" {
		t.Errorf("k1 from the remote after the prune: %v, %q; want the version put meanwhile", ok, tag)
	}
	if _, tag, ok := pullTag(t, a, "k1", nil, PullOptions{}); !ok || tag != "new" {
		t.Errorf("k1 from the local tier after the prune: %v, %q; want the version put meanwhile", ok, tag)
	}
}

// failingList is a store whose List fails, as an unreachable server's.
type failingList struct{ remote.Store }

func (failingList) List(context.Context, string) ([]remote.Meta, error) {
	return nil, errors.New("connection refused")
}

// remoteDown pushes keys, in order, through a Cache over a local tier
// and store, and returns a Cache over the same local tier whose remote's
// List fails, and the local tier.
func remoteDown(t *testing.T, store *memstore.Store, keys ...string) (*Cache, *local.Cache) {
	t.Helper()
	l := newLocal(t)
	up, err := New(l, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		push(t, up, k, k)
		time.Sleep(20 * time.Millisecond) // distinct last uses
	}
	down, err := New(l, Options{Remote: failingList{store}})
	if err != nil {
		t.Fatal(err)
	}
	return down, l
}

// TestPruneRemoteDown: with the remote unreachable, Prune still bounds
// the local tier by its own entries, and reports the remote's failure.
func TestPruneRemoteDown(t *testing.T) {
	store := memstore.New()
	down, l := remoteDown(t, store, "k1", "k2")
	n, err := down.Prune(t.Context(), 1, 0)
	if n != 1 || !IsRemote(err) {
		t.Fatalf("Prune = %d, %v; want 1 local eviction and a remote error", n, err)
	}
	es, err := l.List(t.Context())
	if err != nil || len(es) != 1 || es[0].Key != "k2" {
		t.Fatalf("local tier after the prune: %v, %v; want k2 alone", es, err)
	}
	if _, err := store.Stat(t.Context(), "k1"); err != nil {
		t.Errorf("the remote, unlisted, lost k1: %v", err)
	}
}

// TestListRemoteDown: with the remote unreachable, List and Stats still
// give the local entries, with the remote's failure.
func TestListRemoteDown(t *testing.T) {
	down, _ := remoteDown(t, memstore.New(), "k1")
	es, err := down.List(t.Context())
	if !IsRemote(err) || len(es) != 1 || es[0].Key != "k1" {
		t.Errorf("List = %v, %v; want k1 and a remote error", es, err)
	}
	st, err := down.Stats(t.Context())
	if !IsRemote(err) || st.Entries != 1 {
		t.Errorf("Stats = %+v, %v; want 1 entry and a remote error", st, err)
	}
}

// TestNewValidatesOptions: archive settings out of range are refused by
// New, not by the first Put or Get.
func TestNewValidatesOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"level":   {Write: archive.WriteOptions{Level: 99}},
		"limit":   {Extract: archive.ExtractOptions{MaxBytes: -5}},
		"workers": {Write: archive.WriteOptions{Concurrency: -1}},
	} {
		if _, err := New(newLocal(t), opts); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: %v; want ErrInvalidArgument", name, err)
		}
	}
}
