package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// openFDsTo lists the process's descriptors open on dir (Linux /proc).
func openFDsTo(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
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

// Extract must not leave a descriptor open on the destination once it
// returns: the top directory's dirHandle never drops to zero references,
// so the descriptor its createFile opened (dirDesc) is closed only by a
// garbage collection.
func TestReviewExtractLeaksTopDirDescriptor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only (create_linux.go, /proc)")
	}
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

// Write archives a tree whose member names exceed MaxNameLength (Linux
// allows them: PATH_MAX bounds one system call's path, not a tree's
// depth), but Extract refuses every such archive: the put succeeds and
// every get of the entry fails (Invariant 4, fidelity).
func TestReviewWriteAcceptsTreeExtractRefuses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs openat-built deep trees")
	}
	src := t.TempDir()
	seg := strings.Repeat("n", 200)
	rel := ""
	for range 21 { // 21 * 201 bytes > 4096
		rel = strings.TrimPrefix(rel+"/"+seg, "/")
		fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Mkdir relative to the parent, component by component.
		dfd := fd
		comps := strings.Split(rel, "/")
		for i, c := range comps {
			if i == len(comps)-1 {
				if err := unix.Mkdirat(dfd, c, 0o755); err != nil {
					t.Fatal(err)
				}
				break
			}
			nfd, err := unix.Openat(dfd, c, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			unix.Close(dfd)
			if err != nil {
				t.Fatal(err)
			}
			dfd = nfd
		}
		unix.Close(dfd)
	}
	if len(rel) <= MaxNameLength {
		t.Fatalf("name of %d bytes", len(rel))
	}
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, src, WriteOptions{}); err != nil {
		t.Skipf("Write refuses the tree (which would be fine): %v", err)
	}
	dest := t.TempDir()
	t.Cleanup(func() { _ = fsutil.RemoveAll(dest) })
	if _, err := Extract(t.Context(), &buf, dest, ExtractOptions{}); err != nil {
		t.Errorf("Write accepted the tree, but Extract refuses its archive: %v", err)
	}
}

// frameWriter.record keeps an index while its records (without the
// 28-byte header) fit maxIndexPayload, but ParseIndex refuses a payload
// (header included) over maxIndexPayload: in that 28-byte window Write
// appends an index that ReadIndex refuses (and that fsck then reports as
// damage), instead of leaving it out.
func TestReviewWriteIndexParseIndexRefuses(t *testing.T) {
	fw := &frameWriter{}
	var off, tarOff int64
	add := func(nameLen int) {
		name := strings.Repeat("m", nameLen)
		f := IndexFrame{Offset: off, Length: 1 << 20, TarOffset: tarOff, TarLength: 1 << 20, Member: name}
		off += f.Length
		tarOff += f.TarLength
		fw.record(f)
	}
	// Records summing to exactly maxIndexPayload bytes.
	const per = indexRecordFixed + 4000
	n := maxIndexPayload / per
	rest := maxIndexPayload - n*per
	for i := range n {
		extra := 0
		if rest > 0 {
			extra = min(rest, 90)
			rest -= extra
		}
		_ = i
		add(4000 + extra)
	}
	if rest != 0 || fw.noIndex || fw.idxSize != maxIndexPayload {
		t.Fatalf("setup: rest %d noIndex %v idxSize %d", rest, fw.noIndex, fw.idxSize)
	}
	fw.written, fw.tarOff = off, tarOff
	var buf bytes.Buffer
	hw := &hashWriter{w: &buf}
	info, err := writeIndex(hw, fw)
	if err != nil {
		t.Fatal(err)
	}
	if info.Length == 0 {
		return // no index: fine
	}
	// The archive: data frames (content irrelevant to ReadIndex) then the index.
	archive := append(make([]byte, off), buf.Bytes()...)
	info.Offset = off
	if _, err := ReadIndex(bytes.NewReader(archive), int64(len(archive)), info); err != nil {
		t.Errorf("Write appended an index of %d bytes that ReadIndex refuses: %v", info.Length, err)
	}
}
