//go:build !tiercache_portable

package archive

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// outFile is an extracted regular file being written, through a raw
// descriptor created relative to its directory's descriptor. Not an
// *os.File opened through os.Root: that costs four fcntl calls, a failing
// epoll_ctl and a readlinkat per file, about half the system calls of an
// extraction. The safety is the same: the directory descriptor was opened
// through the destination's os.Root, base is a single checked component,
// and O_EXCL|O_NOFOLLOW never opens an existing file or follows a symlink.
type outFile struct {
	fd   int
	path string // for errors
}

// createFile creates base in h with permission bits perm (see
// fsutil.CreateMode); the descriptor may write it whatever perm is.
func createFile(h *dirHandle, base string, perm fs.FileMode) (*outFile, error) {
	dfd, err := h.fd()
	path := filepath.Join(h.path, base)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: h.path, Err: err}
	}
	fd, err := fsutil.IgnoringEINTR(func() (int, error) {
		return unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
	})
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return &outFile{fd: fd, path: path}, nil
}

// Write writes all of p.
func (f *outFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := fsutil.IgnoringEINTR(func() (int, error) { return unix.Write(f.fd, p[n:]) })
		if err != nil {
			return n, &fs.PathError{Op: "write", Path: f.path, Err: err}
		}
		n += m
	}
	return n, nil
}

// Chmod sets the file's permission bits.
func (f *outFile) Chmod(perm fs.FileMode) error {
	if err := unix.Fchmod(f.fd, uint32(perm)); err != nil {
		return &fs.PathError{Op: "chmod", Path: f.path, Err: err}
	}
	return nil
}

// Finish sets the file's mtime (and atime) through the descriptor, after
// the last write, and closes it.
func (f *outFile) Finish(mtime time.Time) error {
	mt, err := unix.TimeToTimespec(mtime)
	if err == nil {
		err = fsutil.Futimens(f.fd, &[2]unix.Timespec{mt, mt})
	}
	if err != nil {
		_ = unix.Close(f.fd)
		return &fs.PathError{Op: "chtimes", Path: f.path, Err: err}
	}
	if err := unix.Close(f.fd); err != nil {
		return &fs.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// Abort closes the file after a failure.
func (f *outFile) Abort() { _ = unix.Close(f.fd) }

// dirDesc is a dirHandle's descriptor of its directory, opened through
// its os.Root on first use.
type dirDesc struct {
	dirOnce sync.Once
	dir     *os.File
	dirFD   int
	dirErr  error
}

// fd returns the descriptor of h's directory. It stays valid until h's
// release.
func (h *dirHandle) fd() (int, error) {
	h.dirOnce.Do(func() {
		if h.dir, h.dirErr = h.root.Open("."); h.dirErr == nil {
			h.dirFD = int(h.dir.Fd())
		}
	})
	return h.dirFD, h.dirErr
}

// close closes the descriptor, if it was opened.
func (d *dirDesc) close() {
	if d.dir != nil {
		d.dir.Close()
	}
}
