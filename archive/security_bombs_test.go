package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
)

// TestSecurityImplicitDirsCostLinear: a member deep in a tree whose
// directories the archive does not list creates every one of them, and
// their handles cost system calls in proportion to the directories, not
// to the directories times their depth. Before, setting the modes of
// such directories, deepest first, from more branches than handles are
// kept open, reopened each one's chain from the top: a few hundred bytes
// of archive (one file per branch, 2000 levels deep) kept a pull busy
// for hours.
func TestSecurityImplicitDirsCostLinear(t *testing.T) {
	const branches, depth = maxDirRoots + 4, 150
	var ms []member
	for b := range branches {
		ms = append(ms, reg(strings.Repeat(fmt.Sprintf("%c/", 'a'+b), depth)+"f", "x"))
	}
	z := archiveOf(t, ms...)
	var opens int
	old := openSubRoot
	openSubRoot = func(parent *os.Root, base string) (*os.Root, error) {
		opens++
		return old(parent, base)
	}
	t.Cleanup(func() { openSubRoot = old })
	s := newSandbox(t)
	res, err := Extract(t.Context(), bytes.NewReader(z), s.dest, ExtractOptions{Writers: 1, Decoders: 1})
	if err != nil || res.Files != branches {
		t.Fatalf("extract: %d members, %v", res.Files, err)
	}
	dirs := branches * depth
	if opens > 2*dirs {
		t.Errorf("%d directory handles opened for %d directories; want at most %d", opens, dirs, 2*dirs)
	}
	// The directories still get the mode of one the archive does not
	// list.
	last := fmt.Sprintf("%c/", 'a'+branches-1)
	deepest := filepath.Join(s.dest, filepath.FromSlash(strings.Repeat(last, depth)))
	for _, d := range []string{filepath.Join(s.dest, "a"), deepest} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want %v", d, fi.Mode().Perm(), fs.FileMode(0o755))
		}
	}
}

// TestNameBytesBounded: the total length of the members' names and link
// targets is capped, whatever the member count allows, so that an archive
// of very many long names cannot make extraction keep gigabytes of names;
// a tree within the cap extracts.
func TestNameBytesBounded(t *testing.T) {
	old := maxNameBytes
	maxNameBytes = 64 << 10
	t.Cleanup(func() { maxNameBytes = old })
	part := strings.Repeat("n", 249)
	long := func(i int) string { return fmt.Sprintf("%04d/%s/%s/%s/%s", i, part, part, part, part) }
	var within, over []member
	for i := range 60 { // about 60 KB of names
		within = append(within, reg(long(i), "x"))
	}
	for i := range 40 { // names and link targets: about 80 KB
		over = append(over, symlinkM(long(i), long(i+1000)))
	}
	if _, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, within...)), t.TempDir(), ExtractOptions{}); err != nil {
		t.Fatalf("a tree within the cap: %v", err)
	}
	_, err := Inspect(t.Context(), bytes.NewReader(archiveOf(t, over...)), ExtractOptions{})
	if !errors.Is(err, tiercache.ErrLimitExceeded) || !strings.Contains(err.Error(), "names and link targets total more than 65536 bytes") {
		t.Fatalf("names over the cap: %v; want a limit error saying so", err)
	}
}
