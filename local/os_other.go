//go:build !linux || tiercache_portable

package local

import (
	"io/fs"
	"path/filepath"
	"time"
)

// syncTree makes the tree at dir durable by fsyncing every regular file
// and directory in it; symlinks are made durable with their directory.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		return syncPath(p)
	})
}

// bootID is "" where the system exposes no boot ID: puts then flush their
// data before publishing.
func bootID() string { return "" }

// changedAt is fi's modification time; on Linux, the later of it and the
// status-change time (see os_linux.go).
func changedAt(fi fs.FileInfo) time.Time { return fi.ModTime() }
