package fsutil

import (
	"io/fs"
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
	var d windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &d); err != nil {
		return err
	}
	if d.NumberOfLinks < 2 || d.FileAttributes&windows.FILE_ATTRIBUTE_READONLY == 0 {
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
	err = windows.SetFileInformationByHandle(h, windows.FileDispositionInfo, &del, 1)
	if rerr := setAttributes(h, attrs); err == nil {
		err = rerr
	}
	return err
}

func setAttributes(h windows.Handle, attrs uint32) error {
	info := fileBasicInfo{FileAttributes: attrs}
	return windows.SetFileInformationByHandle(h, windows.FileBasicInfo, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)))
}
