//go:build unix && (!linux || tiercache_portable)

package treecopy

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// cloneNew clones the source file open as in to a new file named j.base
// in dir, where the system clones files that way (cloneFile), and gives
// the clone mode and ts. It reports false, and no error, when the file is
// to be copied instead: cloning is unavailable, or failed in any way (a
// failure that is not about cloning then recurs in the copy, which
// reports it).
func (c *copier) cloneNew(dir *dirHandle, in int, j fileJob, mode uint32, ts *[2]unix.Timespec) (bool, error) {
	if cloneFile == nil || j.info.Size() == 0 || c.noClone.Load() {
		return false, nil
	}
	if err := replaceAt(dir.fd, j.base, func() error { return cloneFile(in, dir.fd, j.base) }); err != nil {
		// Only "this file system cannot": other failures may be about
		// this one file, and the next may clone fine.
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) {
			c.noClone.Store(true)
		}
		return false, nil
	}
	// A clone has the source's mode, setuid and setgid bits included,
	// and maybe its times: both are set, by the name just created,
	// without following a symlink a racing writer could put there.
	if err := unix.Fchmodat(dir.fd, j.base, mode, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, fmt.Errorf("copy tree: chmod %s: %w", j.rel, err)
	}
	if err := setFileTimes(-1, dir.fd, j.base, ts); err != nil {
		return false, fmt.Errorf("copy tree: set mtime of %s: %w", j.rel, err)
	}
	c.cloned.Add(1)
	return true, nil
}

// copyBufs holds the buffers fill copies through, so that a tree of many
// small files does not allocate one per file.
var copyBufs = sync.Pool{New: func() any { return new([256 << 10]byte) }}

// fill copies in into out with reads and writes: there is no in-kernel
// copy call common to these systems.
func (c *copier) fill(out, in int, size int64) error {
	if size == 0 {
		return nil
	}
	buf := copyBufs.Get().(*[256 << 10]byte)
	defer copyBufs.Put(buf)
	return readWrite(out, in, buf[:])
}

// setFileTimes sets the times of the file base in the directory dirfd,
// which the caller holds open as fd, by name and without following a
// symlink: macOS has no nanosecond call by descriptor in
// golang.org/x/sys/unix (futimes keeps microseconds).
func setFileTimes(_, dirfd int, base string, ts *[2]unix.Timespec) error {
	return unix.UtimesNanoAt(dirfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}

// applyDirMeta gives the directory open as fd its times, then its mode.
// The times are set through the name "." relative to fd, which needs the
// directory's search bit: it still has it (it is 0700 until now), its
// final mode may not. rel names it in errors.
func applyDirMeta(fd int, mode uint32, ts *[2]unix.Timespec, rel string) error {
	if err := unix.UtimesNanoAt(fd, ".", ts[:], 0); err != nil {
		return fmt.Errorf("copy tree: set mtime of %s: %w", rel, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("copy tree: chmod %s: %w", rel, err)
	}
	return nil
}

// chmodDirAt adds the mode bits add to the directory name in dirfd, which
// its owner cannot open (mode 0300, say). Without O_PATH there is no
// descriptor to chmod through, so it goes by name, never following a
// symlink: one swapped in after the check is chmodded itself (macOS,
// FreeBSD) or refused (Linux, whose fchmodat2 takes the flag since 6.6).
// Like the open it stands in for, it fails with ELOOP on a symlink and
// ENOTDIR on anything else that is not a directory.
func chmodDirAt(dirfd int, name string, add uint32) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	switch uint32(st.Mode) & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		return unix.ELOOP
	default:
		return unix.ENOTDIR
	}
	return unix.Fchmodat(dirfd, name, uint32(st.Mode)&0o7777|add, unix.AT_SYMLINK_NOFOLLOW)
}
