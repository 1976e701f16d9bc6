//go:build unix

package archive

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tiercache/tiercache"
)

// listen makes a socket at p, closed with the test.
func listen(t *testing.T, p string) {
	t.Helper()
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatalf("cannot make a socket here: %v", err)
	}
	t.Cleanup(func() { l.Close() })
}

// TestSocketsReported: the sockets Write leaves out are counted, the
// first (in the archive's order) named as a member, whether the source
// is a directory or several paths; one an exclude pattern leaves out is
// not counted.
func TestSocketsReported(t *testing.T) {
	src := t.TempDir()
	for _, d := range []string{"a", "b", "skip"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	listen(t, filepath.Join(src, "b", "s2"))
	listen(t, filepath.Join(src, "a", "s1"))
	listen(t, filepath.Join(src, "skip", "s3"))
	ex, err := NewExclude([]string{"skip/"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		src   Source
		n     int64
		first string
	}{
		{"dir", Source{Dir: src}, 3, "a/s1"},
		{"dir, excluded", Source{Dir: src, Exclude: ex}, 2, "a/s1"},
		{"paths", Source{Paths: []string{file, src}}, 3, "1/a/s1"},
		{"one", Source{Dir: filepath.Join(src, "skip", "..", "a", "..", "skip")}, 1, "s3"},
	} {
		res, err := WriteSource(t.Context(), io.Discard, tc.src, WriteOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.Sockets != tc.n || res.FirstSocket != tc.first {
			t.Errorf("%s: Sockets %d, FirstSocket %q; want %d, %q", tc.name, res.Sockets, res.FirstSocket, tc.n, tc.first)
		}
	}
	res, err := Write(t.Context(), io.Discard, filepath.Join(src, "b", ".."), WriteOptions{})
	if err != nil || res.Files != 4 {
		t.Errorf("Write: %d members, %v; want 4 (the sockets left out)", res.Files, err)
	}
	res, err = Write(t.Context(), io.Discard, t.TempDir(), WriteOptions{})
	if err != nil || res.Sockets != 0 || res.FirstSocket != "" {
		t.Errorf("Write of an empty tree: %d sockets, first %q, %v", res.Sockets, res.FirstSocket, err)
	}
}

// TestOddFileNamedOnDisk: a FIFO fails the archive naming its path on
// disk, as the source was given, whether the source is a directory or
// one of several paths (whose members are numbered in the archive).
func TestOddFileNamedOnDisk(t *testing.T) {
	src := t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(src, "d", "p")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Source{{Dir: src}, {Paths: []string{file, src}}, {Paths: []string{file, fifo}}} {
		_, err := WriteSource(t.Context(), io.Discard, s, WriteOptions{})
		if want := fifo + " is a FIFO"; !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v; want ErrInvalidArgument saying %q", s, err, want)
		}
	}
}
