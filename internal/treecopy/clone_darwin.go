package treecopy

import "golang.org/x/sys/unix"

// cloneFile clones the file open as in to a new file base in the
// directory dirfd: fclonefileat(2), which on APFS shares the data blocks
// until either file is written, so a copy costs no disk space or time.
// Like a create with O_EXCL, it fails with EEXIST if base exists; it
// fails with ENOTSUP on file systems that cannot clone and EXDEV across
// volumes. CLONE_NOOWNERCOPY: owners are never copied,
// even when running as root. (CLONE_NOFOLLOW is left out: it concerns a
// source given by name.)
var cloneFile = func(in, dirfd int, base string) error {
	return unix.Fclonefileat(in, dirfd, base, unix.CLONE_NOOWNERCOPY)
}
