package tiered

import (
	"archive/tar"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"

	"github.com/tiercache/tiercache/remote/memstore"
)

// putRootArchive stores under key an archive as GNU tar makes them, with a
// "./" member for the root (which archive.Write never emits) of the given
// mode and mtime, holding the file f and the directory sub.
func putRootArchive(t *testing.T, store *memstore.Store, key string, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	res := putHandArchive(t, store, key,
		handMember{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: int64(mode), ModTime: mtime}},
		handMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./f", Mode: 0o644, ModTime: mtime}, body: "f"},
		handMember{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./sub/", Mode: 0o755, ModTime: mtime}},
	)
	if res.Root == nil {
		t.Fatal("the hand-made archive has no root member")
	}
}

// TestPullRemoteRootMetadata: DIR's own mode and mtime after a pull
// straight from the remote are the archive's root member's when it has
// one, else DIR's own as they were (or a new directory's when DIR was
// absent): never those of the private staging directory.
func TestPullRemoteRootMetadata(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.pushRemote(t.Context(), "plain", dirSource(smallTree(t, "plain")), PushOptions{}, false); err != nil {
		t.Fatal(err)
	}
	rootMode, rootTime := fs.FileMode(0o705), time.Date(2011, 2, 3, 4, 5, 6, 7, time.UTC)
	putRootArchive(t, store, "rooted", rootMode, rootTime)
	oldMode, oldTime := fs.FileMode(0o750), time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	newMode := fs.FileMode(0o755)
	if um := fsutil.Umask(); um >= 0 {
		newMode = 0o777 &^ fs.FileMode(um)
	}

	for _, tc := range []struct {
		name, key string
		// prepare makes DIR as it is before the pull; nil leaves it absent.
		prepare   func(t *testing.T, dir string)
		wantMode  fs.FileMode
		wantMtime time.Time // zero: not checked (a new directory)
	}{
		{name: "absent, no root member", key: "plain", wantMode: newMode},
		{name: "absent, root member", key: "rooted", wantMode: rootMode, wantMtime: rootTime},
		{name: "empty, no root member", key: "plain", prepare: emptyDir(oldMode, oldTime), wantMode: oldMode, wantMtime: oldTime},
		{name: "empty, root member", key: "rooted", prepare: emptyDir(oldMode, oldTime), wantMode: rootMode, wantMtime: rootTime},
		{name: "non-empty, no root member", key: "plain", prepare: fullDir(oldMode, oldTime), wantMode: oldMode, wantMtime: oldTime},
		{name: "non-empty, root member", key: "rooted", prepare: fullDir(oldMode, oldTime), wantMode: rootMode, wantMtime: rootTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "dir")
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			_, err := os.Lstat(filepath.Join(dir, "mine"))
			hadMine := err == nil
			if _, ok, err := c.pullRemoteDir(t.Context(), tc.key, nil, dir); err != nil || !ok {
				t.Fatalf("PullRemote: ok=%v err=%v", ok, err)
			}
			// The tree did arrive.
			want := "f"
			if tc.key == "plain" {
				want = "d0/f00000.txt" // a file of treetest.Small's tree
			}
			if _, err := os.Lstat(filepath.Join(dir, want)); err != nil {
				t.Fatalf("the pulled tree is not in DIR: %v", err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fi.Mode().Perm(), dirModeSeen(tc.wantMode); got != want {
				t.Errorf("DIR's mode is %v, want %v", got, want)
			}
			if want := timeKept(tc.wantMtime); !want.IsZero() && !fi.ModTime().Equal(want) {
				t.Errorf("DIR's mtime is %v, want %v", fi.ModTime(), want)
			}
			if _, err := os.Lstat(filepath.Join(dir, "mine")); hadMine && err != nil {
				t.Errorf("DIR's own file is gone: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(base, ".tiercache-pull-*")); len(left) != 0 {
				t.Errorf("staging left behind: %v", left)
			}
		})
	}
}

// emptyDir makes DIR an empty directory of the given mode and mtime.
func emptyDir(mode fs.FileMode, mtime time.Time) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		setMeta(t, dir, mode, mtime)
	}
}

// fullDir makes DIR a directory of the given mode and mtime holding a
// file of its own.
func fullDir(mode fs.FileMode, mtime time.Time) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "mine"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		setMeta(t, dir, mode, mtime)
	}
}

func setMeta(t *testing.T, dir string, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, time.Time{}, mtime); err != nil {
		t.Fatal(err)
	}
}
