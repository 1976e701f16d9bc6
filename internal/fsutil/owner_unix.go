//go:build unix

package fsutil

import (
	"io/fs"
	"os"
	"syscall"
)

// OwnedByOther reports whether fi describes a file another user owns:
// only its owner (or root) may set its mode and times.
func OwnedByOther(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Geteuid()
}
