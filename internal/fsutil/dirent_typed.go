//go:build linux || darwin || freebsd || netbsd || openbsd

package fsutil

import (
	"encoding/binary"
	"io/fs"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Where a raw entry's length and d_type are, on the systems whose
// entries have a d_type.
const (
	direntReclen = unsafe.Offsetof(unix.Dirent{}.Reclen)
	direntType   = unsafe.Offsetof(unix.Dirent{}.Type)
)

// DirEntries is DirNames with each entry's type, read from the same raw
// entries (their d_type): no system call per entry. A file system that
// leaves d_type out (DT_UNKNOWN) gets TypeUnknown.
func DirEntries(fd int, buf []byte) ([]Dirent, error) {
	var ents []Dirent
	var name []string // one record's name, from unix.ParseDirent
	for {
		n, err := IgnoringEINTR(func() (int, error) { return unix.ReadDirent(fd, buf) })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return ents, nil
		}
		for b := buf[:n]; len(b) > int(direntType); {
			reclen := int(binary.NativeEndian.Uint16(b[direntReclen:]))
			if reclen == 0 || reclen > len(b) {
				break // a truncated record: cannot happen with whole reads
			}
			// One record at a time, so that the name found is this
			// record's: ParseDirent knows each system's name layout and
			// skips ".", ".." and deleted entries.
			_, _, name = unix.ParseDirent(b[:reclen], 1, name[:0])
			if len(name) == 1 {
				ents = append(ents, Dirent{Name: name[0], Type: direntMode(b[direntType])})
			}
			b = b[reclen:]
		}
	}
}

// direntMode is the fs.FileMode type of the d_type t.
func direntMode(t uint8) fs.FileMode {
	switch t {
	case unix.DT_REG:
		return 0
	case unix.DT_DIR:
		return fs.ModeDir
	case unix.DT_LNK:
		return fs.ModeSymlink
	case unix.DT_FIFO:
		return fs.ModeNamedPipe
	case unix.DT_SOCK:
		return fs.ModeSocket
	case unix.DT_CHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.DT_BLK:
		return fs.ModeDevice
	}
	return TypeUnknown
}
