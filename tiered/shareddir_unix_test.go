//go:build unix

package tiered

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// Directories scripts/unprivileged.sh makes for the tests it runs as an
// ordinary user, who cannot give a directory away or take one's parent
// from themselves: their paths are in these variables.
const (
	// sharedDirEnv: a directory root owns that anyone may write into.
	sharedDirEnv = "TIERCACHE_TEST_SHARED_DIR"
	// lockedDirEnv: a directory of the user's in one root owns 0755.
	lockedDirEnv = "TIERCACHE_TEST_LOCKED_DIR"
)

// fixtureDir returns the empty directory named in the variable env,
// emptied again when t ends, or as root one that asRoot makes in base.
// Root may write and chmod anything, so the refusals these directories
// bring happen only in the run as an ordinary user.
func fixtureDir(t *testing.T, env string, asRoot func(t *testing.T, base string) string) string {
	t.Helper()
	if os.Geteuid() == 0 {
		return asRoot(t, t.TempDir())
	}
	dir := os.Getenv(env)
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run this package's tests as an ordinary user through make test-unprivileged", env)
		}
		t.Skipf("%s is not set (make test-unprivileged sets it)", env)
	}
	if names, err := dirNames(dir); err != nil || len(names) != 0 {
		t.Fatalf("%s: %v, holding %v; want an empty directory", env, err, names)
	}
	t.Cleanup(func() {
		// What the test put there is the test's own: empty it for the next.
		names, _ := dirNames(dir)
		for _, n := range names {
			if err := fsutil.RemoveAll(filepath.Join(dir, n)); err != nil {
				t.Error(err)
			}
		}
	})
	return dir
}

// sharedDir is an empty directory that another user owns and anyone may
// write into, as a container's root makes a shared 0777 one.
func sharedDir(t *testing.T) string {
	return fixtureDir(t, sharedDirEnv, func(t *testing.T, base string) string {
		dir := filepath.Join(base, "shared")
		if err := os.Mkdir(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		return dir
	})
}

// lockedDir is an empty directory of the user's whose parent the user may
// not write to: an image's root-owned WORKDIR holding node_modules.
func lockedDir(t *testing.T) string {
	return fixtureDir(t, lockedDirEnv, func(t *testing.T, base string) string {
		dir := filepath.Join(base, "locked", "dir")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(dir), 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(filepath.Dir(dir), 0o755) })
		return dir
	})
}

// downloadInto is a download of key k into DIR by c, which must have no
// local tier holding it.
func downloadInto(c *Cache) func(t *testing.T, dir string) error {
	return func(t *testing.T, dir string) error {
		_, _, err := c.pullRemoteDir(t.Context(), "k", nil, dir)
		return err
	}
}

// pullInto is a pull of key k into DIR by c.
func pullInto(c *Cache, opts PullOptions) func(t *testing.T, dir string) error {
	return func(t *testing.T, dir string) error {
		_, _, err := c.Pull(t.Context(), "k", nil, dir, opts)
		return err
	}
}

// TestPullIntoSharedDir: a pull into a directory another user owns but
// the user may write into restores the tree and succeeds, as tar -x does:
// only the owner may set that directory's mode and mtime, and a pull that
// keeps them has nothing to change. Each way into DIR is tried: a
// download into an empty DIR (its members renamed in) and into a full one
// (merged), and local hits from the archive and from an expanded tree.
func TestPullIntoSharedDir(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.Put(t.Context(), "k", smallTree(t, "shared"), ""); err != nil {
		t.Fatal(err)
	}
	remoteOnly := newTiered(t, store, Options{})
	check := func(t *testing.T, dir string) {
		t.Helper()
		if tag, err := treetest.CheckSmall(dir); err != nil || tag != "shared" {
			t.Errorf("DIR holds tag %q, err %v; want the pushed tree", tag, err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o777 {
			t.Errorf("DIR's mode is %v, want 0777 as it was", fi.Mode().Perm())
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".tiercache-pull-*")); len(left) != 0 {
			t.Errorf("staging left behind: %v", left)
		}
	}
	for _, tc := range []struct {
		name string
		pull func(t *testing.T, dir string) error
		full bool // DIR holds the tree already
	}{
		{name: "download, empty", pull: downloadInto(remoteOnly)},
		{name: "download, full", full: true, pull: downloadInto(remoteOnly)},
		{name: "local hit, empty", pull: pullInto(c, PullOptions{})},
		{name: "local hit, full", full: true, pull: pullInto(c, PullOptions{})},
		{name: "link", full: true, pull: pullInto(c, PullOptions{Link: true})},
		{name: "expanded tree, full", full: true, pull: pullInto(c, PullOptions{})}, // from the tree the link pull left,
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sharedDir(t)
			if tc.full {
				if _, _, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{}); err != nil {
					t.Fatalf("first pull: %v", err)
				}
			}
			if err := tc.pull(t, dir); err != nil {
				t.Fatalf("pull into a shared directory: %v", err)
			}
			check(t, dir)
		})
	}
}

// TestPullIntoDirOfLockedParent: a pull into a directory the user may
// write into, whose parent the user may not, restores the tree: the stage
// that is normally made beside DIR is made inside it, and leaves nothing
// behind, nor a change to DIR's mode or mtime.
func TestPullIntoDirOfLockedParent(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.Put(t.Context(), "k", smallTree(t, "locked"), ""); err != nil {
		t.Fatal(err)
	}
	remoteOnly := newTiered(t, store, Options{})
	for _, tc := range []struct {
		name string
		full bool
		pull func(t *testing.T, dir string) error
	}{
		{name: "download, empty", pull: downloadInto(remoteOnly)},
		{name: "download, full", full: true, pull: downloadInto(remoteOnly)},
		{name: "local archive", pull: pullInto(c, PullOptions{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := lockedDir(t)
			if tc.full {
				if err := os.WriteFile(filepath.Join(dir, "mine"), []byte("mine"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			if err := os.Chtimes(dir, time.Time{}, mtime); err != nil {
				t.Fatal(err)
			}
			if err := tc.pull(t, dir); err != nil {
				t.Fatalf("pull into a directory whose parent is not writable: %v", err)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o755 {
				t.Errorf("DIR after the pull: %v %v; want mode 0755 and mtime %v as before", fi.Mode(), fi.ModTime(), mtime)
			}
			if tc.full {
				if err := os.Remove(filepath.Join(dir, "mine")); err != nil {
					t.Errorf("DIR's own file: %v", err)
				}
			}
			// CheckSmall finds a stage or lock file left in DIR.
			if tag, err := treetest.CheckSmall(dir); err != nil || tag != "locked" {
				t.Errorf("DIR holds tag %q, err %v; want the pushed tree alone", tag, err)
			}
		})
	}
	// A pull that fails (an object that is not an archive) leaves DIR
	// as it was: empty, its mtime kept.
	t.Run("failed", func(t *testing.T) {
		if _, err := store.Put(t.Context(), remote.Meta{Key: "bad", Size: 1, Files: 1}, strings.NewReader("not an archive")); err != nil {
			t.Fatal(err)
		}
		dir := lockedDir(t)
		mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		if err := os.Chtimes(dir, time.Time{}, mtime); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := remoteOnly.pullRemoteDir(t.Context(), "bad", nil, dir); ok {
			t.Fatal("a pull of an object that is not an archive restored it")
		}
		if names, err := dirNames(dir); err != nil || len(names) != 0 {
			t.Errorf("DIR after the failed pull: %v %v; want it empty", names, err)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.ModTime().Equal(mtime) {
			t.Errorf("DIR's mtime after the failed pull: %v; want %v as before", fi.ModTime(), mtime)
		}
	})
}
