package local

import "github.com/tiercache/tiercache/internal/fsutil"

// FreeBytes returns the bytes available to an unprivileged writer on the
// file system holding the cache root. The tiered cache checks it before a
// download, so a tree that cannot fit fails at once with a clear error
// instead of after filling the disk.
func (c *Cache) FreeBytes() (int64, error) { return fsutil.FreeBytes(c.root) }
