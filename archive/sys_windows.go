package archive

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"time"
	"unicode/utf16"
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

func init() { symlinkAt = symlinkOfKind }

// symlinkOfKind creates the symlink name inside root pointing to target,
// a directory symlink if dir, else a file symlink. os.Root.Symlink would
// choose the kind itself, from what the target is at that moment as seen
// from root alone, so a target not extracted yet, or reached through
// "..", would get a file symlink that cannot be traversed. Otherwise it
// does what os.Root.Symlink does: the link is created relative to its
// parent directory opened through root (never through a symlink) and
// its reparse data set, with the privilege to create symlinks enabled
// where the process holds it.
func symlinkOfKind(root *os.Root, target, name string, dir bool) error {
	if err := createSymlink(root, target, name, dir); err != nil {
		return &os.LinkError{Op: "symlinkat", Old: target, New: name, Err: err}
	}
	return nil
}

func createSymlink(root *os.Root, target, name string, dir bool) error {
	if target == "" {
		return windows.ERROR_INVALID_PARAMETER
	}
	// As CreateSymbolicLinkW (and os.Root.Symlink): a volume-relative
	// target ("C:x") is made absolute; one without a volume is relative.
	if filepath.VolumeName(target) != "" && !filepath.IsAbs(target) {
		if p, err := windows.FullPath(target); err == nil {
			target = p
		}
	}
	var flags uint32
	if filepath.VolumeName(target) == "" {
		flags = 1 // SYMLINK_FLAG_RELATIVE
	}
	parent, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer parent.Close()
	base, err := windows.NewNTUnicodeString(path.Base(name))
	if err != nil {
		return err
	}
	oa := windows.OBJECT_ATTRIBUTES{
		RootDirectory: windows.Handle(parent.Fd()),
		ObjectName:    base,
		// A name taken in another case is a collision, not another file.
		Attributes: windows.OBJ_CASE_INSENSITIVE,
	}
	oa.Length = uint32(unsafe.Sizeof(oa))
	options := uint32(windows.FILE_NON_DIRECTORY_FILE)
	if dir {
		options = windows.FILE_DIRECTORY_FILE
	}
	// The reparse data: a SymbolicLinkReparseBuffer whose substitute and
	// print names are both the target.
	t := utf16.Encode([]rune(target))
	const header = 20 // tag, data length, reserved, four name fields, flags
	buf := make([]byte, header+2*len(t))
	binary.LittleEndian.PutUint32(buf[0:], windows.IO_REPARSE_TAG_SYMLINK)
	binary.LittleEndian.PutUint16(buf[4:], uint16(len(buf)-8))
	binary.LittleEndian.PutUint16(buf[10:], uint16(2*len(t))) // substitute name length, at offset 0
	binary.LittleEndian.PutUint16(buf[14:], uint16(2*len(t))) // print name length, at offset 0
	binary.LittleEndian.PutUint32(buf[16:], flags)
	for i, u := range t {
		binary.LittleEndian.PutUint16(buf[header+2*i:], u)
	}
	return withSymlinkPrivilege(func() error {
		var h windows.Handle
		err := windows.NtCreateFile(&h, windows.SYNCHRONIZE|windows.FILE_WRITE_ATTRIBUTES|windows.DELETE, &oa, &windows.IO_STATUS_BLOCK{}, nil,
			windows.FILE_ATTRIBUTE_NORMAL, 0, windows.FILE_CREATE,
			windows.FILE_OPEN_REPARSE_POINT|windows.FILE_OPEN_FOR_BACKUP_INTENT|windows.FILE_SYNCHRONOUS_IO_NONALERT|options, 0, 0)
		if err != nil {
			if st, ok := err.(windows.NTStatus); ok {
				err = st.Errno()
			}
			return err
		}
		defer windows.CloseHandle(h)
		var n uint32
		err = windows.DeviceIoControl(h, windows.FSCTL_SET_REPARSE_POINT, &buf[0], uint32(len(buf)), nil, 0, &n, nil)
		if err != nil {
			// Nothing may stay at the name: delete what was created.
			del := byte(1) // FILE_DISPOSITION_INFORMATION{DeleteFile: true}
			windows.NtSetInformationFile(h, &windows.IO_STATUS_BLOCK{}, &del, 1, windows.FileDispositionInformation)
		}
		return err
	})
}

// withSymlinkPrivilege runs f with SeCreateSymbolicLinkPrivilege enabled
// on the thread where the process holds it (an elevated process has it
// disabled), as CreateSymbolicLinkW and os.Root.Symlink do; without it f
// runs anyway, and fails (or succeeds, in Developer Mode) on its own.
func withSymlinkPrivilege(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := windows.ImpersonateSelf(windows.SecurityImpersonation); err != nil {
		return f()
	}
	defer windows.RevertToSelf()
	var token windows.Token
	if err := windows.OpenThreadToken(windows.CurrentThread(), windows.TOKEN_QUERY|windows.TOKEN_ADJUST_PRIVILEGES, false, &token); err != nil {
		return f()
	}
	defer token.Close()
	name, err := windows.UTF16PtrFromString("SeCreateSymbolicLinkPrivilege")
	if err != nil {
		return f()
	}
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	if err := windows.LookupPrivilegeValue(nil, name, &tp.Privileges[0].Luid); err != nil {
		return f()
	}
	tp.Privileges[0].Attributes = windows.SE_PRIVILEGE_ENABLED
	_ = windows.AdjustTokenPrivileges(token, false, &tp, 0, nil, nil)
	return f()
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
func (d srcDir) openFile(name, _ string) (srcFile, error) {
	if f := d.held.f; f != nil && d.held.name == name {
		d.held.f = nil
		return osFile{f}, nil
	}
	f, err := d.root.Open(d.child(name))
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}
