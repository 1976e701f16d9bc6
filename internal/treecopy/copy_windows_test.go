package treecopy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// The Unix tests (treecopy_test.go) check descriptors, FIFOs, umasks and
// every permission bit; these check what the Windows copy promises.

func mustWrite(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func fidelitySource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 300})
	return src
}

// TestCopyFidelityOnWindows copies the fidelity tree (in its Windows
// shape) in both modes, then again over the first copy.
func TestCopyFidelityOnWindows(t *testing.T) {
	src := fidelitySource(t)
	for _, link := range []bool{false, true} {
		t.Run(fmt.Sprint("link=", link), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			t.Cleanup(func() { _ = fsutil.RemoveAll(dst) })
			var progress atomic.Int64
			res, err := Copy(t.Context(), src, dst, Options{Link: link, Progress: func(n int64) { progress.Add(n) }})
			if err != nil {
				t.Fatal(err)
			}
			treetest.AssertEqual(t, src, dst)
			if res.Files == 0 || res.Bytes != progress.Load() || res.Dirs < 2 {
				t.Errorf("result %+v, progress %d", res, progress.Load())
			}
			if link && res.Linked != res.Files {
				t.Errorf("Link: %d of %d files linked", res.Linked, res.Files)
			}
			if !link && res.Linked != 0 {
				t.Errorf("%d files linked without Link", res.Linked)
			}
			// A second copy over the first (read-only files and all)
			// succeeds and changes nothing.
			if _, err := Copy(t.Context(), src, dst, Options{Link: link}); err != nil {
				t.Fatalf("second copy: %v", err)
			}
			treetest.AssertEqual(t, src, dst)
		})
	}
}

// TestCopyReplacesOnWindows: entries of the source replace whatever the
// destination holds at their paths, read-only files and directories
// included; other entries stay.
func TestCopyReplacesOnWindows(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "was-dir"), "now a file", 0o644)
	mustWrite(t, filepath.Join(src, "was-file", "inner"), "now a dir", 0o644)
	mustWrite(t, filepath.Join(src, "same"), "new", 0o644)
	mustWrite(t, filepath.Join(src, "ro"), "new read-only", 0o444)
	dst := filepath.Join(t.TempDir(), "dst")
	t.Cleanup(func() { _ = fsutil.RemoveAll(dst) })
	mustWrite(t, filepath.Join(dst, "was-dir", "old"), "old", 0o444)
	mustWrite(t, filepath.Join(dst, "was-file"), "old", 0o644)
	mustWrite(t, filepath.Join(dst, "same"), "old content, longer", 0o444)
	mustWrite(t, filepath.Join(dst, "ro"), "old", 0o444)
	mustWrite(t, filepath.Join(dst, "keep"), "kept", 0o644)
	if _, err := Copy(t.Context(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]string{"was-dir": "now a file", "was-file/inner": "now a dir", "same": "new", "ro": "new read-only", "keep": "kept"} {
		if b, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(rel))); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", rel, b, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dst, "ro")); err != nil || fi.Mode().Perm()&0o200 != 0 {
		t.Errorf("ro: %v, %v; want read-only", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "same")); err != nil || fi.Mode().Perm()&0o200 == 0 {
		t.Errorf("same: %v, %v; want writable, as in the source", fi.Mode(), err)
	}
}

// TestCopyReplacesPlantedSymlinksOnWindows: a symlink in the destination
// where the tree has a file or a directory is replaced, never written
// through.
func TestCopyReplacesPlantedSymlinksOnWindows(t *testing.T) {
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "victim"), "untouched", 0o644)
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "file"), "from src", 0o644)
	mustWrite(t, filepath.Join(src, "dir", "f"), "from src", 0o644)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Symlink(t, filepath.Join(outside, "victim"), filepath.Join(dst, "file"))
	treetest.Symlink(t, outside, filepath.Join(dst, "dir"))
	if _, err := Copy(t.Context(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "untouched" {
		t.Errorf("victim = %q", b)
	}
	if _, err := os.Lstat(filepath.Join(outside, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file was written through the directory symlink: %v", err)
	}
	for _, rel := range []string{"file", "dir"} {
		if fi, err := os.Lstat(filepath.Join(dst, rel)); err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			t.Errorf("%s: %v, %v; want the source's entry", rel, fi.Mode(), err)
		}
	}
}

func TestCopyArgumentsOnWindows(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	mustWrite(t, file, "not a dir", 0o644)
	if _, err := Copy(t.Context(), file, t.TempDir(), Options{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("file source: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := Copy(t.Context(), t.TempDir(), t.TempDir(), Options{Workers: -1}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("negative workers: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := Copy(t.Context(), filepath.Join(t.TempDir(), "missing"), t.TempDir(), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing source: err = %v, want ErrNotExist", err)
	}
}

func TestCopyCancelledOnWindows(t *testing.T) {
	src := fidelitySource(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Copy(ctx, src, filepath.Join(t.TempDir(), "dst"), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCopyKeepsMtimesOnWindows: files and directories keep their mtimes
// to Windows's resolution (100 ns), directories despite what was created
// in them.
func TestCopyKeepsMtimesOnWindows(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "d", "f"), "x", 0o644)
	mt := time.Date(2020, 1, 2, 3, 4, 5, 678_900_100, time.UTC)
	for _, p := range []string{filepath.Join(src, "d", "f"), filepath.Join(src, "d")} {
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := Copy(t.Context(), src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{`d\f`, "d"} {
		if fi, err := os.Lstat(filepath.Join(dst, rel)); err != nil || !fi.ModTime().Equal(mt) {
			t.Errorf("%s: mtime %v, %v; want %v", rel, fi.ModTime(), err, mt)
		}
	}
}

// TestCopyKeepsSharedReadOnlyOnWindows: replacing a destination name that
// is a hardlink of a read-only file elsewhere (a cache entry, after an
// earlier Link copy) leaves that file read-only and unchanged. The
// read-only attribute belongs to the file, not to a name, so clearing it
// to delete the name (as Windows needs before 10 1809, on FAT and under
// Wine) would make the cache writable through its other names. The name
// in the way may be the file itself, or a file under a directory that
// the source replaces with a file, or a file the source replaces with a
// directory.
func TestCopyKeepsSharedReadOnlyOnWindows(t *testing.T) {
	for _, link := range []bool{false, true} {
		t.Run(fmt.Sprint("link=", link), func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			src := filepath.Join(t.TempDir(), "src")
			dst := filepath.Join(t.TempDir(), "dst")
			t.Cleanup(func() { _ = fsutil.RemoveAll(cache); _ = fsutil.RemoveAll(dst) })
			mustWrite(t, filepath.Join(src, "file"), "new file", 0o444)
			mustWrite(t, filepath.Join(src, "was-dir"), "new file", 0o644)
			mustWrite(t, filepath.Join(src, "was-file", "inner"), "new inner", 0o644)
			// Each cache file has a name in the destination where the
			// source puts something else.
			for cached, in := range map[string]string{"a": "file", "b": `was-dir\old`, "c": "was-file"} {
				mustWrite(t, filepath.Join(cache, cached), "cached "+cached, 0o444)
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, in)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Link(filepath.Join(cache, cached), filepath.Join(dst, in)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Copy(t.Context(), src, dst, Options{Link: link}); err != nil {
				t.Fatal(err)
			}
			for _, cached := range []string{"a", "b", "c"} {
				p := filepath.Join(cache, cached)
				if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm()&0o200 != 0 {
					t.Errorf("cache file %s: %v, %v; want it still read-only", cached, fi.Mode(), err)
				}
				if b, err := os.ReadFile(p); err != nil || string(b) != "cached "+cached {
					t.Errorf("cache file %s = %q, %v; want %q", cached, b, err, "cached "+cached)
				}
			}
			for rel, want := range map[string]string{"file": "new file", "was-dir": "new file", `was-file\inner`: "new inner"} {
				if b, err := os.ReadFile(filepath.Join(dst, rel)); err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", rel, b, err, want)
				}
			}
		})
	}
}
