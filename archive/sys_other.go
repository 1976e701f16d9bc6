//go:build !unix

package archive

import (
	"io/fs"
	"os"
	"time"
)

// fileID identifies an inode; without inode numbers no hardlink is found.
type fileID struct{}

func identity(fs.FileInfo) (fileID, uint64, bool) { return fileID{}, 0, false }

// createFlags are the flags for creating an extracted file: never open an
// existing file.
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL

// lchtimes is a no-op where symlink times cannot be set without following
// the link: the symlink keeps its creation time.
func lchtimes(*os.Root, string, time.Time) error { return nil }
