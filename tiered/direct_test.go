package tiered

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote/memstore"
)

func TestPushRemoteWritesNothingLocally(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := fidelityTree(t, 100)
	res, err := c.pushRemote(t.Context(), "k", dirSource(src), PushOptions{Description: "d"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded || res.Path != "" {
		t.Fatalf("PushRemote = %+v, want an upload and no local path", res)
	}
	if es, err := c.Local().List(t.Context()); err != nil || len(es) != 0 {
		t.Fatalf("local tier after PushRemote: %v, %v; want empty", es, err)
	}
	before, _ := store.Stat(t.Context(), "k")
	time.Sleep(10 * time.Millisecond) // so a new access time differs
	again, err := c.pushRemote(t.Context(), "k", dirSource(src), PushOptions{Description: "d"}, false)
	if err != nil || !again.UploadSkipped {
		t.Fatalf("second PushRemote of the same tree = %+v, %v; want the upload skipped", again, err)
	}
	if after, _ := store.Stat(t.Context(), "k"); !after.LastAccess.After(before.LastAccess) {
		t.Fatalf("skipped upload left the remote access time at %v", after.LastAccess)
	}
	// A normal hydration restores it.
	h, ok, err := c.get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("get: %v, %v", ok, err)
	}
	treetest.AssertEqual(t, src, h.Path)
}

func TestPushRemoteTreeChanging(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := smallTree(t, "v1")
	testHookMeasured = func() {
		if err := os.WriteFile(filepath.Join(src, "late"), []byte("late"), 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookMeasured = nil })
	if _, err := c.pushRemote(t.Context(), "k", dirSource(src), PushOptions{}, false); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Fatalf("PushRemote of a changing tree: %v, want a 'changed' error", err)
	}
	if _, err := store.Stat(t.Context(), "k"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Fatalf("remote holds the key after the failed push: %v", err)
	}
}

func TestPullRemote(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := fidelityTree(t, 100)
	if _, err := c.pushRemote(t.Context(), "deps-1", dirSource(src), PushOptions{}, false); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()

	t.Run("absent dir", func(t *testing.T) {
		dir := filepath.Join(base, "a", "b")
		h, ok, err := c.pullRemoteDir(t.Context(), "deps-1", nil, dir)
		if err != nil || !ok || h.Key != "deps-1" || h.Downloaded == 0 {
			t.Fatalf("PullRemote = %+v, %v, %v", h, ok, err)
		}
		treetest.AssertEqual(t, src, dir)
		want := os.FileMode(0o755)
		if um := fsutil.Umask(); um >= 0 {
			want = 0o777 &^ os.FileMode(um)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != want {
			t.Errorf("restored root mode %v (%v), want %v as for a new directory", fi.Mode(), err, want)
		}
	})
	t.Run("empty dir keeps its mode", func(t *testing.T) {
		dir := filepath.Join(base, "empty")
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.pullRemoteDir(t.Context(), "other", []string{"deps-"}, dir); err != nil || !ok {
			t.Fatalf("restore key: ok=%v err=%v", ok, err)
		}
		treetest.AssertEqual(t, src, dir)
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != dirModeSeen(0o750) {
			t.Errorf("root mode %v (%v), want 0750 kept (%v here)", fi.Mode(), err, dirModeSeen(0o750))
		}
	})
	t.Run("non-empty dir is merged", func(t *testing.T) {
		dir := filepath.Join(base, "full")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "mine.txt"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.pullRemoteDir(t.Context(), "deps-1", nil, dir); err != nil || !ok {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "mine.txt")); err != nil || string(b) != "mine" {
			t.Errorf("a file of DIR not in the tree was disturbed: %q, %v", b, err)
		}
		if err := os.Remove(filepath.Join(dir, "mine.txt")); err != nil {
			t.Fatal(err)
		}
		treetest.AssertEqual(t, src, dir)
	})
	t.Run("miss", func(t *testing.T) {
		dir := filepath.Join(base, "miss")
		if _, ok, err := c.pullRemoteDir(t.Context(), "nope", []string{"nothing-"}, dir); err != nil || ok {
			t.Fatalf("ok=%v err=%v, want a miss", ok, err)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a miss created DIR: %v", err)
		}
	})
	t.Run("corrupt object leaves dir alone", func(t *testing.T) {
		store.Corrupt("deps-1", func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
		dir := filepath.Join(base, "corrupt")
		h, ok, err := c.pullRemoteDir(t.Context(), "deps-1", nil, dir)
		if ok || err != nil || len(h.Refused) != 1 || !errors.Is(h.Refused[0], tiercache.ErrIntegrity) || !IsRemote(h.Refused[0]) {
			t.Fatalf("ok=%v err=%v refused=%v, want a miss refusing one entry for ErrIntegrity", ok, err, h.Refused)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed pull created DIR: %v", err)
		}
	})
	if es, err := c.Local().List(t.Context()); err != nil || len(es) != 0 {
		t.Errorf("local tier after PullRemote: %v, %v; want empty", es, err)
	}
	if left, _ := filepath.Glob(filepath.Join(base, ".tiercache-pull-*")); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
}

// TestLocalHitTouchesRemoteInBackground: a local hit records the access
// remotely without making the caller wait, and Wait waits for it.
func TestLocalHitTouchesRemoteInBackground(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{TouchInterval: -1})
	if _, err := c.Put(t.Context(), "k", smallTree(t, "v"), ""); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	before, _ := store.Stat(t.Context(), "k")
	time.Sleep(10 * time.Millisecond) // so a new access time differs
	if _, ok, err := c.Get(t.Context(), "k"); err != nil || !ok {
		t.Fatalf("local hit: %v, %v", ok, err)
	}
	c.Wait()
	after, _ := store.Stat(t.Context(), "k")
	if !after.LastAccess.After(before.LastAccess) {
		t.Fatalf("remote access time %v not moved past %v by the local hit", after.LastAccess, before.LastAccess)
	}
}

// TestLocalHitsShareTouchThrottle: local hits send the remote at most one
// access record per TouchInterval and key, counted across every process
// of the machine (here two Caches over one local tier), and a push or a
// download counts as one.
func TestLocalHitsShareTouchThrottle(t *testing.T) {
	store := memstore.New()
	c1 := newTiered(t, store, Options{})
	l2, err := local.Open(c1.Local().Root(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := New(l2, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	hit := func(c *Cache) {
		t.Helper()
		if _, ok, err := c.Get(t.Context(), "k"); err != nil || !ok {
			t.Fatalf("local hit: %v, %v", ok, err)
		}
		c.Wait()
	}
	if _, err := c1.Put(t.Context(), "k", smallTree(t, "v"), ""); err != nil {
		t.Fatal(err)
	}
	writes := store.Writes()
	hit(c1)
	hit(c2)
	if n := store.Writes() - writes; n != 0 {
		t.Fatalf("local hits right after the push sent %d access records, want 0", n)
	}

	// An hour later, the first hit of any process records the access,
	// and the others on the machine then leave it at that.
	if err := c1.Local().SetRemoteAccess("k", time.Now().Add(-DefaultTouchInterval-time.Minute)); err != nil {
		t.Fatal(err)
	}
	before, _ := store.Stat(t.Context(), "k")
	time.Sleep(10 * time.Millisecond) // so a new access time differs
	hit(c2)
	hit(c1)
	hit(c2)
	if n := store.Writes() - writes; n != 1 {
		t.Fatalf("three local hits an hour after the last record sent %d access records, want 1", n)
	}
	if after, _ := store.Stat(t.Context(), "k"); !after.LastAccess.After(before.LastAccess) {
		t.Fatalf("remote access time %v not moved past %v", after.LastAccess, before.LastAccess)
	}
	if at, _ := l2.RemoteAccess("k"); time.Since(at) > time.Minute {
		t.Fatalf("the access record was not noted locally: last at %v", at)
	}

	// A record dated in the future (the clock went back) is stale.
	if err := c1.Local().SetRemoteAccess("k", time.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	writes = store.Writes()
	hit(c1)
	if n := store.Writes() - writes; n != 1 {
		t.Fatalf("a local hit after a record dated tomorrow sent %d access records, want 1", n)
	}

	// Downloading counts as an access too.
	if err := c1.Local().Invalidate(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	if h, ok, err := c2.Restore(t.Context(), "k", nil); err != nil || !ok || h.Tier != tiercache.TierRemote {
		t.Fatalf("hydration: %+v, %v, %v", h, ok, err)
	}
	writes = store.Writes()
	hit(c1)
	if n := store.Writes() - writes; n != 0 {
		t.Fatalf("a local hit right after a download sent %d access records, want 0", n)
	}
}

// pullRemoteDir is pullRemote into one directory.
func (c *Cache) pullRemoteDir(ctx context.Context, key string, prefixes []string, dir string) (Hit, bool, error) {
	return c.pullRemote(ctx, key, prefixes, &target{paths: []string{dir}, given: []string{dir}}, false)
}
