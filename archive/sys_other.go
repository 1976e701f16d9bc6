//go:build !unix && !windows

package archive

import (
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
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

// dirBufSize is 0: listing goes through package os, which has its own
// buffer.
const dirBufSize = 0

// srcDir is a directory of the tree being archived: a path inside an
// os.Root, which confines every lookup to the tree. Platforms without
// *at system calls gain nothing from holding directories open.
type srcDir struct {
	root *os.Root
	rel  string
}

// openSourceDir opens the root of the tree to archive.
func openSourceDir(dir string) (srcDir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return srcDir{}, err
	}
	return srcDir{root: root, rel: "."}, nil
}

// close releases the os.Root when d is the top of the tree.
func (d srcDir) close() {
	if d.rel == "." {
		d.root.Close()
	}
}

// child is the path of d's entry name inside the root.
func (d srcDir) child(name string) string {
	if d.rel == "." {
		return name
	}
	return d.rel + "/" + name
}

// names lists d's entries, unsorted, with the types the listing gives:
// ReadDir reads them with the names, opening no entry.
func (d srcDir) names(string, []byte) ([]fsutil.Dirent, error) {
	f, err := d.root.Open(d.rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	ents := make([]fsutil.Dirent, len(des))
	for i, de := range des {
		ents[i] = fsutil.Dirent{Name: de.Name(), Type: de.Type()}
	}
	return ents, err
}

// lstat describes the entry name of d without following a symlink.
func (d srcDir) lstat(name, _ string) (srcInfo, error) {
	info, err := d.root.Lstat(d.child(name))
	if err != nil {
		return srcInfo{}, err
	}
	id, nlink, _ := identity(info)
	return srcInfo{mode: storedMode(info.Mode()), mtime: info.ModTime(), size: info.Size(), id: id, nlink: nlink}, nil
}

// storedMode is the mode an archive records for m: as reported.
func storedMode(m fs.FileMode) fs.FileMode { return m }

// readlink returns the target of the symlink name in d, slash-separated
// as archives store it.
func (d srcDir) readlink(name, _ string) (string, error) {
	target, err := d.root.Readlink(d.child(name))
	return filepath.ToSlash(target), err
}

// storeAs is a no-op here: every lookup is relative to the root by
// name, never by the member's name.
func (srcDir) storeAs(_, _ string) {}

// openDir returns the subdirectory name of d; it is opened when listed.
func (d srcDir) openDir(name, _ string) (srcDir, error) {
	return srcDir{root: d.root, rel: d.child(name)}, nil
}

// openFile opens the regular file name of d for reading.
func (d srcDir) openFile(name, _ string) (srcFile, error) {
	f, err := d.root.Open(d.child(name))
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}
