//go:build unix

package fsutil

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// DirNames lists the entries of the directory open at fd, without "." and
// "..", unsorted, reading on from the descriptor's offset to the end. buf
// is scratch space for the raw entries (a few dozen KiB reads a few dozen
// entries per system call). A raw descriptor rather than an *os.File:
// os.File costs extra fcntl and epoll calls per open, which add up over
// the thousands of directories of a module cache.
func DirNames(fd int, buf []byte) ([]string, error) {
	var names []string
	for {
		n, err := IgnoringEINTR(func() (int, error) { return unix.ReadDirent(fd, buf) })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		for b := buf[:n]; len(b) > 0; {
			used, _, more := unix.ParseDirent(b, -1, names)
			names = more
			if used == 0 {
				break // a truncated record: cannot happen with whole reads
			}
			b = b[used:]
		}
	}
}

// UnixMode converts an st_mode to an fs.FileMode as package os does,
// except that an unknown file type is irregular rather than regular.
func UnixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	default:
		mode |= fs.ModeIrregular
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
