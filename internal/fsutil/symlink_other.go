//go:build !windows

package fsutil

import (
	"errors"
	"syscall"
)

// SymlinkHint explains why creating a symlink failed with err when the
// reason is the file system's rather than the link's: symlink(2) fails
// with EPERM on a file system that holds no symlinks (FAT, say). It
// returns "" for any other error.
func SymlinkHint(err error) string {
	if errors.Is(err, syscall.EPERM) {
		return "this file system does not support symlinks"
	}
	return ""
}
