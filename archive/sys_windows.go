package archive

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// fileID identifies a file by its volume and file index, to find
// hardlinks.
type fileID = fsutil.FileID

// createFlags are the flags for creating an extracted file: never open an
// existing file.
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL

// lchtimes sets the mtime (and atime) of the symlink name inside root
// without following it: os.Root has no Lchtimes, and its Chtimes follows
// a symlink, so the link is opened itself (FILE_OPEN_REPARSE_POINT),
// relative to its parent directory opened through the root, and its times
// set through that handle.
func lchtimes(root *os.Root, name string, mtime time.Time) error {
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	base, err := windows.NewNTUnicodeString(path.Base(name))
	if err != nil {
		return &fs.PathError{Op: "lchtimes", Path: name, Err: err}
	}
	oa := windows.OBJECT_ATTRIBUTES{
		RootDirectory: windows.Handle(dir.Fd()),
		ObjectName:    base,
		Attributes:    windows.OBJ_CASE_INSENSITIVE,
	}
	oa.Length = uint32(unsafe.Sizeof(oa))
	var h windows.Handle
	err = windows.NtCreateFile(&h, windows.FILE_WRITE_ATTRIBUTES|windows.SYNCHRONIZE, &oa, &windows.IO_STATUS_BLOCK{}, nil, 0,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, windows.FILE_OPEN,
		windows.FILE_OPEN_REPARSE_POINT|windows.FILE_OPEN_FOR_BACKUP_INTENT|windows.FILE_SYNCHRONOUS_IO_NONALERT, 0, 0)
	if err != nil {
		if st, ok := err.(windows.NTStatus); ok {
			err = st.Errno()
		}
		return &fs.PathError{Op: "lchtimes", Path: name, Err: err}
	}
	defer windows.CloseHandle(h)
	// As os.Root.Chtimes converts a regular file's mtime.
	ft := windows.NsecToFiletime(nanoRange(mtime).UnixNano())
	if err := windows.SetFileTime(h, nil, &ft, &ft); err != nil {
		return &fs.PathError{Op: "lchtimes", Path: name, Err: err}
	}
	return nil
}

// dirBufSize is 0: listing goes through package os, which has its own
// buffer.
const dirBufSize = 0

// srcDir is a directory of the tree being archived: a path inside an
// os.Root, which confines every lookup to the tree. Platforms without
// *at system calls gain nothing from holding directories open.
type srcDir struct {
	root *os.Root
	rel  string
	held *heldFile
}

// heldFile is the regular file lstat opened to learn its identity, kept
// open for openFile: Windows reports a file's link count and file index
// only through a handle, and the walk opens each file anyway to read it.
type heldFile struct {
	name string
	f    *os.File
}

// drop closes the held file, if any.
func (h *heldFile) drop() {
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// openSourceDir opens the root of the tree to archive.
func openSourceDir(dir string) (srcDir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return srcDir{}, err
	}
	return srcDir{root: root, rel: ".", held: &heldFile{}}, nil
}

// close releases the file d holds and, when d is the top of the tree,
// the os.Root.
func (d srcDir) close() {
	d.held.drop()
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

// names lists d's entries, unsorted.
func (d srcDir) names(string, []byte) ([]string, error) {
	f, err := d.root.Open(d.rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// lstat describes the entry name of d without following a symlink. A
// regular file is opened for its identity and link count (see heldFile).
func (d srcDir) lstat(name, rel string) (srcInfo, error) {
	d.held.drop()
	info, err := d.root.Lstat(d.child(name))
	if err != nil {
		return srcInfo{}, err
	}
	si := srcInfo{mode: storedMode(info.Mode()), mtime: info.ModTime(), size: info.Size()}
	if !info.Mode().IsRegular() {
		return si, nil
	}
	f, err := d.root.Open(d.child(name))
	if err != nil {
		return srcInfo{}, err
	}
	id, nlink, err := fsutil.HandleIdentity(windows.Handle(f.Fd()))
	if err != nil {
		f.Close()
		return srcInfo{}, &fs.PathError{Op: "GetFileInformationByHandle", Path: rel, Err: err}
	}
	si.id, si.nlink = id, uint64(nlink)
	d.held.name, d.held.f = name, f
	return si, nil
}

// storedMode is the mode an archive records for m. Windows keeps no
// permission bits but the read-only attribute, which Go reports as 0666
// or 0444 for a file and 0777 or 0555 for a directory; without group and
// other write, a tree pushed from Windows gets the modes a Unix umask of
// 022 would give it (0644 files, 0755 directories). No file is executable:
// Windows does not record that.
func storedMode(m fs.FileMode) fs.FileMode { return m &^ 0o022 }

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
	d.held.drop()
	return srcDir{root: d.root, rel: d.child(name), held: &heldFile{}}, nil
}

// openFile opens the regular file name of d for reading: the handle lstat
// opened, or a new one.
func (d srcDir) openFile(name, _ string) (io.ReadCloser, error) {
	if f := d.held.f; f != nil && d.held.name == name {
		d.held.f = nil
		return f, nil
	}
	return d.root.Open(d.child(name))
}
