package fsutil

import (
	"io/fs"

	"golang.org/x/sys/windows"
)

// FileID identifies a file on Windows, for finding hardlinks: the serial
// number of its volume and its file index there, which every name of the
// file shares.
type FileID struct {
	Volume uint32
	Index  uint64
}

// HandleIdentity returns the identity and link count of the file open as
// h. Windows reports both only through an open handle: neither a
// directory listing nor os.Lstat has the link count, so finding hardlinks
// costs a GetFileInformationByHandle per file.
func HandleIdentity(h windows.Handle) (FileID, uint32, error) {
	var d windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &d); err != nil {
		return FileID{}, 0, err
	}
	return FileID{Volume: d.VolumeSerialNumber, Index: uint64(d.FileIndexHigh)<<32 | uint64(d.FileIndexLow)}, d.NumberOfLinks, nil
}

// Identity returns the identity and link count of the file at path,
// never following a symlink or other reparse point there. It opens the
// file for its attributes only, which neither reads it nor stops
// another process from writing, renaming or deleting it meanwhile.
func Identity(path string) (FileID, uint32, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return FileID{}, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.FILE_READ_ATTRIBUTES,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return FileID{}, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	id, n, err := HandleIdentity(h)
	if err != nil {
		return FileID{}, 0, &fs.PathError{Op: "GetFileInformationByHandle", Path: path, Err: err}
	}
	return id, n, nil
}
