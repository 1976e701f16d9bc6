package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// The cross-OS fixtures are archives of crossTree written by Write on
// Linux (testdata/crossos/linux.tar.zst) and by the Windows build under
// Wine (windows.tar.zst). Each OS's tests restore both, so an archive
// pushed on one OS is shown to restore on the other. To write this OS's
// fixture again (after a format change), run the test with
// TIERCACHE_UPDATE_CROSSOS=1: `make crossos-fixtures` does both.
const crossOSDir = "testdata/crossos"

// crossTree builds, in dir, a tree of what every OS holds alike: nested
// directories, an empty one, a Unicode name, a file of several frames,
// a read-only file (0444, which Windows keeps as its read-only
// attribute) and a hardlinked pair, with 0644 files and 0755 directories
// (all Windows records) and mtimes that are whole multiples of 100 ns
// (Windows's resolution). No symlinks: Windows needs a privilege for
// them, and executable bits, which Windows does not keep.
func crossTree(t *testing.T, dir string) {
	t.Helper()
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	i := 0
	stamp := func(p string) {
		i++
		mt := base.Add(time.Duration(i)*time.Second + time.Duration(i)*1234500) // 100 ns multiples
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		stamp(p)
	}
	for _, d := range []string{"src/pkg/sub", "empty", "ünïcode-名前"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("src/pkg/a.go", []byte("package pkg\n"), 0o644)
	write("src/pkg/sub/b.txt", bytes.Repeat([]byte("line of text\n"), 100), 0o644)
	write("ünïcode-名前/ファイル.txt", []byte("utf-8 names\n"), 0o644)
	// More than two frames, of repeated noise so the fixture stays small.
	write("big.bin", bytes.Repeat(noiseSeed(4096, 3), (9<<20)/4096+1)[:9<<20+77], 0o644)
	write("src/readonly.txt", []byte("read only\n"), 0o444)
	write("src/pkg/shared.txt", []byte("one file, two names\n"), 0o644)
	if err := os.Link(filepath.Join(dir, "src", "pkg", "shared.txt"), filepath.Join(dir, "src", "shared-link.txt")); err != nil {
		t.Fatal(err)
	}
	// Directories last, deepest first: writing into one moves its mtime.
	for _, d := range []string{"src/pkg/sub", "src/pkg", "src", "empty", "ünïcode-名前"} {
		stamp(filepath.Join(dir, filepath.FromSlash(d)))
	}
}

// TestCrossOSFixtures restores the archive each OS wrote of crossTree
// and compares it with crossTree built here: content, names, hardlinks,
// modes and mtimes, with zero differences.
func TestCrossOSFixtures(t *testing.T) {
	want := filepath.Join(t.TempDir(), "want")
	if err := os.Mkdir(want, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsutil.RemoveAll(want) }) // read-only files
	crossTree(t, want)
	if os.Getenv("TIERCACHE_UPDATE_CROSSOS") != "" {
		var buf bytes.Buffer
		if _, err := Write(t.Context(), &buf, want, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(crossOSDir, runtime.GOOS+".tar.zst")
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, buf.Len())
	}
	for _, osName := range []string{"linux", "windows"} {
		t.Run("from "+osName, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(crossOSDir, osName+".tar.zst"))
			if err != nil {
				t.Fatal(err)
			}
			got := filepath.Join(t.TempDir(), "got")
			if err := os.Mkdir(got, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = fsutil.RemoveAll(got) })
			res, err := Extract(t.Context(), bytes.NewReader(data), got, ExtractOptions{})
			if err != nil {
				t.Fatalf("restoring the archive %s wrote: %v", osName, err)
			}
			treetest.AssertEqual(t, want, got)
			if want := int64(12); res.Files != want {
				t.Errorf("%d members, want %d", res.Files, want)
			}
		})
	}
}

// TestLongPaths: a tree whose paths run past Windows's old 260-character
// limit, below a destination whose own path is long too, round-trips
// (on Windows, under Wine, as elsewhere).
func TestLongPaths(t *testing.T) {
	seg := strings.Repeat("d", 60)
	src := filepath.Join(t.TempDir(), "src")
	deep := filepath.Join(src, seg, seg, seg, seg, seg)
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(deep, strings.Repeat("f", 80)+".txt")
	if err := os.WriteFile(file, []byte("deep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(file) <= 300 {
		t.Fatalf("path of %d characters, want more than 300", len(file))
	}
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, src, WriteOptions{}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	dest := filepath.Join(t.TempDir(), seg, seg)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(t.Context(), &buf, dest, ExtractOptions{}); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dest, seg, seg, seg, seg, seg, strings.Repeat("f", 80)+".txt"))
	if err != nil || string(got) != "deep" {
		t.Errorf("the deepest file: %q, %v", got, err)
	}
}
