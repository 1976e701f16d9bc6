package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveAllInKeepsOtherNamesReadOnly: RemoveAllIn removes a file or
// a tree under its root and leaves the other names of the read-only
// files there, outside the root, read-only and unchanged; a name that
// escapes the root is refused.
func TestRemoveAllInKeepsOtherNamesReadOnly(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "root")
	for _, p := range []string{filepath.Join(dir, "tree", "sub"), filepath.Join(base, "outside")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kept := map[string]string{"kept-file": `root\file`, "kept-tree": `root\tree\sub\f`, "kept-outside": `outside\f`}
	for k, name := range kept {
		if err := os.WriteFile(filepath.Join(base, k), []byte(k), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(base, k), filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, name := range []string{"file", "tree"} {
		if err := RemoveAllIn(root, name); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", name, err)
		}
	}
	if err := RemoveAllIn(root, "../outside"); err == nil {
		t.Error("RemoveAllIn of a name outside the root: no error")
	}
	if _, err := os.Lstat(filepath.Join(base, "outside", "f")); err != nil {
		t.Errorf("a name outside the root was removed: %v", err)
	}
	for k := range kept {
		p := filepath.Join(base, k)
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm()&0o200 != 0 {
			t.Errorf("%s: %v, %v; want it still read-only", k, fi.Mode(), err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != k {
			t.Errorf("%s = %q, %v; want %q", k, b, err, k)
		}
	}
}
