package tiered

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// The CI loop over a remote entry whose archive is damaged behind an
// intact manifest: pull (refused), build, push the same tree, pull on
// another machine. The push must store the tree again, or the key
// misses for every job until someone removes it by hand.

var damages = map[string]func([]byte) []byte{
	"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b },
	"truncated":    func(b []byte) []byte { return b[:len(b)-7] },
}

// refusalJob is how one job restores and saves key: through the local
// tier (Pull, Push), straight to the remote (NoLocal), or as a
// tiercache.Backend (Get, Put).
type refusalJob struct {
	opts Options
	pull func(c *Cache, t *testing.T, key string) (Hit, bool, error)
	push func(c *Cache, t *testing.T, key, src string) (PutResult, error)
}

var refusalJobs = map[string]refusalJob{
	"pull": {
		pull: func(c *Cache, t *testing.T, key string) (Hit, bool, error) {
			return c.Pull(t.Context(), key, nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
		},
		push: func(c *Cache, t *testing.T, key, src string) (PutResult, error) {
			return c.Push(t.Context(), key, src, PushOptions{})
		},
	},
	"no-local": {
		opts: Options{NoLocal: true},
		pull: func(c *Cache, t *testing.T, key string) (Hit, bool, error) {
			return c.Pull(t.Context(), key, nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
		},
		push: func(c *Cache, t *testing.T, key, src string) (PutResult, error) {
			return c.Push(t.Context(), key, src, PushOptions{})
		},
	},
	"get": {
		pull: func(c *Cache, t *testing.T, key string) (Hit, bool, error) {
			return c.Restore(t.Context(), key, nil)
		},
		push: func(c *Cache, t *testing.T, key, src string) (PutResult, error) {
			return c.PutResult(t.Context(), key, src, "")
		},
	},
}

// TestRefusedEntryReplacedByNextPush: a writable job's pull refuses the
// damaged entry and removes it, saying so; the job's push of the same
// tree uploads it; the next job's pull restores it.
func TestRefusedEntryReplacedByNextPush(t *testing.T) {
	for dname, damage := range damages {
		for jname, job := range refusalJobs {
			t.Run(dname+"/"+jname, func(t *testing.T) {
				store := memstore.New()
				src := smallTree(t, "r")
				if _, err := newTiered(t, store, Options{}).Push(t.Context(), "k", src, PushOptions{}); err != nil {
					t.Fatal(err)
				}
				store.Corrupt("k", damage)

				c := newTiered(t, store, job.opts)
				h, ok, err := job.pull(c, t, "k")
				if ok || err != nil || len(h.Refused) != 1 || !errors.Is(h.Refused[0], tiercache.ErrIntegrity) {
					t.Fatalf("pull of the damaged entry: ok=%v err=%v refused=%v; want a miss refusing it", ok, err, h.Refused)
				}
				var ce *CorruptError
				if !errors.As(h.Refused[0], &ce) || !ce.Removed || ce.Kept != nil {
					t.Errorf("refusal %v: want a *CorruptError saying the entry was removed", h.Refused[0])
				}
				if _, err := store.Stat(t.Context(), "k"); !errors.Is(err, tiercache.ErrNotFound) {
					t.Errorf("the damaged entry is still stored after a writable pull refused it: %v", err)
				}

				res, err := job.push(c, t, "k", src)
				if err != nil || res.RemoteErr != nil || !res.Uploaded || res.UploadSkipped {
					t.Fatalf("push of the same tree: uploaded=%v skipped=%v remote err=%v err=%v; want it uploaded", res.Uploaded, res.UploadSkipped, res.RemoteErr, err)
				}
				dir := filepath.Join(t.TempDir(), "next")
				if _, ok, err := newTiered(t, store, Options{}).Pull(t.Context(), "k", nil, dir, PullOptions{}); err != nil || !ok {
					t.Fatalf("next job's pull: ok=%v err=%v; want a hit", ok, err)
				}
				treetest.AssertEqual(t, src, dir)
			})
		}
	}
}

// TestRefusedEntryKeptReadOnly: a read-only job refuses the damaged entry
// and sends no write: the entry stays, and the refusal says why.
func TestRefusedEntryKeptReadOnly(t *testing.T) {
	for _, noLocal := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-local=%v", noLocal), func(t *testing.T) {
			store := memstore.New()
			if _, err := newTiered(t, store, Options{}).Push(t.Context(), "k", smallTree(t, "r"), PushOptions{}); err != nil {
				t.Fatal(err)
			}
			store.Corrupt("k", damages["flipped byte"])
			writes := store.Writes()
			ro := newTiered(t, nil, Options{Remote: remote.ReadOnly(store), ReadOnly: true, NoLocal: noLocal})
			h, ok, err := ro.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
			if ok || err != nil || len(h.Refused) != 1 {
				t.Fatalf("read-only pull: ok=%v err=%v refused=%v; want a miss refusing the entry", ok, err, h.Refused)
			}
			var ce *CorruptError
			if !errors.As(h.Refused[0], &ce) || ce.Removed || !errors.Is(ce.Kept, tiercache.ErrReadOnly) {
				t.Errorf("refusal %v: want a *CorruptError kept for read-only mode", h.Refused[0])
			}
			if errors.Is(h.Refused[0], tiercache.ErrReadOnly) {
				t.Errorf("refusal %v wraps ErrReadOnly: callers would take the entry's refusal for a refused write", h.Refused[0])
			}
			if n := store.Writes(); n != writes {
				t.Errorf("a read-only pull sent %d writes", n-writes)
			}
			if _, err := store.Stat(t.Context(), "k"); err != nil {
				t.Errorf("the entry is gone after a read-only pull: %v", err)
			}
		})
	}
}

// replacingStore pushes a new version of the key right after Open served
// the damaged one: the pull that refuses the old version must not remove
// the new one.
type replacingStore struct {
	*memstore.Store
	replace func()
}

func (s *replacingStore) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	rc, m, err := s.Store.Open(ctx, key)
	if s.replace != nil {
		s.replace()
		s.replace = nil
	}
	return rc, m, err
}

func TestRefusedEntryReplacedMeanwhileKept(t *testing.T) {
	store := memstore.New()
	w := newTiered(t, store, Options{})
	if _, err := w.Push(t.Context(), "k", smallTree(t, "old"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	store.Corrupt("k", damages["flipped byte"])
	src := smallTree(t, "new")
	rs := &replacingStore{Store: store, replace: func() {
		if _, err := w.Push(t.Context(), "k", src, PushOptions{}); err != nil {
			t.Error(err)
		}
	}}
	c := newTiered(t, nil, Options{Remote: rs})
	h, ok, err := c.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
	if ok || err != nil || len(h.Refused) != 1 {
		t.Fatalf("pull: ok=%v err=%v refused=%v; want the damaged version refused", ok, err, h.Refused)
	}
	var ce *CorruptError
	if !errors.As(h.Refused[0], &ce) || ce.Removed || ce.Kept == nil {
		t.Errorf("refusal %v: want a *CorruptError that removed nothing", h.Refused[0])
	}
	dir := filepath.Join(t.TempDir(), "next")
	if _, ok, err := newTiered(t, store, Options{}).Pull(t.Context(), "k", nil, dir, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull of the new version: ok=%v err=%v; want a hit", ok, err)
	}
	treetest.AssertEqual(t, src, dir)
}

// sizeCheckStore is a memstore whose OpenVersion checks the archive's
// size against the manifest, as the S3 store's HEAD of the data object
// does.
type sizeCheckStore struct{ *memstore.Store }

func (s sizeCheckStore) OpenVersion(ctx context.Context, key string) (remote.Base, error) {
	b, err := s.Store.OpenVersion(ctx, key)
	if err != nil {
		return b, err
	}
	rc, _, err := s.Store.Open(ctx, key)
	if err != nil {
		return remote.Base{}, err
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return remote.Base{}, err
	}
	if n != b.Meta.ArchiveSize {
		return remote.Base{}, fmt.Errorf("%w: data of key %q is %d bytes, its manifest says %d", tiercache.ErrIntegrity, key, n, b.Meta.ArchiveSize)
	}
	return b, nil
}

// TestPushReplacesArchiveOfWrongSize: a push of the same tree uploads it
// when the stored archive is not of the size its manifest records, even
// with no pull before it to refuse the entry.
func TestPushReplacesArchiveOfWrongSize(t *testing.T) {
	for _, v := range []struct{ noLocal, ifAbsent bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		noLocal := v.noLocal
		t.Run(fmt.Sprintf("no-local=%v/if-absent=%v", v.noLocal, v.ifAbsent), func(t *testing.T) {
			mem := memstore.New()
			store := sizeCheckStore{mem}
			src := smallTree(t, "r")
			if _, err := newTiered(t, nil, Options{Remote: store}).Push(t.Context(), "k", src, PushOptions{}); err != nil {
				t.Fatal(err)
			}
			again, err := newTiered(t, nil, Options{Remote: store, NoLocal: noLocal}).Push(t.Context(), "k", src, PushOptions{IfAbsent: v.ifAbsent})
			if err != nil || again.Uploaded || !again.UploadSkipped && again.AlreadyIn != tiercache.TierRemote {
				t.Fatalf("push of an identical tree over an intact entry: %+v, %v; want no upload", again, err)
			}
			mem.Corrupt("k", damages["truncated"])
			res, err := newTiered(t, nil, Options{Remote: store, NoLocal: noLocal}).Push(t.Context(), "k", src, PushOptions{IfAbsent: v.ifAbsent})
			if err != nil || res.RemoteErr != nil || !res.Uploaded || res.UploadSkipped {
				t.Fatalf("push over a truncated archive: uploaded=%v skipped=%v remote err=%v err=%v; want it uploaded", res.Uploaded, res.UploadSkipped, res.RemoteErr, err)
			}
			dir := filepath.Join(t.TempDir(), "next")
			if _, ok, err := newTiered(t, mem, Options{}).Pull(t.Context(), "k", nil, dir, PullOptions{}); err != nil || !ok {
				t.Fatalf("next pull: ok=%v err=%v; want a hit", ok, err)
			}
			treetest.AssertEqual(t, src, dir)
		})
	}
}

// TestRefusedEntryKeptInReadScope: an entry of a read scope is refused
// but never removed: the job does not write that scope.
func TestRefusedEntryKeptInReadScope(t *testing.T) {
	store := memstore.New()
	if _, err := newTiered(t, store, Options{Scope: "main"}).Push(t.Context(), "k", smallTree(t, "r"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	stored := tiercache.ScopedKey("main", "k")
	store.Corrupt(stored, damages["flipped byte"])
	c := newTiered(t, store, Options{Scope: "pr", ReadScopes: []string{"main"}})
	h, ok, err := c.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
	if ok || err != nil || len(h.Refused) != 1 {
		t.Fatalf("pull: ok=%v err=%v refused=%v; want the read scope's entry refused", ok, err, h.Refused)
	}
	var ce *CorruptError
	if !errors.As(h.Refused[0], &ce) || ce.Removed || !errors.Is(ce.Kept, tiercache.ErrReadOnly) {
		t.Errorf("refusal %v: want a *CorruptError kept as read-only", h.Refused[0])
	}
	if _, err := store.Stat(t.Context(), stored); err != nil {
		t.Errorf("the read scope's entry is gone: %v", err)
	}
}
