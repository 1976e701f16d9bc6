package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// isDirLink reports whether the symlink at p is of the directory kind:
// its own attributes, not its target's.
func isDirLink(t *testing.T, p string) bool {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSymlink {
		t.Fatalf("%s: mode %v, want a symlink", p, fi.Mode())
	}
	return fi.Sys().(*syscall.Win32FileAttributeData).FileAttributes&syscall.FILE_ATTRIBUTE_DIRECTORY != 0
}

// TestSymlinkOfKind: a symlink gets the kind asked for, whatever its
// target is; where the system refuses it, nothing is left at its name
// (file or directory), and the error says why.
func TestSymlinkOfKind(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var refused error
	for _, c := range []struct {
		name, target string
		dir          bool
	}{
		{"tofile", "missing", false},
		{"todir", `..\not\yet`, true},
	} {
		err := symlinkOfKind(root, c.target, c.name, c.dir)
		if err != nil {
			if fsutil.SymlinkHint(err) == "" {
				t.Errorf("%s: %v, which SymlinkHint does not explain", c.name, err)
			}
			if _, lerr := os.Lstat(filepath.Join(dir, c.name)); !os.IsNotExist(lerr) {
				t.Errorf("%s: refused (%v), yet something is left at its name: %v", c.name, err, lerr)
			}
			if wineNoSymlink(err) {
				refused = err
				continue
			}
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := isDirLink(t, filepath.Join(dir, c.name)); got != c.dir {
			t.Errorf("%s: a directory symlink: %v, want %v", c.name, got, c.dir)
		}
		if target, err := os.Readlink(filepath.Join(dir, c.name)); err != nil || target != c.target {
			t.Errorf("%s: target %q, %v; want %q", c.name, target, err, c.target)
		}
	}
	if refused != nil {
		t.Skipf("Wine cannot create symlinks, which this test needs: %v", refused)
	}
	// The name is taken, in any case.
	if err := symlinkOfKind(root, "x", "TOFILE", true); err == nil || !os.IsExist(err) {
		t.Errorf("over an existing name in another case: %v, want an error saying it exists", err)
	}
}

// TestExtractSymlinkKindsOnWindows: a symlink to a directory extracted
// after it, or reached through "..", is a directory symlink, which can be
// traversed; where symlinks are refused, SkipSymlinks leaves nothing at
// their names.
func TestExtractSymlinkKindsOnWindows(t *testing.T) {
	arc := archiveOf(t,
		symlinkM("a/lib", "../pkg/lib"),
		reg("pkg/lib/x", "x"),
		dirM("b/"),
		symlinkM("b/up", "../pkg"),
		symlinkM("tofile", "pkg/lib/x"),
	)
	s := newSandbox(t)
	res, err := Extract(t.Context(), bytes.NewReader(arc), s.dest, ExtractOptions{SkipSymlinks: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedSymlinks > 0 {
		for _, name := range []string{"a/lib", "b/up", "tofile"} {
			if _, err := os.Lstat(filepath.Join(s.dest, name)); !os.IsNotExist(err) {
				t.Errorf("%s: skipped, yet something is there: %v", name, err)
			}
		}
		if res.SkippedSymlinks != 3 || res.FirstSkipped != "a/lib" {
			t.Errorf("%d skipped, first %q; want 3, a/lib", res.SkippedSymlinks, res.FirstSkipped)
		}
		t.Skip("this system refuses symlinks (Wine has none; Windows needs a privilege)")
	}
	for name, dir := range map[string]bool{"a/lib": true, "b/up": true, "tofile": false} {
		if got := isDirLink(t, filepath.Join(s.dest, name)); got != dir {
			t.Errorf("%s: a directory symlink: %v, want %v", name, got, dir)
		}
	}
	for _, p := range []string{"a/lib/x", "b/up/lib/x", "tofile"} {
		if b, err := os.ReadFile(filepath.Join(s.dest, p)); err != nil || string(b) != "x" {
			t.Errorf("%s: %q, %v; want x", p, b, err)
		}
	}
}
