package local

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FreeBytes returns the bytes available to an unprivileged writer on the
// file system holding the cache root. The tiered cache checks it before a
// download, so a tree that cannot fit fails at once with a clear error
// instead of after filling the disk.
func (c *Cache) FreeBytes() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(c.root, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", c.root, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
