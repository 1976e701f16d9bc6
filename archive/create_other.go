//go:build !linux || tiercache_portable

package archive

import (
	"io/fs"
	"os"
	"time"
)

// outFile is an extracted regular file being written, created through
// its directory's os.Root.
type outFile struct {
	f    *os.File
	h    *dirHandle
	base string
}

// createFile creates base in h with permission bits perm (see
// fsutil.CreateMode); the file may be written whatever perm is.
func createFile(h *dirHandle, base string, perm fs.FileMode) (*outFile, error) {
	f, err := h.root.OpenFile(base, createFlags, perm)
	if err != nil {
		return nil, err
	}
	return &outFile{f: f, h: h, base: base}, nil
}

// Write writes all of p.
func (f *outFile) Write(p []byte) (int, error) { return f.f.Write(p) }

// Chmod sets the file's permission bits.
func (f *outFile) Chmod(perm fs.FileMode) error { return f.f.Chmod(perm) }

// Finish closes the file and sets its mtime.
func (f *outFile) Finish(mtime time.Time) error {
	if err := f.f.Close(); err != nil {
		return err
	}
	return f.h.root.Chtimes(f.base, time.Time{}, nanoRange(mtime))
}

// Abort closes the file after a failure.
func (f *outFile) Abort() { _ = f.f.Close() }

// dirDesc is empty: files are created through os.Root, not a
// descriptor of their directory.
type dirDesc struct{}

func (dirDesc) close() {}
