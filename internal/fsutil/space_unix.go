//go:build unix

package fsutil

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FreeBytes returns the bytes available to an unprivileged writer on the
// file system holding path, so a caller can refuse a tree that cannot fit
// before it starts writing it.
func FreeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
