package tiered

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache/local"
)

// TestHydrationAfterEvictionBecomesCurrent: the local version a
// hydration replaces (untrusted here) is evicted by another process's
// prune while the download runs. No push committed anything, so the
// downloaded version must become the local entry.
func TestHydrationAfterEvictionBecomesCurrent(t *testing.T) {
	ctx := t.Context()
	store := newGatedStore()
	trust, signer := keyPair(t)
	signer.Remote = store
	elsewhere := newTiered(t, nil, signer)
	if _, err := elsewhere.Push(ctx, "k", versionTree(t, "v1"), PushOptions{Description: "v1"}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "cache")
	open := func() *local.Cache {
		l, err := local.Open(root, local.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	pl, other := open(), open()
	// An unsigned local version of k: a trusting Cache downloads over it.
	if _, err := other.Put(ctx, "k", versionTree(t, "v0-untrusted"), "v0"); err != nil {
		t.Fatal(err)
	}
	puller, err := New(pl, Options{Remote: store, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	store.armed.Store(true)
	type out struct {
		h   Hit
		ok  bool
		err error
	}
	done := make(chan out, 1)
	go func() {
		h, ok, err := puller.Pull(ctx, "k", nil, filepath.Join(t.TempDir(), "dir"), PullOptions{})
		done <- out{h, ok, err}
	}()
	select {
	case <-store.reached:
	case r := <-done:
		t.Fatalf("pull ended before its download did: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("download never reached its end")
	}
	// Another process prunes the machine's cache meanwhile.
	if n, err := other.Prune(context.WithoutCancel(ctx), 0, 1); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	close(store.release)
	r := <-done
	if r.err != nil || !r.ok {
		t.Fatalf("pull: %v %v", r.ok, r.err)
	}
	s, ok, err := pl.Lookup(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("after a hydration that no push overtook, the local tier holds no entry for k (ok=%v, err=%v)", ok, err)
	}
	if s.Entry.Description != "v1" {
		t.Fatalf("local entry %q, want v1", s.Entry.Description)
	}
}
