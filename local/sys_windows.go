package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/windows"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// inode identifies a file for hardlink detection.
type inode = fsutil.FileID

// inodeOf identifies the regular file at path if it has other names, for
// hardlink detection. The link count and file index come only through an
// open handle on Windows, so measuring a tree costs an open per file
// there.
func inodeOf(path string, _ fs.FileInfo) (inode, bool, error) {
	id, nlink, err := fsutil.Identity(path)
	if err != nil || nlink < 2 {
		return inode{}, false, err
	}
	return id, true, nil
}

// A pointer (index/<name>) on Windows is a small file holding the
// version's path relative to index/, the target a Unix pointer's symlink
// has: creating symlinks needs a privilege that ordinary Windows processes
// lack. It is written in full under a temporary name and renamed over the
// old one, which MoveFileEx replaces in one step, so a reader sees the old
// pointer or the new one, never a partial file.
//
// Windows refuses to replace or delete a file another process has open
// without delete sharing, which os.Open does not grant, and a reader may
// likewise meet a file being renamed over. Both sides hold a pointer for
// microseconds, so each retries such a refusal for a while (as the go
// command's own file operations do on Windows) rather than report it.

// maxPointer bounds what readPointer reads: a pointer is "../data/" and
// a version name (a key's name of at most maxNameLen bytes, '-' and 16
// hex digits).
const maxPointer = 512

// writePointer creates the pointer tmp naming target, flushed to disk
// before it can be renamed into place unless sync is false.
func writePointer(tmp, target string, sync bool) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(target)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// readPointer returns the target the pointer at path names.
func readPointer(path string) (string, error) {
	var b []byte
	err := retryShared(func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		b = make([]byte, maxPointer+1)
		n, err := io.ReadFull(f, b)
		b = b[:n]
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil // shorter than the buffer, as every valid pointer is
		}
		return err
	})
	if err != nil {
		return "", err
	}
	if len(b) > maxPointer {
		return "", fmt.Errorf("pointer %s is longer than %d bytes", path, maxPointer)
	}
	return string(b), nil
}

// movePointer renames the pointer tmp over dst.
func movePointer(tmp, dst string) error {
	return retryShared(func() error { return os.Rename(tmp, dst) })
}

// removePointer removes the pointer at path.
func removePointer(path string) error {
	return retryShared(func() error { return os.Remove(path) })
}

// setPointerTime sets the mtime of the pointer at path to t, leaving its
// atime alone. A pointer is a file here, so nothing can be followed. A
// missing pointer is not an error.
func setPointerTime(path string, t time.Time) error {
	err := retryShared(func() error { return os.Chtimes(path, time.Time{}, t) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Bounds of retryShared's waits.
const (
	sharedFirstWait = time.Millisecond
	sharedMaxWait   = 50 * time.Millisecond
	sharedGiveUp    = 2 * time.Second
)

// retryShared runs op until it succeeds, fails otherwise than by another
// process's open handle being in the way, or sharedGiveUp has passed.
func retryShared(op func() error) error {
	wait := sharedFirstWait
	deadline := time.Now().Add(sharedGiveUp)
	for {
		err := op()
		if !errors.Is(err, windows.ERROR_SHARING_VIOLATION) && !errors.Is(err, windows.ERROR_ACCESS_DENIED) ||
			time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, sharedMaxWait)
	}
}

// syncPath flushes one file to disk. A directory is left alone: Windows
// documents no way to flush a directory's entries, and NTFS journals them
// itself. A read-only file cannot be opened for writing, which flushing
// needs, so it is made writable for the flush and read-only again after.
func syncPath(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	if fi.Mode().Perm()&0o200 != 0 {
		return flush(path)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	err = flush(path)
	if cerr := os.Chmod(path, fi.Mode().Perm()); err == nil && cerr != nil {
		err = fmt.Errorf("fsync %s: %w", path, cerr)
	}
	return err
}

// flush opens the file at path for writing and flushes it.
func flush(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}
