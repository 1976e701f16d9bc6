package archive

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
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
