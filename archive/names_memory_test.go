package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
)

// hostileNames streams n empty regular files named name(i) into a small
// zstd archive, without holding the tar stream (hundreds of MB of long
// names) in memory.
func hostileNames(t testing.TB, n int, name func(i int) string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(enc)
	for i := range n {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name(i), Mode: 0o644, ModTime: time.Unix(1_600_000_000, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// heapGrowth runs f and returns the most the heap grew above what it
// held before (sampled every millisecond, the garbage collector made
// eager so that the samples follow what is live) and the bytes f
// allocated in all.
func heapGrowth(f func()) (peak, total uint64) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var mu sync.Mutex
	high := before.HeapAlloc
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		high = max(high, ms.HeapAlloc)
		mu.Unlock()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	f()
	sample()
	close(stop)
	<-done
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return high - before.HeapAlloc, after.TotalAlloc - before.TotalAlloc
}

// TestNamesMemoryLinear: the memory extraction spends on the names it
// tracks grows with the archive's distinct path components, not with the
// length of every member's full path: neither many long names below one
// long parent nor a path thousands of components deep may cost more than
// a fixed allowance plus a few hundred bytes per component.
func TestNamesMemoryLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("builds archives of hundreds of MB of names")
	}
	const perComponent, fixed = 400, 8 << 20
	parent := strings.Repeat(strings.Repeat("p", 250)+"/", 15) // 3765 bytes
	deep := strings.Repeat("a/", 2045)                         // 2045 components
	cases := []struct {
		name       string
		n          int
		member     func(i int) string
		components int // distinct (parent, component) pairs
	}{
		{"long names", 20_000, func(i int) string { return fmt.Sprintf("%sg%03d/f%05d", parent, i%100, i) }, 15 + 100 + 20_000},
		{"deep paths", 32, func(i int) string { return fmt.Sprintf("t%02d/%sf", i, deep) }, 32 * (1 + 2045 + 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arch := hostileNames(t, c.n, c.member)
			var err error
			peak, total := heapGrowth(func() {
				_, err = Inspect(t.Context(), bytes.NewReader(arch), ExtractOptions{Decoders: 1})
			})
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			bound := uint64(fixed + perComponent*c.components)
			t.Logf("%d members, %d components, %d-byte archive: heap grew %.1f MB (bound %.1f MB), %.1f MB allocated",
				c.n, c.components, len(arch), float64(peak)/1e6, float64(bound)/1e6, float64(total)/1e6)
			if peak > bound {
				t.Errorf("extraction's heap grew %d bytes for %d distinct path components; want at most %d", peak, c.components, bound)
			}
		})
	}
}

// BenchmarkInspectNames times the name tracking alone (Inspect writes
// nothing): an ordinary tree's names, and members alternating between two
// directories 2000 components deep, where each member's parents are
// looked up again.
func BenchmarkInspectNames(b *testing.B) {
	deep := strings.Repeat("a/", 2040)
	for _, c := range []struct {
		name   string
		n      int
		member func(i int) string
	}{
		{"ordinary", 100_000, func(i int) string { return fmt.Sprintf("node_modules/pkg%03d/lib/sub%d/file%05d.js", i/400, i%7, i) }},
		{"deep", 2_000, func(i int) string { return fmt.Sprintf("%sx%d/f%05d", deep, i%2, i) }},
	} {
		arch := hostileNames(b, c.n, c.member)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Inspect(b.Context(), bytes.NewReader(arch), ExtractOptions{Decoders: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestImplicitDirsBounded: directories no member describes each cost
// extraction a node, so their count is capped (at maxNameBytes /
// implicitDirBytes) however short the names that imply them.
func TestImplicitDirsBounded(t *testing.T) {
	old := maxNameBytes
	maxNameBytes = 100 * implicitDirBytes
	t.Cleanup(func() { maxNameBytes = old })
	within := archiveOf(t, reg(strings.Repeat("d/", 100)+"f", "x"))
	if _, err := Extract(t.Context(), bytes.NewReader(within), t.TempDir(), ExtractOptions{}); err != nil {
		t.Fatalf("100 implicit directories, the cap: %v", err)
	}
	over := archiveOf(t, reg(strings.Repeat("d/", 50)+"f", "x"), reg("e/"+strings.Repeat("d/", 50)+"f", "x"))
	_, err := Inspect(t.Context(), bytes.NewReader(over), ExtractOptions{})
	if !errors.Is(err, tiercache.ErrLimitExceeded) || !strings.Contains(err.Error(), "more than 100 directories that no member describes") {
		t.Fatalf("101 implicit directories: %v; want a limit error saying so", err)
	}
}

// TestWriteRefusesNamesOverCap: a tree whose names and link targets
// total more than Extract accepts cannot be pushed (an archive no pull
// could restore), and the error names the limit; at exactly the limit,
// counted as Extract counts the members, it is pushed and restored.
func TestWriteRefusesNamesOverCap(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "dir", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		name := filepath.Join(src, "dir", "sub", fmt.Sprintf("file-with-a-longish-name-%02d.txt", i))
		if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub/file-with-a-longish-name-00.txt", filepath.Join(src, "dir", "link")); err != nil {
		skipWineNoSymlink(t, err)
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, src, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var total int64
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(hdr.Name) + len(hdr.Linkname))
	}

	old := maxNameBytes
	t.Cleanup(func() { maxNameBytes = old })
	maxNameBytes = total - 1
	_, err = Write(t.Context(), io.Discard, src, WriteOptions{})
	want := fmt.Sprintf("names and link targets total more than the %d bytes a restore accepts", total-1)
	if !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Write of %d bytes of names over a cap of %d: %v; want an invalid-argument error saying %q", total, total-1, err, want)
	}

	maxNameBytes = total
	buf.Reset()
	if _, err := Write(t.Context(), &buf, src, WriteOptions{}); err != nil {
		t.Fatalf("Write at the cap: %v", err)
	}
	if _, err := Extract(t.Context(), bytes.NewReader(buf.Bytes()), t.TempDir(), ExtractOptions{SkipSymlinks: true}); err != nil {
		t.Fatalf("Extract of what Write made at the cap: %v", err)
	}
}

// TestDeferredSymlinkKindsFolded: where names may fold, a deferred
// symlink whose target names a directory in another case gets the
// directory kind, even when the name's components match different
// spellings of its parents ("PKG/SUB" is "Pkg/sub", not below "pkg").
// Needs a destination that keeps both spellings, which Windows' does not.
func TestDeferredSymlinkKindsFolded(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs a case-sensitive destination")
	}
	setDeferSymlinks(t, true)
	setFoldingNames(t, true)
	got := recordSymlinkKinds(t)
	arc := archiveOf(t,
		dirM("pkg/"), dirM("pkg/lib/"), dirM("Pkg/"), dirM("Pkg/sub/"), reg("Pkg/f", "x"),
		symlinkM("l", "PKG/LIB"), symlinkM("m", "PKG/SUB"), symlinkM("n", "PKG/F"), symlinkM("o", "pkg/none"),
	)
	if _, err := Extract(t.Context(), bytes.NewReader(arc), t.TempDir(), ExtractOptions{}); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	for base, dir := range map[string]bool{"l": true, "m": true, "n": false, "o": false} {
		if d, ok := got[base]; !ok || d != dir {
			t.Errorf("symlink %s: created: %v, as a directory symlink: %v; want a directory symlink: %v", base, ok, d, dir)
		}
	}
}

// TestHardlinksOverFileSystemLimit: a file system that holds no more
// links to a file (ext4: 65,000) refuses the member as over a limit, a
// miss, rather than failing the pull; the links before it are in.
func TestHardlinksOverFileSystemLimit(t *testing.T) {
	old := linkAt
	links := 0
	linkAt = func(root *os.Root, target, name string) error {
		if links == 2 {
			return &os.LinkError{Op: "linkat", Old: target, New: name, Err: syscall.EMLINK}
		}
		links++
		return old(root, target, name)
	}
	t.Cleanup(func() { linkAt = old })
	arc := archiveOf(t, reg("f", "x"), hardlinkM("l1", "f"), hardlinkM("l2", "f"), hardlinkM("l3", "f"))
	dest := t.TempDir()
	_, err := Extract(t.Context(), bytes.NewReader(arc), dest, ExtractOptions{})
	var ee *EntryError
	if !errors.Is(err, tiercache.ErrLimitExceeded) || !errors.As(err, &ee) || ee.Name != "l3" || !strings.Contains(ee.Reason, `no more hardlinks to "f"`) {
		t.Fatalf("a third link refused: %v; want a limit error naming l3 and its target", err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "l2")); err != nil || string(b) != "x" {
		t.Errorf("l2: %q, %v; want the links before the refused one", b, err)
	}
}
