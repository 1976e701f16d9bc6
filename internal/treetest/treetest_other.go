//go:build !unix && !windows

package treetest

import (
	"errors"
	"io/fs"
	"time"
)

// fileID identifies an inode; without inode numbers every file is alone.
type fileID struct{}

func identity(string, fs.FileInfo) (fileID, uint64, error) { return fileID{}, 1, nil }

func lchtimes(string, time.Time) error {
	return errors.New("treetest: symlink mtimes are not supported on this platform")
}
