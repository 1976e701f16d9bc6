//go:build unix

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// inode identifies a file for hardlink detection.
type inode struct {
	dev, ino uint64
}

// inodeOf identifies a file with other names, for hardlink detection,
// from its lstat information fi.
func inodeOf(_ string, fi fs.FileInfo) (inode, bool, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink < 2 {
		return inode{}, false, nil
	}
	return inode{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true, nil
}

// A pointer (index/<name>) is a symlink whose target is the version's
// path relative to index/: creating one and renaming it over the old is
// the atomic swap, and readlink reads it in one system call.

// writePointer creates the pointer tmp naming target. A symlink needs no
// flush of its own: it is made durable with its directory.
func writePointer(tmp, target string, _ bool) error { return os.Symlink(target, tmp) }

// readPointer returns the target the pointer at path names.
func readPointer(path string) (string, error) { return os.Readlink(path) }

// movePointer renames the pointer tmp over dst.
func movePointer(tmp, dst string) error { return os.Rename(tmp, dst) }

// removePointer removes the pointer at path.
func removePointer(path string) error { return os.Remove(path) }

// setPointerTime sets the mtime of the pointer at path to t, leaving its
// atime alone and never following it. A missing pointer is not an error.
func setPointerTime(path string, t time.Time) error {
	ts := []unix.Timespec{{Nsec: utimeOmit}, unix.NsecToTimespec(t.UnixNano())}
	err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// syncPath fsyncs one file or directory.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}
