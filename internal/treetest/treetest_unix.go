//go:build unix

package treetest

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileID identifies an inode.
type fileID struct{ dev, ino uint64 }

// identity returns the inode and link count of the file at path, from
// its lstat information info.
func identity(_ string, info fs.FileInfo) (fileID, uint64, error) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 1, nil
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, uint64(st.Nlink), nil
}

// lchtimes sets the mtime (and atime) of a symlink itself.
func lchtimes(path string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
