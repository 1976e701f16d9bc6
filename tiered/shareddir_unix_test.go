//go:build unix

package tiered

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote/memstore"
)

// sharedDirEnv names a directory, owned by another user and writable by
// all, that scripts/unprivileged.sh makes for the tests it runs as an
// ordinary user, who cannot give a directory away.
const sharedDirEnv = "TIERCACHE_TEST_SHARED_DIR"

// sharedDir returns an empty directory that another user owns and anyone
// may write into, as a container's root makes a shared 0777 one. As root
// it makes one and gives it away; root may still chmod it, so the refusals
// this guards against happen only in the run as an ordinary user.
func sharedDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		dir := filepath.Join(t.TempDir(), "shared")
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
	}
	dir := os.Getenv(sharedDirEnv)
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run this package's tests as an ordinary user through make test-unprivileged", sharedDirEnv)
		}
		t.Skipf("%s is not set (make test-unprivileged sets it)", sharedDirEnv)
	}
	if names, err := dirNames(dir); err != nil || len(names) != 0 {
		t.Fatalf("%s: %v, holding %v; want an empty directory", sharedDirEnv, err, names)
	}
	t.Cleanup(func() {
		// What the test put there is the test's own: empty it for the next.
		names, _ := dirNames(dir)
		for _, n := range names {
			p := filepath.Join(dir, n)
			_ = filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					_ = os.Chmod(q, 0o755)
				}
				return nil
			})
			if err := os.RemoveAll(p); err != nil {
				t.Error(err)
			}
		}
	})
	return dir
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
		{name: "download, empty", pull: func(t *testing.T, dir string) error {
			_, _, err := remoteOnly.pullRemoteDir(t.Context(), "k", nil, dir)
			return err
		}},
		{name: "download, full", full: true, pull: func(t *testing.T, dir string) error {
			_, _, err := remoteOnly.pullRemoteDir(t.Context(), "k", nil, dir)
			return err
		}},
		{name: "local hit, empty", pull: func(t *testing.T, dir string) error {
			_, _, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{})
			return err
		}},
		{name: "local hit, full", full: true, pull: func(t *testing.T, dir string) error {
			_, _, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{})
			return err
		}},
		{name: "link", full: true, pull: func(t *testing.T, dir string) error {
			_, _, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{Link: true})
			return err
		}},
		{name: "expanded tree, full", full: true, pull: func(t *testing.T, dir string) error {
			// The link pull before left the entry's tree expanded.
			_, _, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{})
			return err
		}},
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
