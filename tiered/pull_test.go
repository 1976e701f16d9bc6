package tiered

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// TestPullIntoDir: Pull through the local tier hydrates, copies into DIR
// with progress reported as "copy", keeps an existing DIR's own mode and
// mtime, and with Link shares the cached files' inodes.
func TestPullIntoDir(t *testing.T) {
	var mu sync.Mutex
	copied := map[string]int64{} // key -> the highest Done of its copy
	var copyTotal int64
	progress := func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Op == "copy" {
			copied[p.Key] = max(copied[p.Key], p.Done)
			copyTotal = p.Total
		}
	}
	f, _ := newFaulty(t) // a working remote until told otherwise
	c, err := New(newLocal(t), Options{Remote: f, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	src := smallTree(t, "p")
	res, err := c.Push(t.Context(), "deps-1", src, PushOptions{Description: "d"})
	if err != nil || !res.Uploaded || res.Path == "" || res.Entry.Description != "d" {
		t.Fatalf("Push = %+v, %v; want an upload and a local copy", res, err)
	}
	other := dropLocal(t, c)

	dir := filepath.Join(t.TempDir(), "a", "dst")
	h, ok, err := other.Pull(t.Context(), "deps-2", []string{"deps-"}, dir, PullOptions{})
	if err != nil || !ok || h.Key != "deps-1" || h.Tier != tiercache.TierRemote || h.Path != dir || h.Copy.Files == 0 {
		t.Fatalf("Pull = %+v, %v, %v", h, ok, err)
	}
	treetest.AssertEqual(t, src, dir)
	mu.Lock()
	if copied["deps-1"] != h.Entry.Size || copyTotal != h.Entry.Size {
		t.Errorf("copy progress reached %d of %d, want %d of %d", copied["deps-1"], copyTotal, h.Entry.Size, h.Entry.Size)
	}
	mu.Unlock()

	t.Run("existing dir keeps its mode and mtime", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dst")
		mtime := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := other.Pull(t.Context(), "deps-1", nil, dir, PullOptions{}); err != nil || !ok {
			t.Fatalf("Pull: ok=%v err=%v", ok, err)
		}
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(mtime) {
			t.Fatalf("DIR after the pull: %v %v (%v), want 0750 and %v kept", fi.Mode(), fi.ModTime(), err, mtime)
		}
		if _, err := treetest.CheckSmall(dir); err != nil {
			t.Fatalf("the tree did not arrive: %v", err)
		}
	})
	t.Run("link", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dst")
		h, ok, err := other.Pull(t.Context(), "deps-1", nil, dir, PullOptions{Link: true})
		if err != nil || !ok || h.Tier != tiercache.TierLocal {
			t.Fatalf("Pull --link = %+v, %v, %v", h, ok, err)
		}
		cached, _, err := other.Local().Get(t.Context(), "deps-1")
		if err != nil {
			t.Fatal(err)
		}
		linked := 0
		err = filepath.WalkDir(cached, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(cached, p)
			a, err1 := os.Stat(p)
			b, err2 := os.Stat(filepath.Join(dir, rel))
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			if !os.SameFile(a, b) {
				t.Errorf("%s is not hardlinked to the cache", rel)
			}
			linked++
			return nil
		})
		if err != nil || linked == 0 {
			t.Fatalf("walk: %v, %d files", err, linked)
		}
	})
}

// TestPullStrict: with the remote down, a restore key found in the local
// tier is pulled with the failure in Hit.RemoteErr; with Strict the pull
// fails with that failure and DIR is not even created.
func TestPullStrict(t *testing.T) {
	f, c := newFaulty(t)
	src := smallTree(t, "s")
	if _, err := c.Put(t.Context(), "deps-1", src, ""); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	dir := filepath.Join(t.TempDir(), "strict")
	if _, ok, err := c.Pull(t.Context(), "other", []string{"deps-"}, dir, PullOptions{Strict: true}); ok || !IsRemote(err) {
		t.Fatalf("strict Pull with the remote down: ok=%v err=%v, want the remote's failure", ok, err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed strict pull touched DIR: %v", err)
	}
	h, ok, err := c.Pull(t.Context(), "other", []string{"deps-"}, dir, PullOptions{})
	if err != nil || !ok || !IsRemote(h.RemoteErr) || h.Tier != tiercache.TierLocal {
		t.Fatalf("Pull with the remote down = %+v, %v, %v; want the local hit with RemoteErr", h, ok, err)
	}
	treetest.AssertEqual(t, src, dir)
}
