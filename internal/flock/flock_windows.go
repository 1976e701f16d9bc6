//go:build windows

package flock

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// openFile opens the lock file at path for locking, creating it if create
// is set. Unlike os.OpenFile it shares delete access, which Remove needs
// while others have the file open.
func openFile(path string, create bool) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(extendedPath(path))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	disposition := uint32(windows.OPEN_EXISTING)
	if create {
		disposition = windows.OPEN_ALWAYS
	}
	// The last error's NT status tells a deleted file from a forbidden
	// one, and it lives in the thread's state.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := windows.CreateFile(name,
		windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, disposition, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		if err == windows.ERROR_ACCESS_DENIED && lastNTStatus() == windows.STATUS_DELETE_PENDING {
			return nil, errBeingDeleted
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

var procRtlGetLastNtStatus = windows.NewLazySystemDLL("ntdll.dll").NewProc("RtlGetLastNtStatus")

// lastNTStatus is the NT status behind the calling thread's last error, or
// 0 when ntdll does not say.
func lastNTStatus() windows.NTStatus {
	if procRtlGetLastNtStatus.Find() != nil {
		return 0
	}
	st, _, _ := procRtlGetLastNtStatus.Call()
	return windows.NTStatus(st)
}

// extendedPath gives a path too long for the classic Win32 limit the \\?\
// prefix that lifts it; Windows only accepts long paths without it where a
// machine-wide setting allows them. os.OpenFile does the same.
func extendedPath(path string) string {
	const maxShort = 248 // MAX_PATH less room for an 8.3 name, as for directories
	if len(path) < maxShort || strings.HasPrefix(path, `\\`) {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil || !filepath.IsAbs(abs) || strings.HasPrefix(abs, `\\`) {
		return path // UNC and odd paths are left to Windows
	}
	return `\\?\` + abs
}

// The whole file, as far as a lock range goes: offset 0, length 2^64-1.
const (
	allLow  = ^uint32(0)
	allHigh = ^uint32(0)
)

// tryLockFile takes the lock on f without waiting, reporting false when
// another handle holds it.
func tryLockFile(f *os.File) (bool, error) {
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY,
		0, allLow, allHigh, new(windows.Overlapped))
	if err == windows.ERROR_LOCK_VIOLATION {
		return false, nil
	}
	return err == nil, err
}

// unlockFile releases the lock on f. Windows releases a closed handle's
// locks too, but documents that this may take a while.
func unlockFile(f *os.File) error {
	err := windows.UnlockFileEx(windows.Handle(f.Fd()), 0, allLow, allHigh, new(windows.Overlapped))
	if err == windows.ERROR_NOT_LOCKED {
		return nil
	}
	return err
}

// fileStandardInfo is FILE_STANDARD_INFO, which x/sys does not declare.
type fileStandardInfo struct {
	AllocationSize int64
	EndOfFile      int64
	NumberOfLinks  uint32
	DeletePending  bool
	Directory      bool
}

// deletePending reports whether f has been deleted while open. Without
// POSIX delete semantics (older Windows, FAT) its name stays until the
// last handle closes, so the path alone would still name it.
func deletePending(f *os.File) (bool, error) {
	var info fileStandardInfo
	err := windows.GetFileInformationByHandleEx(windows.Handle(f.Fd()), windows.FileStandardInfo,
		(*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)))
	if err != nil {
		return false, &os.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	return info.DeletePending, nil
}
