//go:build unix

package treecopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// node is what the comparison sees of one tree entry.
type node struct {
	mode   fs.FileMode
	mtime  int64
	data   string // file content or symlink target
	inoTag string // name of the first path sharing this inode, for files
}

// snapshot describes a tree relative to its root, hardlinks expressed by
// the first path (in walk order) of each inode.
func snapshot(t *testing.T, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	first := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n := node{mode: fi.Mode(), mtime: fi.ModTime().UnixNano()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			n.data, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			n.data = string(b)
			st := fi.Sys().(*syscall.Stat_t)
			id := [2]uint64{uint64(st.Dev), st.Ino}
			if _, ok := first[id]; !ok {
				first[id] = rel
			}
			n.inoTag = first[id]
		}
		out[rel] = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compare(t *testing.T, want, got map[string]node) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing from the copy", p)
		case g.mode != w.mode:
			t.Errorf("%s: mode %v, want %v", p, g.mode, w.mode)
		case g.mtime != w.mtime:
			t.Errorf("%s: mtime %d, want %d", p, g.mtime, w.mtime)
		case g.data != w.data:
			t.Errorf("%s: content/target %q, want %q", p, g.data, w.data)
		case g.inoTag != w.inoTag:
			t.Errorf("%s: shares an inode with %q, want %q", p, g.inoTag, w.inoTag)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: extra entry in the copy", p)
		}
	}
}

func write(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func setMtime(t *testing.T, p string, ns int64) {
	t.Helper()
	ts := unix.NsecToTimespec(ns)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// fidelityTree builds a tree with every kind of entry a cache holds.
func fidelityTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "plain.txt"), "hello", 0o644)
	write(t, filepath.Join(src, "bin", "tool"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(src, "ro", "readonly.txt"), "ro", 0o444)
	write(t, filepath.Join(src, "big.bin"), string(bytes.Repeat([]byte("0123456789abcdef"), 64<<10)), 0o600)
	write(t, filepath.Join(src, "empty-file"), "", 0o640)
	for i := range 40 {
		write(t, filepath.Join(src, "many", fmt.Sprintf("f%02d", i)), fmt.Sprint("file ", i), 0o644)
	}
	if err := os.MkdirAll(filepath.Join(src, "empty", "nested"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "plain.txt"), filepath.Join(src, "bin", "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "plain.txt"), filepath.Join(src, "zz-hard")); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"rel-link":      "plain.txt",
		"bin/up-link":   "../ro",
		"abs-link":      "/etc/hostname",
		"dangling-link": "does/not/exist",
	} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Distinct nanosecond mtimes everywhere, directories last.
	ns := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano()
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ns += 123456789
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		setMtime(t, p, ns)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		ns += 987654321
		setMtime(t, dirs[i], ns)
	}
	// Read-only directory: go's module cache is all 0555.
	if err := os.Chmod(filepath.Join(src, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	setMtime(t, filepath.Join(src, "ro"), ns)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "ro"), 0o755) })
	return src
}

func TestCopyFidelity(t *testing.T) {
	src := fidelityTree(t)
	want := snapshot(t, src)
	for _, workers := range []int{0, 1, 7} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "a", "b", "dst")
			var progress atomic.Int64
			res, err := Copy(context.Background(), src, dst, Options{Workers: workers, Progress: func(n int64) { progress.Add(n) }})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, want, snapshot(t, dst))
			if res.Files != 45 || res.Hardlinks != 2 || res.Symlinks != 4 || res.Dirs != 6 {
				t.Errorf("result %+v: want 45 files, 2 hardlinks, 4 symlinks, 6 dirs", res)
			}
			if progress.Load() != res.Bytes || res.Bytes != 1<<20+5+10+2+int64(len("file 0"))*10+int64(len("file 10"))*30 {
				t.Errorf("progress %d, result bytes %d", progress.Load(), res.Bytes)
			}
			// A hardlinked file in the copy must not share the source's inode.
			if sameInode(t, filepath.Join(src, "plain.txt"), filepath.Join(dst, "plain.txt")) {
				t.Error("copy shares an inode with the source without Link")
			}
			t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
		})
	}
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Lstat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Lstat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

func TestCopyLink(t *testing.T) {
	src := fidelityTree(t)
	want := snapshot(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	res, err := Copy(context.Background(), src, dst, Options{Link: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	got := snapshot(t, dst)
	// Every file is the source's inode, so inode tags name the same paths.
	compare(t, want, got)
	if !sameInode(t, filepath.Join(src, "big.bin"), filepath.Join(dst, "big.bin")) {
		t.Error("Link did not hardlink big.bin from the source")
	}
	if res.Linked != res.Files || res.Files == 0 {
		t.Errorf("result %+v: want every file linked", res)
	}
}

func TestCopyReplacesSamePathsKeepsOthers(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "same.txt"), "new", 0o644)
	write(t, filepath.Join(src, "was-dir"), "now a file", 0o644)
	write(t, filepath.Join(src, "was-file", "inner"), "now a dir", 0o644)
	write(t, filepath.Join(src, "sub", "new.txt"), "new in sub", 0o644)
	if err := os.Symlink("same.txt", filepath.Join(src, "was-link")); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	write(t, filepath.Join(dst, "same.txt"), "old old old", 0o600)
	write(t, filepath.Join(dst, "keep.txt"), "keep", 0o644)
	write(t, filepath.Join(dst, "was-dir", "deep", "x"), "x", 0o644)
	write(t, filepath.Join(dst, "was-file"), "old file", 0o644)
	write(t, filepath.Join(dst, "sub", "keep-too.txt"), "keep too", 0o644)
	write(t, filepath.Join(dst, "was-link"), "old regular file", 0o644)
	// A read-only directory of an earlier pull must not stop a new one.
	write(t, filepath.Join(dst, "was-dir", "ro", "f"), "f", 0o444)
	if err := os.Chmod(filepath.Join(dst, "was-dir", "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dst, "sub"), 0o555); err != nil {
		t.Fatal(err)
	}

	if _, err := Copy(context.Background(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"same.txt":         "new",
		"was-dir":          "now a file",
		"was-file/inner":   "now a dir",
		"sub/new.txt":      "new in sub",
		"keep.txt":         "keep",
		"sub/keep-too.txt": "keep too",
	} {
		b, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", p, b, err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "was-link")); err != nil || target != "same.txt" {
		t.Errorf("was-link: %q, %v; want a symlink to same.txt", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "same.txt")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("same.txt: mode %v, %v; want the source's 0644", fi.Mode(), err)
	}
}

// TestCopyNeverWritesThroughDestinationSymlinks plants symlinks in the
// destination at paths the tree uses, pointing outside it, and proves
// nothing outside changes.
func TestCopyNeverWritesThroughDestinationSymlinks(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "victim.txt"), "untouched", 0o644)
	if err := os.MkdirAll(filepath.Join(outside, "victim-dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "file"), "payload", 0o644)
	write(t, filepath.Join(src, "dir", "inner"), "payload", 0o644)
	write(t, filepath.Join(src, "other"), "payload", 0o644)
	if err := os.Link(filepath.Join(src, "other"), filepath.Join(src, "other-hard")); err != nil {
		t.Fatal(err)
	}

	for _, link := range []bool{false, true} {
		t.Run(fmt.Sprint("link=", link), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			plant := map[string]string{
				"file":       filepath.Join(outside, "victim.txt"),
				"dir":        filepath.Join(outside, "victim-dir"),
				"other-hard": filepath.Join(outside, "victim.txt"),
			}
			for name, target := range plant {
				if err := os.Symlink(target, filepath.Join(dst, name)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Copy(context.Background(), src, dst, Options{Link: link}); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "victim.txt")); string(b) != "untouched" {
				t.Errorf("outside file changed to %q", b)
			}
			if ents, _ := os.ReadDir(filepath.Join(outside, "victim-dir")); len(ents) != 0 {
				t.Errorf("outside directory got %d entries", len(ents))
			}
			for name := range plant {
				fi, err := os.Lstat(filepath.Join(dst, name))
				if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
					t.Errorf("%s: still a symlink (%v, %v)", name, fi.Mode(), err)
				}
			}
		})
	}
}

// TestCopyDoesNotWriteIntoHardlinkedFile checks that a file of the
// destination sharing its inode with another file (as after a Link copy
// from a cache entry) is replaced, not overwritten in place.
func TestCopyDoesNotWriteIntoHardlinkedFile(t *testing.T) {
	cacheFile := filepath.Join(t.TempDir(), "cached")
	write(t, cacheFile, "cache entry content", 0o644)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(cacheFile, filepath.Join(dst, "f")); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "f"), "new", 0o644)
	if _, err := Copy(context.Background(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(cacheFile); string(b) != "cache entry content" {
		t.Errorf("hardlinked file written in place: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "new" {
		t.Errorf("dst/f = %q, want new", b)
	}
}

// TestCopyLeavesOutSockets: a socket is left out and counted, not an error.
func TestCopyLeavesOutSockets(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "a"), "a", 0o644)
	ln, err := net.Listen("unix", filepath.Join(src, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dst := filepath.Join(t.TempDir(), "dst")
	res, err := Copy(context.Background(), src, dst, Options{})
	if err != nil {
		t.Fatalf("copy of a tree holding a socket: %v", err)
	}
	if res.Sockets != 1 || res.Files != 1 {
		t.Errorf("result %+v: want 1 file and 1 socket left out", res)
	}
	if _, err := os.Lstat(filepath.Join(dst, "s.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the socket was copied: %v", err)
	}
}

func TestCopyRejectsSpecialFiles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "a"), "a", 0o644)
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Copy(context.Background(), src, filepath.Join(t.TempDir(), "dst"), Options{})
	if !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("err = %v, want ErrInvalidArgument", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("fifo is a FIFO")) {
		t.Errorf("error %q does not name the entry and its type", err)
	}
}

func TestCopyArguments(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	write(t, src, "not a dir", 0o644)
	if _, err := Copy(context.Background(), src, t.TempDir(), Options{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("file source: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := Copy(context.Background(), t.TempDir(), t.TempDir(), Options{Workers: -1}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("negative workers: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := Copy(context.Background(), filepath.Join(t.TempDir(), "missing"), t.TempDir(), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing source: err = %v, want ErrNotExist", err)
	}
	// A source reached through a symlink (a home directory that is one,
	// say) is the directory it names; only what is below is never
	// followed.
	real := filepath.Join(t.TempDir(), "real")
	write(t, filepath.Join(real, "f"), "x", 0o644)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if res, err := Copy(context.Background(), link, dst, Options{}); err != nil || res.Files != 1 {
		t.Fatalf("source through a symlink: %+v, %v", res, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "x" {
		t.Errorf("dst/f = %q, %v", b, err)
	}
}

func TestCopyCancelled(t *testing.T) {
	src := fidelityTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Copy(ctx, src, filepath.Join(t.TempDir(), "dst"), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCopyFidelityTree copies the project's shared fidelity tree (unicode
// and 255-byte names, every kind of symlink, hardlink groups, read-only
// module-cache-like dirs, nanosecond mtimes) in both modes.
func TestCopyFidelityTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 300})
	for _, link := range []bool{false, true} {
		t.Run(fmt.Sprint("link=", link), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			if _, err := Copy(context.Background(), src, dst, Options{Link: link}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { makeWritable(dst) })
			treetest.AssertEqual(t, src, dst)
			// A second copy over the first (read-only dirs and all) must
			// succeed and change nothing.
			if _, err := Copy(context.Background(), src, dst, Options{Link: link}); err != nil {
				t.Fatalf("second copy: %v", err)
			}
			treetest.AssertEqual(t, src, dst)
		})
	}
}

func makeWritable(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

// TestCopyNeverEntersSymlinkedDirectories plants symlinks where the tree
// has directories, at several depths, pointing outside the destination
// and inside it, and proves the copy replaces them with real directories:
// nothing is created through them, and what they point to is unchanged.
func TestCopyNeverEntersSymlinkedDirectories(t *testing.T) {
	outside := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "top", "f"), "payload", 0o644)
	write(t, filepath.Join(src, "a", "b", "c", "f"), "payload", 0o644)
	write(t, filepath.Join(src, "a", "b", "c", "d", "g"), "payload", 0o644)
	write(t, filepath.Join(src, "a", "b2", "f"), "payload", 0o644)
	if err := os.Symlink("f", filepath.Join(src, "a", "b", "c", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "top", "f"), filepath.Join(src, "a", "b2", "hard")); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, src)

	dst := filepath.Join(t.TempDir(), "dst")
	write(t, filepath.Join(dst, "inside", "keep"), "keep", 0o644)
	if err := os.MkdirAll(filepath.Join(dst, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	plant := map[string]string{
		"top":      outside,                        // at the top
		"a/b/c":    outside,                        // deep, under real directories
		"a/b2":     filepath.Join(dst, "inside"),   // into the destination itself
		"dangling": filepath.Join(outside, "nope"), // not in the tree: left alone
	}
	for name, target := range plant {
		if err := os.Symlink(target, filepath.Join(dst, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, workers := range []int{1, 4} {
		if _, err := Copy(context.Background(), src, dst, Options{Workers: workers}); err != nil {
			t.Fatal(err)
		}
		if ents, err := os.ReadDir(outside); err != nil || len(ents) != 0 {
			t.Errorf("outside directory got %d entries (%v)", len(ents), err)
		}
		if ents, err := os.ReadDir(filepath.Join(dst, "inside")); err != nil || len(ents) != 1 {
			t.Errorf("dst/inside got %d entries (%v), want only keep", len(ents), err)
		}
		got := snapshot(t, dst)
		for _, extra := range []string{"inside", "inside/keep", "dangling"} {
			delete(got, extra)
		}
		compare(t, want, got)
	}
}

// TestCopyDirectoryMetadataDeepTree checks modes and mtimes of nested,
// interleaved and read-only directories, which are applied last, deepest
// first, through descriptors opened along the way.
func TestCopyDirectoryMetadataDeepTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for _, p := range []string{"a/b/c/d/e/f", "a/b/c2/f", "a/b2/f", "a2/x/y/f", "a3/f"} {
		write(t, filepath.Join(src, filepath.FromSlash(p)), p, 0o444)
	}
	for _, p := range []string{"a/b/c/d/e/empty", "a2/x/empty"} {
		if err := os.MkdirAll(filepath.Join(src, filepath.FromSlash(p)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var dirs []string
	if err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ns := time.Date(2019, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
	modes := []fs.FileMode{0o555, 0o750, 0o511, 0o700, 0o1777}
	for i := len(dirs) - 1; i >= 0; i-- {
		ns += 1_000_000_007
		setMtime(t, dirs[i], ns)
		if err := os.Chmod(dirs[i], modes[i%len(modes)]); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { makeWritable(src) })
	want := snapshot(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := Copy(context.Background(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { makeWritable(dst) })
	compare(t, want, snapshot(t, dst))
}

// TestCopyHardlinksIntoReadOnlyDirectories checks directories that get
// an extra name of a hardlinked file, which is made after the workers
// finish: they, and the read-only directories around them, must end with
// their own modes and mtimes, which a directory finished too early (and
// then written into, or unwritable) would not have.
func TestCopyHardlinksIntoReadOnlyDirectories(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "a", "f"), "shared", 0o444)
	write(t, filepath.Join(src, "b", "c", "d", "h"), "other", 0o444)
	for _, l := range []string{"b/c/g", "b/c/d/g2", "b/g3"} {
		if err := os.Link(filepath.Join(src, "a", "f"), filepath.Join(src, filepath.FromSlash(l))); err != nil {
			t.Fatal(err)
		}
	}
	ns := time.Date(2020, 5, 6, 7, 8, 9, 10, time.UTC).UnixNano()
	for _, d := range []string{"b/c/d", "b/c", "b", "a", "."} {
		ns += 1_000_000_007
		p := filepath.Join(src, filepath.FromSlash(d))
		setMtime(t, p, ns)
		if d != "." {
			if err := os.Chmod(p, 0o555); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { makeWritable(src) })
	want := snapshot(t, src)
	for _, link := range []bool{false, true} {
		for _, workers := range []int{1, 4} {
			dst := filepath.Join(t.TempDir(), "dst")
			if _, err := Copy(context.Background(), src, dst, Options{Link: link, Workers: workers}); err != nil {
				t.Fatalf("link=%v workers=%d: %v", link, workers, err)
			}
			t.Cleanup(func() { makeWritable(dst) })
			compare(t, want, snapshot(t, dst))
		}
	}
}

// openFds counts this process's open descriptors below 4096 (descriptors
// are numbered lowest first), by asking for each one's flags: no /proc
// or /dev/fd needed.
func openFds(t *testing.T) int {
	t.Helper()
	n := 0
	for fd := range 4096 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			n++
		}
	}
	return n
}

// TestCopyClosesDirectoryHandles checks that no directory descriptor
// outlives Copy, whether it succeeds, fails midway with files still
// queued, or is cancelled.
func TestCopyClosesDirectoryHandles(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for d := range 20 {
		for f := range 10 {
			write(t, filepath.Join(src, fmt.Sprintf("d%02d", d), "sub", fmt.Sprint("f", f)), "x", 0o644)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.CopyFS(bad, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(bad, "d10", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A first copy lets the runtime open what it keeps (the poller).
	if _, err := Copy(context.Background(), src, filepath.Join(t.TempDir(), "warm"), Options{}); err != nil {
		t.Fatal(err)
	}
	before := openFds(t)

	if _, err := Copy(context.Background(), src, filepath.Join(t.TempDir(), "ok"), Options{Workers: 3}); err != nil {
		t.Fatal(err)
	}
	if n := openFds(t); n != before {
		t.Errorf("after a successful copy: %d descriptors open, want %d", n, before)
	}
	badDst := filepath.Join(t.TempDir(), "bad")
	if _, err := Copy(context.Background(), bad, badDst, Options{Workers: 1}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("err = %v, want ErrInvalidArgument", err)
	}
	if n := openFds(t); n != before {
		t.Errorf("after a failed copy: %d descriptors open, want %d", n, before)
	}
	// The directory whose walk failed is not given its final mode
	// (0755): it keeps the private one it was created with, while the
	// directories finished before it have theirs.
	for dir, want := range map[string]fs.FileMode{"d10": 0o700, "d09": 0o755, "d09/sub": 0o755} {
		fi, err := os.Stat(filepath.Join(badDst, dir))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("failed copy: %s has mode %v, want %v", dir, fi.Mode().Perm(), want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	_, err := Copy(ctx, src, filepath.Join(t.TempDir(), "cancelled"), Options{Workers: 2, Progress: func(int64) {
		if calls.Add(1) == 30 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := openFds(t); n != before {
		t.Errorf("after a cancelled copy: %d descriptors open, want %d", n, before)
	}
}

// TestChmodDirAt checks the fallback that makes a directory its owner
// cannot read (as a non-root user) readable, and that it never follows a
// symlink or takes a file for a directory.
func TestChmodDirAt(t *testing.T) {
	parent := t.TempDir()
	if err := os.Mkdir(filepath.Join(parent, "locked"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(parent, "locked"), 0o311); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.Mkdir(outside, 0o311); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(outside, 0o755) })
	if err := os.Symlink(outside, filepath.Join(parent, "link")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(parent, "file"), "x", 0o600)
	fd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := chmodDirAt(fd, "locked", 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(parent, "locked")); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("mode %v (%v), want 0711", fi.Mode().Perm(), err)
	}
	if err := chmodDirAt(fd, "link", 0o700); !notDir(err) {
		t.Errorf("symlink: err = %v, want ENOTDIR, ELOOP or EMLINK", err)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o311 {
		t.Errorf("symlink target: mode %v (%v), want 0311 untouched", fi.Mode().Perm(), err)
	}
	if err := chmodDirAt(fd, "file", 0o700); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("file: err = %v, want ENOTDIR", err)
	}
}

// TestCopyModesUnderAnyUmask: files keep their exact modes whatever the
// umask, both where they are created with their final mode (the umask
// leaves it intact) and where they need a chmod after.
func TestCopyModesUnderAnyUmask(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	modes := []fs.FileMode{0o644, 0o444, 0o755, 0o555, 0o600, 0o640, 0o664, 0o666, 0o777, 0o644 | fs.ModeSticky}
	if os.Geteuid() == 0 {
		// Only root can read a source file of mode 000.
		modes = append(modes, 0o000)
	}
	for i, m := range modes {
		p := filepath.Join(src, fmt.Sprint("f", i))
		if err := os.WriteFile(p, []byte(fmt.Sprint(i)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, um := range []int{0o022, 0o077, 0o002, 0o000} {
		t.Run(fmt.Sprintf("umask=%03o", um), func(t *testing.T) {
			old := syscall.Umask(um)
			defer syscall.Umask(old)
			// -1 where the umask cannot be read: every file then
			// takes the chmod path.
			if got := fsutil.Umask(); got != um && got != -1 {
				t.Fatalf("fsutil.Umask() = %03o, want %03o", got, um)
			}
			dst := filepath.Join(t.TempDir(), "dst")
			if _, err := Copy(t.Context(), src, dst, Options{}); err != nil {
				t.Fatal(err)
			}
			for i, m := range modes {
				fi, err := os.Lstat(filepath.Join(dst, fmt.Sprint("f", i)))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (fs.ModePerm | fs.ModeSticky); got != m {
					t.Errorf("f%d: mode %v, want %v", i, got, m)
				}
			}
		})
	}
}

// TestConcurrentCopiesIntoOneDir: copies of one tree into one directory
// at once (two pulls of a key into the same DIR) all succeed, though each
// may find a name another just created between removing and creating it.
func TestConcurrentCopiesIntoOneDir(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for i := range 300 {
		write(t, filepath.Join(src, fmt.Sprintf("f%03d", i)), fmt.Sprint(i), 0o644)
	}
	for round := range 5 {
		dst := filepath.Join(t.TempDir(), "dst")
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				_, err := Copy(t.Context(), src, dst, Options{Link: true, Workers: 2})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dst, "f123")); err != nil || string(b) != "123" {
			t.Fatalf("round %d: f123 = %q, %v", round, b, err)
		}
	}
}
