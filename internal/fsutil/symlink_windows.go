package fsutil

import (
	"errors"

	"golang.org/x/sys/windows"
)

// SymlinkHint explains why creating a symlink failed with err when the
// reason is the system's rather than the link's: on Windows an ordinary
// process may not create symlinks, and some file systems hold none. It
// returns "" for any other error.
func SymlinkHint(err error) string {
	switch {
	case errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD):
		return "creating symlinks on Windows needs the SeCreateSymbolicLinkPrivilege (an elevated process, or Developer Mode)"
	case errors.Is(err, windows.ERROR_NOT_SUPPORTED), errors.Is(err, windows.ERROR_INVALID_FUNCTION):
		return "this file system does not support symlinks"
	}
	return ""
}
