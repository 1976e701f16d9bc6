//go:build unix

package archive

import (
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileID identifies an inode, to find hardlinks.
type fileID struct{ dev, ino uint64 }

// identity returns info's inode and link count.
func identity(info fs.FileInfo) (id fileID, nlink uint64, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 0, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, uint64(st.Nlink), true
}

// createFlags are the flags for creating an extracted file: never open an
// existing file, and never follow a symlink in the final component.
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW

// lchtimes sets the mtime of the symlink name inside root without following
// it: os.Root has no Lchtimes, so it opens the parent directory through the
// root and calls utimensat relative to it with AT_SYMLINK_NOFOLLOW.
func lchtimes(root *os.Root, name string, mtime time.Time) error {
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	rc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	// Not via UnixNano, which overflows outside 1678..2262: archives may
	// carry any time. The atime gets the mtime too (UTIME_OMIT is not
	// portable across Unixes; atimes are not part of the format).
	mt, err := unix.TimeToTimespec(mtime)
	if err != nil {
		return &fs.PathError{Op: "lchtimes", Path: name, Err: err}
	}
	ts := []unix.Timespec{mt, mt}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		opErr = unix.UtimesNanoAt(int(fd), path.Base(name), ts, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return err
	}
	if opErr != nil {
		return &fs.PathError{Op: "lchtimes", Path: name, Err: opErr}
	}
	return nil
}
