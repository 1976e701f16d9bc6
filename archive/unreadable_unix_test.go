//go:build unix

package archive

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteNamesUnreadableFile: a file the user may not read fails the
// archive with an error naming it where it is on disk, not by its member
// name (which, for an entry of several paths, starts "0/"). Root reads
// it, and its archive succeeds.
func TestWriteNamesUnreadableFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	secret := filepath.Join(src, "a", "deep", "secret")
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Source{{Dir: src}, {Paths: []string{src}}} {
		_, err := WriteSource(t.Context(), io.Discard, s, WriteOptions{})
		if os.Geteuid() == 0 {
			if err != nil {
				t.Errorf("%+v as root: %v", s, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "open "+secret+": permission denied") {
			t.Errorf("%+v: %v; want it to name %s", s, err, secret)
		}
	}
}

// TestWriteExcludedInUnsearchableDir: entries the excludes leave out of
// a directory that may be listed but not searched (mode 0444: no lstat
// of what it holds succeeds) are never looked at, so the archive
// succeeds; a directory left out by a pattern ending in "/" is known
// from its listing. Root searches it anyway: as root, both archives
// succeed (make test-unprivileged runs the test as a user).
func TestWriteExcludedInUnsearchableDir(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "p")
	if err := os.MkdirAll(filepath.Join(p, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "x.db"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(p, 0o755) })
	ex, err := NewExclude([]string{"d/", "*.db"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := WriteSource(t.Context(), io.Discard, Source{Dir: src, Exclude: ex}, WriteOptions{})
	if err != nil || res.Files != 1 {
		t.Errorf("Write: %v, %d members; want p alone", err, res.Files)
	}
	// Without the excludes the same tree fails: the test can see an lstat.
	_, err = WriteSource(t.Context(), io.Discard, Source{Dir: src}, WriteOptions{})
	if os.Geteuid() == 0 {
		if err != nil {
			t.Errorf("Write without excludes as root: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Write without excludes: %v; want permission denied", err)
	}
}
