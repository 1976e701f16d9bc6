package archive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// TestExtractWritersAgree: every writer count restores the same tree, with
// small files (handed to writers), large ones (streamed by the reader) and
// hardlinks to small files still queued when the link comes.
func TestExtractWritersAgree(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 300})
	if err := os.WriteFile(filepath.Join(src, "large.bin"), noise(pooledFileMax+12345), 0o640); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		small := filepath.Join(src, fmt.Sprintf("s%02d", i))
		if err := os.WriteFile(small, []byte(strings.Repeat("x", i)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(small, small+".link"); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	want, err := Write(t.Context(), &buf, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want.Index = IndexInfo{} // Write's alone: Extract reads no index
	for _, w := range []int{0, 1, 2, 8} {
		dst := filepath.Join(t.TempDir(), "dst")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		got, err := Extract(t.Context(), bytes.NewReader(buf.Bytes()), dst, ExtractOptions{Writers: w})
		if err != nil {
			t.Fatalf("Writers %d: %v", w, err)
		}
		if got != want {
			t.Errorf("Writers %d: result %+v, want %+v", w, got, want)
		}
		treetest.AssertEqual(t, src, dst)
	}
	if _, err := Extract(t.Context(), bytes.NewReader(buf.Bytes()), t.TempDir(), ExtractOptions{Writers: -1}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("Writers -1: err = %v, want ErrInvalidArgument", err)
	}
}

// TestExtractWriterFailureStopsExtraction: a file a writer cannot create
// (a name component longer than the file system allows) fails Extract
// with an error naming it, however many files were queued behind it.
func TestExtractWriterFailureStopsExtraction(t *testing.T) {
	long := "d/" + strings.Repeat("n", 300)
	members := []member{dirM("d/"), reg(long, "doomed")}
	for i := range 200 {
		members = append(members, reg(fmt.Sprintf("d/f%03d", i), "after"))
	}
	dst := t.TempDir()
	_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, members...)), dst, ExtractOptions{})
	if err == nil || !strings.Contains(err.Error(), "nnnnnnnn") {
		t.Fatalf("err = %v, want an error naming the long file", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "d", "f199")); err == nil {
		t.Errorf("the last file was still written after the failure")
	}
}

// TestBufPools checks the size classes small files are read into: each
// buffer has the length asked for and a power-of-two capacity that is the
// smallest of the classes holding it, so a reused buffer always fits.
func TestBufPools(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 65536, 65537, pooledFileMax - 1, pooledFileMax} {
		b := getBuf(n)
		c := cap(*b)
		if len(*b) != n || c < n || c&(c-1) != 0 || c < 1<<minBufShift || c > pooledFileMax {
			t.Errorf("getBuf(%d): len %d cap %d", n, len(*b), c)
		}
		if n > 1<<minBufShift && c/2 >= n {
			t.Errorf("getBuf(%d): cap %d, want the smallest class", n, c)
		}
		*b = (*b)[:n/2] // as for a member cut short
		putBuf(b)
		if again := getBuf(n); len(*again) != n || cap(*again) != c {
			t.Errorf("getBuf(%d) after putBuf: len %d cap %d, want %d, %d", n, len(*again), cap(*again), n, c)
		}
	}
}
