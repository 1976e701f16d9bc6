package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// removeSharedReadOnly deletes, under root, the read-only files that
// have other names, without clearing their read-only attribute: it
// belongs to the file, not to a name, so clearing it to delete one name
// makes every other name writable. That is what os.RemoveAll does where
// Windows cannot ignore the attribute when deleting (before Windows 10
// 1809, on FAT, under Wine), and the other names are a user's tree that
// a pull or a linked get made by hardlinking from the one being removed,
// such as a Go module cache, which must stay read-only. Errors are left
// to os.RemoveAll, which sees whatever is left.
func removeSharedReadOnly(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		// The listing has the attribute; only a read-only file is opened.
		if info, err := d.Info(); err == nil && info.Mode().Perm()&0o200 == 0 {
			_ = deleteKeepingReadOnly(p)
		}
		return nil
	})
}

// fileBasicInfo is FILE_BASIC_INFO: zero times are left unchanged.
type fileBasicInfo struct {
	CreationTime, LastAccessTime, LastWriteTime, ChangeTime int64
	FileAttributes                                          uint32
}

// The attributes FILE_BASIC_INFO may set on a file.
const settableAttributes = windows.FILE_ATTRIBUTE_READONLY | windows.FILE_ATTRIBUTE_HIDDEN |
	windows.FILE_ATTRIBUTE_SYSTEM | windows.FILE_ATTRIBUTE_ARCHIVE | windows.FILE_ATTRIBUTE_TEMPORARY |
	windows.FILE_ATTRIBUTE_OFFLINE | windows.FILE_ATTRIBUTE_NOT_CONTENT_INDEXED

// deleteKeepingReadOnly deletes the name path of a read-only file with
// other names, leaving the file read-only; a file with one name, or a
// writable one, is left for os.RemoveAll.
func deleteKeepingReadOnly(path string) error {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(p, windows.DELETE|windows.FILE_READ_ATTRIBUTES|windows.FILE_WRITE_ATTRIBUTES,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return err
	}
	// The name goes when this handle closes (at once, with POSIX
	// semantics).
	defer windows.CloseHandle(h)
	return deleteHandleKeepingReadOnly(h)
}

// deleteHandleKeepingReadOnly is deleteKeepingReadOnly for the name open
// as h (with DELETE, FILE_READ_ATTRIBUTES and FILE_WRITE_ATTRIBUTES
// access), which goes when h is closed. A symlink or other reparse point
// is left alone.
func deleteHandleKeepingReadOnly(h windows.Handle) error {
	var d windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &d); err != nil {
		return err
	}
	if d.NumberOfLinks < 2 || d.FileAttributes&windows.FILE_ATTRIBUTE_READONLY == 0 ||
		d.FileAttributes&(windows.FILE_ATTRIBUTE_DIRECTORY|windows.FILE_ATTRIBUTE_REPARSE_POINT) != 0 {
		return nil
	}
	// Windows 10 1809 and later on NTFS: delete despite the attribute.
	ex := uint32(windows.FILE_DISPOSITION_DELETE | windows.FILE_DISPOSITION_POSIX_SEMANTICS | windows.FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE)
	if windows.SetFileInformationByHandle(h, windows.FileDispositionInfoEx, (*byte)(unsafe.Pointer(&ex)), uint32(unsafe.Sizeof(ex))) == nil {
		return nil
	}
	// Elsewhere a read-only file cannot be marked for deletion: clear the
	// attribute, mark it, and set the attribute again through the same
	// handle, before the close that deletes the name.
	attrs := d.FileAttributes & settableAttributes
	writable := attrs &^ windows.FILE_ATTRIBUTE_READONLY
	if writable == 0 {
		writable = windows.FILE_ATTRIBUTE_NORMAL // 0 would mean "unchanged"
	}
	if err := setAttributes(h, writable); err != nil {
		return err
	}
	del := byte(1) // FILE_DISPOSITION_INFO's DeleteFile
	err := windows.SetFileInformationByHandle(h, windows.FileDispositionInfo, &del, 1)
	if rerr := setAttributes(h, attrs); err == nil {
		err = rerr
	}
	return err
}

func setAttributes(h windows.Handle, attrs uint32) error {
	info := fileBasicInfo{FileAttributes: attrs}
	return windows.SetFileInformationByHandle(h, windows.FileBasicInfo, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)))
}

// RemoveAllIn removes name, relative to root, and everything below it,
// like root.RemoveAll, but first deletes the read-only files there that
// have other names without clearing their read-only attribute, which
// root.RemoveAll clears where Windows cannot ignore it (see
// removeSharedReadOnly). The directory holding name is opened through
// root, which keeps it inside root; below it, names are opened one
// component at a time, never following a symlink or junction.
func RemoveAllIn(root *os.Root, name string) error {
	if fi, err := root.Lstat(name); err == nil && (fi.IsDir() || fi.Mode().IsRegular() && fi.Mode().Perm()&0o200 == 0) {
		if dir, err := root.Open(filepath.Dir(name)); err == nil {
			removeSharedReadOnlyAt(windows.Handle(dir.Fd()), filepath.Base(name), fi.IsDir())
			dir.Close()
		}
	}
	return root.RemoveAll(name)
}

// removeSharedReadOnlyAt does what removeSharedReadOnly does for the
// entry name of the directory open as dir: a regular file or, if isDir,
// a directory. An entry that turns out to be of the other kind, or a
// symlink or junction, is left for root.RemoveAll. Errors are too.
func removeSharedReadOnlyAt(dir windows.Handle, name string, isDir bool) {
	access, options := uint32(windows.DELETE|windows.FILE_READ_ATTRIBUTES|windows.FILE_WRITE_ATTRIBUTES), uint32(windows.FILE_NON_DIRECTORY_FILE)
	if isDir {
		access, options = windows.FILE_LIST_DIRECTORY|windows.FILE_READ_ATTRIBUTES, windows.FILE_DIRECTORY_FILE
	}
	h, err := openAt(dir, name, access, options)
	if err != nil {
		return
	}
	if !isDir {
		_ = deleteHandleKeepingReadOnly(h)
		windows.CloseHandle(h)
		return
	}
	d := os.NewFile(uintptr(h), name) // closes h
	defer d.Close()
	var info windows.ByHandleFileInformation
	if windows.GetFileInformationByHandle(h, &info) != nil || info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return // a junction: never entered
	}
	entries, _ := d.ReadDir(-1)
	for _, e := range entries {
		if t := e.Type(); t.IsDir() || (t.IsRegular() && !isWritable(e)) {
			removeSharedReadOnlyAt(h, e.Name(), t.IsDir())
		}
	}
}

// isWritable reports whether the listing shows e without the read-only
// attribute; only read-only files need opening.
func isWritable(e fs.DirEntry) bool {
	info, err := e.Info()
	return err == nil && info.Mode().Perm()&0o200 != 0
}

// openAt opens the entry name of the directory open as dir, itself if it
// is a symlink or junction, for synchronous I/O with access, sharing it
// fully.
func openAt(dir windows.Handle, name string, access, options uint32) (windows.Handle, error) {
	uname, err := windows.NewNTUnicodeString(name)
	if err != nil {
		return 0, err
	}
	oa := windows.OBJECT_ATTRIBUTES{RootDirectory: dir, ObjectName: uname, Attributes: windows.OBJ_CASE_INSENSITIVE}
	oa.Length = uint32(unsafe.Sizeof(oa))
	var h windows.Handle
	err = windows.NtCreateFile(&h, access|windows.SYNCHRONIZE, &oa, &windows.IO_STATUS_BLOCK{}, nil, 0,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, windows.FILE_OPEN,
		options|windows.FILE_OPEN_REPARSE_POINT|windows.FILE_OPEN_FOR_BACKUP_INTENT|windows.FILE_SYNCHRONOUS_IO_NONALERT, 0, 0)
	if err != nil {
		return 0, err
	}
	return h, nil
}
