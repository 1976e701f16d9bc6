package archive

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/windows"
)

// holdUnshared opens p (a directory if dir) as a database or a log does,
// with no sharing, until the test ends: any other open of it fails with
// a sharing violation.
func holdUnshared(t *testing.T, p string, dir bool) {
	t.Helper()
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		t.Fatal(err)
	}
	var flags uint32 = windows.FILE_ATTRIBUTE_NORMAL
	if dir {
		flags = windows.FILE_FLAG_BACKUP_SEMANTICS
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ, 0, nil, windows.OPEN_EXISTING, flags, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { windows.CloseHandle(h) })
}

// TestWriteExcludesHeldFiles: a file and a directory another process
// holds open without sharing, left out by excludes (the directory by a
// pattern ending in "/"), are never opened, so the archive succeeds;
// without the excludes it fails on them.
func TestWriteExcludesHeldFiles(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "keep"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "locked.db"), []byte("db"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "held"), 0o755); err != nil {
		t.Fatal(err)
	}
	holdUnshared(t, filepath.Join(src, "locked.db"), false)
	holdUnshared(t, filepath.Join(src, "held"), true)
	for _, name := range []string{"locked.db", "held"} {
		ex, err := NewExclude([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		_, err = WriteSource(t.Context(), io.Discard, Source{Dir: src, Exclude: ex}, WriteOptions{})
		if !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
			t.Fatalf("with only %s left out: %v; want a sharing violation on the other, or the test sees nothing", name, err)
		}
	}
	ex, err := NewExclude([]string{"locked.db", "held/"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := WriteSource(t.Context(), io.Discard, Source{Dir: src, Exclude: ex}, WriteOptions{})
	if err != nil || res.Files != 1 {
		t.Errorf("with both left out: %v, %d members; want keep alone", err, res.Files)
	}
}
