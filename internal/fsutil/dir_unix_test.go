//go:build unix

package fsutil

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDirEntries: the listing gives each entry's type, as lstat would,
// for enough entries to take several reads of a small buffer. Where it
// gives none (TypeUnknown), only the names are checked.
func TestDirEntries(t *testing.T) {
	dir := t.TempDir()
	want := map[string]fs.FileMode{"d": fs.ModeDir, "l": fs.ModeSymlink, "p": fs.ModeNamedPipe}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "p"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		name := fmt.Sprintf("f%03d-%s", i, strings.Repeat("n", i%40))
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = 0
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ents, err := DirEntries(fd, make([]byte, 1024))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fs.FileMode{}
	unknown := 0
	for _, e := range ents {
		if _, dup := got[e.Name]; dup {
			t.Errorf("%q listed twice", e.Name)
		}
		got[e.Name] = e.Type
		if e.Type == TypeUnknown {
			unknown++
			got[e.Name] = want[e.Name]
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d entries listed, want %d: %q", len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("%s: type %v, want %v", name, got[name], typ)
		}
	}
	if unknown > 0 {
		t.Logf("%d of %d entries of unknown type: this file system gives no d_type", unknown, len(ents))
	}
}
