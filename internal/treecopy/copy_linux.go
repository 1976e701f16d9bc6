//go:build !tiercache_portable

package treecopy

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// cloneNew makes no clone on Linux: fill clones into the file copyFile
// creates (FICLONE needs an open destination).
func (c *copier) cloneNew(*dirHandle, int, fileJob, uint32, *[2]unix.Timespec) (bool, error) {
	return false, nil
}

// fill clones in into out, or copies size bytes when the file systems
// cannot clone.
func (c *copier) fill(out, in int, size int64) error {
	if size == 0 {
		return nil
	}
	if !c.noClone.Load() {
		err := unix.IoctlFileClone(out, in)
		if err == nil {
			c.cloned.Add(1)
			return nil
		}
		// Only "this file system cannot": other failures may be about
		// this one file, and the next may clone fine.
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.ENOSYS) {
			c.noClone.Store(true)
		}
	}
	// Stopping at the known size saves the call that would read EOF.
	var copied int64
	for copied < size {
		n, err := unix.CopyFileRange(in, nil, out, nil, int(min(size-copied, 1<<30)), 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			// Unsupported here (an old kernel, two file systems), or
			// the source shrank: plain reads and writes until EOF, on
			// from the offsets copy_file_range advanced.
			return readWrite(out, in, make([]byte, 256<<10))
		}
		copied += int64(n)
	}
	return nil
}

// setFileTimes sets the times of the file open as fd, through the
// descriptor: no path, nothing to follow.
func setFileTimes(fd, _ int, _ string, ts *[2]unix.Timespec) error {
	return fsutil.Futimens(fd, ts)
}

// applyDirMeta gives the directory open as fd its mode, then its times,
// both through the descriptor. rel names it in errors.
func applyDirMeta(fd int, mode uint32, ts *[2]unix.Timespec, rel string) error {
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("copy tree: chmod %s: %w", rel, err)
	}
	if err := fsutil.Futimens(fd, ts); err != nil {
		return fmt.Errorf("copy tree: set mtime of %s: %w", rel, err)
	}
	return nil
}

// chmodDirAt adds the mode bits add to the directory name in dirfd, which
// its owner cannot open (mode 0300, say), without following a symlink
// there. An O_PATH descriptor needs no permission on the directory itself.
func chmodDirAt(dirfd int, name string, add uint32) error {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	pfd, err := fsutil.IgnoringEINTR(func() (int, error) { return unix.Openat(dirfd, name, flags, 0) })
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return chmodPath(pfd, add)
}

// chmodPath adds mode bits to the file an O_PATH descriptor refers to.
// fchmod refuses O_PATH descriptors; the descriptor's /proc link names
// exactly that inode, whatever happens to its name meanwhile.
func chmodPath(pfd int, add uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return err
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(pfd), st.Mode&0o7777|add)
}
