package treetest

import (
	"errors"
	"io/fs"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// fileID identifies a file by volume and file index.
type fileID = fsutil.FileID

// identity returns the identity and link count of the regular file at
// path (Windows reports them only through an open handle); anything else
// is alone.
func identity(path string, info fs.FileInfo) (fileID, uint64, error) {
	if !info.Mode().IsRegular() {
		return fileID{}, 1, nil
	}
	id, nlink, err := fsutil.Identity(path)
	return id, uint64(nlink), err
}

func lchtimes(string, time.Time) error {
	return errors.New("treetest: symlink mtimes are not supported on this platform")
}
