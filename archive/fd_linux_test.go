//go:build linux

package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// openFDsTo lists the process's descriptors open on dir (Linux /proc).
func openFDsTo(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && target == dir {
			n++
		}
	}
	return n
}

// TestExtractClosesTopDirDescriptor: Extract leaves no descriptor open
// on the destination once it returns (the one files are created through
// is closed, not left to a garbage collection).
func TestExtractClosesTopDirDescriptor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	data := archiveOf(t, reg("a", "a"), reg("b", "b"))
	for _, writers := range []int{1, 4} {
		dest := t.TempDir()
		if _, err := Extract(t.Context(), bytes.NewReader(data), dest, ExtractOptions{Writers: writers}); err != nil {
			t.Fatal(err)
		}
		if n := openFDsTo(t, dest); n != 0 {
			t.Errorf("Writers %d: %d descriptors still open on the destination after Extract returned", writers, n)
		}
	}
}
