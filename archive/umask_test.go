//go:build unix

package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestExtractModesUnderAnyUmask: extracted files keep their exact modes
// whatever the umask, both small ones (written by the writer pool) and
// large ones (streamed by the reader), whether they are created with their
// final mode or need a chmod after.
func TestExtractModesUnderAnyUmask(t *testing.T) {
	modes := []fs.FileMode{0o644, 0o444, 0o755, 0o555, 0o600, 0o640, 0o664, 0o666, 0o777, 0o000}
	// A hand-made archive, not Write's: a user who is not root cannot
	// read a source file of mode 000, but must extract one.
	var ms []member
	for i, m := range modes {
		for _, size := range []int{10, pooledFileMax + 1} {
			body := string(bytes.Repeat([]byte{byte(i)}, size))
			ms = append(ms, member{hdr: tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%d-%d", i, size),
				Mode: int64(m), Size: int64(size)}, body: body})
		}
	}
	buf := bytes.NewBuffer(archiveOf(t, ms...))
	for _, um := range []int{0o022, 0o077, 0o002} {
		t.Run(fmt.Sprintf("umask=%03o", um), func(t *testing.T) {
			old := syscall.Umask(um)
			defer syscall.Umask(old)
			s := newSandbox(t)
			if _, err := Extract(t.Context(), bytes.NewReader(buf.Bytes()), s.dest, ExtractOptions{}); err != nil {
				t.Fatal(err)
			}
			for i, m := range modes {
				for _, size := range []int{10, pooledFileMax + 1} {
					name := fmt.Sprintf("f%d-%d", i, size)
					fi, err := os.Lstat(filepath.Join(s.dest, name))
					if err != nil {
						t.Fatal(err)
					}
					if got := fi.Mode().Perm(); got != m {
						t.Errorf("%s: mode %v, want %v", name, got, m)
					}
				}
			}
		})
	}
}
