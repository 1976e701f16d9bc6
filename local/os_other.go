//go:build !linux || tiercache_portable

package local

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// syncTree makes the tree at dir durable by fsyncing every regular file
// and directory in it; symlinks are made durable with their directory.
//
// Its callers' trees are still private (in staging), so what the owner
// may not open (mode 000, a 0300 directory: root's trees hold such) is
// given read permission for its flush, then its mode back.
func syncTree(dir string) error {
	type saved struct {
		path string
		mode fs.FileMode
	}
	var restore []saved
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		err = syncPath(p)
		if !errors.Is(err, fs.ErrPermission) {
			return err
		}
		fi, ierr := os.Lstat(p)
		if ierr != nil {
			return err
		}
		add := fs.FileMode(0o400)
		if d.IsDir() {
			add = 0o500 // and search, for the walk to go in
		}
		mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if os.Chmod(p, mode|add) != nil {
			return err
		}
		restore = append(restore, saved{p, mode})
		return syncPath(p)
	})
	// Deepest first: a directory's children before it closes again.
	for _, r := range slices.Backward(restore) {
		if cerr := os.Chmod(r.path, r.mode); err == nil {
			err = cerr
		}
	}
	return err
}

// bootID is "" where the system exposes no boot ID: puts then flush their
// data before publishing.
func bootID() string { return "" }

// changedAt is fi's modification time; on Linux, the later of it and the
// status-change time (see os_linux.go).
func changedAt(fi fs.FileInfo) time.Time { return fi.ModTime() }
