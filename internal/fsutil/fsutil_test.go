package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveAllReadOnly(t *testing.T) {
	root := filepath.Join(t.TempDir(), "tree")
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{sub, filepath.Join(root, "a"), root} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(root); !os.IsNotExist(err) {
		t.Fatalf("tree still there: %v", err)
	}
	if err := RemoveAll(root); err != nil {
		t.Fatalf("missing path: %v", err)
	}
}

func TestCreateMode(t *testing.T) {
	for _, c := range []struct {
		perm   fs.FileMode
		umask  int
		create fs.FileMode
		chmod  bool
	}{
		{0o644, 0o022, 0o644, false},
		{0o444, 0o022, 0o444, false},
		{0o755, 0o022, 0o755, false},
		{0o664, 0o022, 0o600, true}, // the umask would drop g+w
		{0o644, 0o077, 0o600, true},
		{0o777, 0o000, 0o777, false},
		{0o644, -1, 0o600, true}, // umask unknown
		{0o1644, 0o022, 0o600, true},
	} {
		create, chmod := CreateMode(c.perm, c.umask)
		if create != c.create || chmod != c.chmod {
			t.Errorf("CreateMode(%o, %03o) = %o, %v; want %o, %v", c.perm, c.umask, create, chmod, c.create, c.chmod)
		}
	}
}

func TestTypeName(t *testing.T) {
	for mode, want := range map[fs.FileMode]string{
		fs.ModeNamedPipe:                  "FIFO",
		fs.ModeDevice:                     "device node",
		fs.ModeDevice | fs.ModeCharDevice: "device node",
		fs.ModeSocket:                     "socket",
		fs.ModeIrregular:                  "special file (?---------)",
	} {
		if got := TypeName(mode); got != want {
			t.Errorf("TypeName(%v) = %q, want %q", mode, got, want)
		}
	}
}

func TestFreeBytes(t *testing.T) {
	n, err := FreeBytes(t.TempDir())
	if err != nil || n <= 0 {
		t.Fatalf("FreeBytes = %d, %v; want some bytes", n, err)
	}
	if _, err := FreeBytes(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("FreeBytes of a missing path: no error")
	}
}

// TestRemoveAllKeepsOtherNamesReadOnly: removing a tree that holds one
// name of a read-only file leaves its other names, outside the tree,
// read-only. On Windows the attribute belongs to the file, and deleting a
// read-only name the classic way clears it first.
func TestRemoveAllKeepsOtherNamesReadOnly(t *testing.T) {
	base := t.TempDir()
	kept := filepath.Join(base, "kept")
	tree := filepath.Join(base, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kept, []byte("shared"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(kept, filepath.Join(tree, "sub", "f")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Fatalf("tree still there: %v", err)
	}
	fi, err := os.Lstat(kept)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o200 != 0 {
		t.Errorf("the other name became writable: %v", fi.Mode())
	}
	if b, err := os.ReadFile(kept); err != nil || string(b) != "shared" {
		t.Errorf("the other name reads %q, %v", b, err)
	}
}
