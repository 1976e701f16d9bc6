// Package fsutil holds small file-system helpers shared by the tiers.
package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveAll removes path and everything below it, like os.RemoveAll, but
// also when the tree holds read-only directories (Go's module cache is all
// 0555): a directory's entries cannot be unlinked until the directory is
// writable, so it makes directories writable on the way down and retries.
// A missing path is not an error.
//
// A read-only file with other names outside path keeps its read-only
// attribute there on Windows (see removeSharedReadOnly).
func RemoveAll(path string) error {
	removeSharedReadOnly(path)
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	// Walk errors are ignored: whatever cannot be fixed surfaces in the
	// second RemoveAll.
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// CreateMode returns the mode to create a file with so that it ends up
// with perm (permission bits only) under umask (from Umask), and whether
// a chmod is still needed after: creating with perm itself saves that
// system call when the umask leaves perm intact. Otherwise the file is
// created private (0600) and must be chmodded.
func CreateMode(perm fs.FileMode, umask int) (create fs.FileMode, chmod bool) {
	if umask >= 0 && perm&^fs.ModePerm == 0 && uint32(perm)&uint32(umask) == 0 {
		return perm, false
	}
	return 0o600, true
}

// TypeName names the type of a file that is neither regular, nor a
// directory, nor a symlink, for error messages: "FIFO", "device node",
// "socket", else "special file" with the mode's type letters.
func TypeName(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "FIFO"
	case mode&fs.ModeDevice != 0:
		return "device node"
	case mode&fs.ModeSocket != 0:
		return "socket"
	default:
		return "special file (" + mode.Type().String() + ")"
	}
}

// Dirent is an entry as its directory's listing describes it, before
// any lstat.
type Dirent struct {
	Name string
	// Type holds the type bits of the entry's mode (fs.ModeDir,
	// fs.ModeSymlink, ..., 0 for a regular file), or TypeUnknown where
	// the listing does not tell.
	Type fs.FileMode
}

// TypeUnknown is the Type of a Dirent whose listing did not give it
// (DT_UNKNOWN, or a system without d_type): only an lstat tells. Compare
// with it before asking IsDir, which it answers true.
const TypeUnknown = ^fs.FileMode(0)
