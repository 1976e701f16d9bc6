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
func RemoveAll(path string) error {
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
