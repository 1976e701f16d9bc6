package tiered

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// errDown stands for any failure of the remote: unreachable, refusing.
var errDown = errors.New("connection refused")

// faultyStore wraps a memstore.Store: while down, every call fails; failPut
// makes Put fail after reading part of the archive, as a connection
// reset mid-upload would.
type faultyStore struct {
	*memstore.Store
	down    atomic.Bool
	failPut atomic.Bool
	calls   atomic.Int64
	opens   atomic.Int64 // Open calls, failed or not
}

func (f *faultyStore) fault() error {
	f.calls.Add(1)
	if f.down.Load() {
		return errDown
	}
	return nil
}

func (f *faultyStore) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	f.opens.Add(1)
	if err := f.fault(); err != nil {
		return nil, remote.Meta{}, err
	}
	return f.Store.Open(ctx, key)
}

func (f *faultyStore) Stat(ctx context.Context, key string) (remote.Meta, error) {
	if err := f.fault(); err != nil {
		return remote.Meta{}, err
	}
	return f.Store.Stat(ctx, key)
}

func (f *faultyStore) Put(ctx context.Context, meta remote.Meta, r io.Reader) (remote.Meta, error) {
	if err := f.fault(); err != nil {
		return remote.Meta{}, err
	}
	if f.failPut.Load() {
		_, _ = io.CopyN(io.Discard, r, 100)
		return remote.Meta{}, errDown
	}
	return f.Store.Put(ctx, meta, r)
}

func (f *faultyStore) List(ctx context.Context, prefix string) ([]remote.Meta, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

func (f *faultyStore) Keys(ctx context.Context, prefix string) ([]remote.KeyTime, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.Store.Keys(ctx, prefix)
}

func (f *faultyStore) Touch(ctx context.Context, key string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.Touch(ctx, key)
}

func (f *faultyStore) Delete(ctx context.Context, key string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *faultyStore) DeleteVersion(ctx context.Context, key string, v remote.Meta) (bool, error) {
	if err := f.fault(); err != nil {
		return false, err
	}
	return f.Store.DeleteVersion(ctx, key, v)
}

func (f *faultyStore) Prune(ctx context.Context, l policy.Limits) (int, error) {
	if err := f.fault(); err != nil {
		return 0, err
	}
	return f.Store.Prune(ctx, l)
}

func newFaulty(t *testing.T) (*faultyStore, *Cache) {
	t.Helper()
	f := &faultyStore{Store: memstore.New()}
	c, err := New(newLocal(t), Options{Remote: f, TouchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// TestPutSurvivesRemoteFailure: a remote that is down, or that fails
// mid-upload, leaves the tree stored locally, with the failure in
// RemoteErr and no error.
func TestPutSurvivesRemoteFailure(t *testing.T) {
	for name, breakIt := range map[string]func(*faultyStore){
		"down":             func(f *faultyStore) { f.down.Store(true) },
		"fails mid-upload": func(f *faultyStore) { f.failPut.Store(true) },
	} {
		t.Run(name, func(t *testing.T) {
			f, c := newFaulty(t)
			breakIt(f)
			src := smallTree(t, "v1")
			res, err := c.PutResult(t.Context(), "k", src, "")
			if err != nil {
				t.Fatalf("PutResult: %v, want the remote's failure in RemoteErr only", err)
			}
			if !IsRemote(res.RemoteErr) || !errors.Is(res.RemoteErr, errDown) || res.Uploaded {
				t.Fatalf("RemoteErr = %v, Uploaded = %v; want the remote's failure and no upload", res.RemoteErr, res.Uploaded)
			}
			if _, err := f.Store.Stat(t.Context(), "k"); !errors.Is(err, tiercache.ErrNotFound) {
				t.Errorf("the remote holds the key after a failed upload: %v", err)
			}
			p, ok, err := c.Local().Get(t.Context(), "k")
			if err != nil || !ok {
				t.Fatalf("local Get after the put: %v %v", ok, err)
			}
			treetest.AssertEqual(t, src, p)
		})
	}
}

// TestPutLocalFailureIsNotRemote: a source that is not there fails the
// put whatever the remote does, and is not a remote failure.
func TestPutLocalFailureIsNotRemote(t *testing.T) {
	_, c := newFaulty(t)
	_, err := c.PutResult(t.Context(), "k", t.TempDir()+"/missing", "")
	if err == nil || IsRemote(err) {
		t.Fatalf("PutResult of a missing dir: %v, want a local error", err)
	}
}

// TestRestoreRemoteDown: a remote that fails makes the exact key a miss
// reported as the remote's failure after one attempt, and restore keys
// are still found in the local tier, with the failure attached.
func TestRestoreRemoteDown(t *testing.T) {
	f, c := newFaulty(t)
	src := smallTree(t, "v1")
	if _, err := c.Put(t.Context(), "deps-1", src, ""); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	f.calls.Store(0)
	_, ok, err := c.Restore(t.Context(), "other", []string{"nothing-", "more-"})
	if ok || !IsRemote(err) || !errors.Is(err, errDown) {
		t.Fatalf("Restore with the remote down: ok=%v err=%v, want a miss with the remote's failure", ok, err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d remote calls after the remote failed once, want 1", n)
	}
	h, ok, err := c.Restore(t.Context(), "other", []string{"deps-"})
	if err != nil || !ok || h.Key != "deps-1" || h.Tier != tiercache.TierLocal {
		t.Fatalf("Restore of a local restore key with the remote down = %+v, %v, %v", h, ok, err)
	}
	if !IsRemote(h.RemoteErr) {
		t.Errorf("Hit.RemoteErr = %v, want the remote's failure", h.RemoteErr)
	}
	treetest.AssertEqual(t, src, h.Path)

	// Straight from the remote: nothing else to try.
	_, ok, err = c.pullRemoteDir(t.Context(), "deps-1", []string{"deps-"}, t.TempDir()+"/d")
	if ok || !IsRemote(err) {
		t.Fatalf("PullRemote with the remote down: ok=%v err=%v", ok, err)
	}
	_, err = c.pushRemote(t.Context(), "deps-2", dirSource(src), PushOptions{}, false)
	if !IsRemote(err) || !strings.Contains(err.Error(), errDown.Error()) {
		t.Fatalf("PushRemote with the remote down: %v", err)
	}
}

// TestRemoveRemoteDown: with the remote down, Invalidate fails as the
// remote's failure (IsRemote) and keeps the local entry, so a key is
// never left stored remotely alone to be hydrated again; the prunes of
// the remote fail likewise, after the local tier was pruned as asked.
func TestRemoveRemoteDown(t *testing.T) {
	f, c := newFaulty(t)
	for _, k := range []string{"a", "b"} {
		if _, err := c.Put(t.Context(), k, smallTree(t, k), ""); err != nil {
			t.Fatal(err)
		}
	}
	f.down.Store(true)
	if err := c.Invalidate(t.Context(), "a"); !IsRemote(err) || !errors.Is(err, errDown) {
		t.Errorf("Invalidate with the remote down: %v; want the remote's failure", err)
	}
	if _, ok, err := c.local.Peek(t.Context(), "a"); err != nil || !ok {
		t.Errorf("the local entry went though the remote one stays: %v, %v", ok, err)
	}
	for name, prune := range map[string]func(context.Context, policy.Limits, policy.Limits) (PruneResult, error){
		"PruneTiers": c.PruneTiers, "PruneScope": c.PruneScope,
	} {
		_, err := prune(t.Context(), policy.Limits{}, policy.Limits{MaxEntries: 1})
		if !errors.Is(err, errDown) {
			t.Errorf("%s of the remote with it down: %v; want its failure", name, err)
		}
	}
	f.down.Store(false)
	if err := c.Invalidate(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Store.Stat(t.Context(), "a"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("the remote still holds a once back up: %v", err)
	}
}
