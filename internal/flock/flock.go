//go:build unix || windows

// Package flock provides exclusive advisory locks on files that hold across
// processes and, because a lock belongs to an open file (an open file
// description for flock(2), a handle for LockFileEx) rather than to a
// process, across goroutines of one process too: every Lock call opens the
// file anew, so two calls on one path exclude each other wherever they
// come from.
//
// A lock dies with its holder: the kernel releases it when the process
// exits or is killed, so a lock that can be taken proves its previous
// holder is gone. That is what the local cache relies on to tell a dead
// process's leftovers from a live one's.
//
// Lock files may be deleted, but only by a holder of the lock (see
// Handle.Remove): Lock and TryLock check, after locking, that the path still
// names the file they locked and start over if it does not, so a caller
// never ends up holding a lock on an unlinked file while someone else
// locks its replacement.
//
// On Windows the lock is a LockFileEx lock on the whole file, and lock
// files are opened with FILE_SHARE_DELETE so that a holder can delete one
// that others have open. Windows locks are mandatory for the bytes they
// cover: a lock file is for locking only, not for data.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Polling bounds for Lock. Neither flock(2) nor LockFileEx can be
// interrupted by a context, so Lock polls without blocking, backing off
// from minPoll to maxPoll: a lock held briefly is picked up within about a
// millisecond, and a long wait costs a few syscalls per second.
const (
	minPoll = 500 * time.Microsecond
	maxPoll = 25 * time.Millisecond
)

// Handle is a held exclusive lock. It is not safe for concurrent use: one
// goroutine owns it and unlocks it once.
type Handle struct {
	f    *os.File
	path string
}

// Path returns the path of the lock file.
func (l *Handle) Path() string { return l.path }

// Lock takes an exclusive lock on the file at path, creating the file if it
// is missing (its directory must exist). It waits until the lock is free or
// ctx is done, in which case it returns ctx.Err() wrapped.
func Lock(ctx context.Context, path string) (*Handle, error) {
	wait := minPoll
	var timer *time.Timer
	for {
		l, ok, err := TryLock(path)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-timer.C:
		}
		wait = min(wait*2, maxPoll)
	}
}

// TryLock takes an exclusive lock on the file at path, creating the file if
// it is missing, without waiting. It returns ok == false and no error when
// another open file description holds the lock.
func TryLock(path string) (l *Handle, ok bool, err error) {
	return tryLock(path, true)
}

// TryLockExisting is TryLock for a lock file that must already exist: a
// missing one is an error wrapping fs.ErrNotExist, and nothing is created.
// A sweeper uses it so that it never takes the lock of a directory whose
// creator has not locked it yet.
func TryLockExisting(path string) (l *Handle, ok bool, err error) {
	return tryLock(path, false)
}

// errBeingDeleted is what openFile returns for a lock file that a holder
// has deleted while others still have it open, where the file system keeps
// the name until the last of them closes it (Windows without POSIX delete
// semantics). Unix unlinks the name at once and never returns it.
var errBeingDeleted = errors.New("lock file is being deleted")

func tryLock(path string, create bool) (l *Handle, ok bool, err error) {
	// A lock file can be removed by its holder between our open and our
	// lock; a few rounds settle that, and more than a few means something
	// keeps replacing the file, which is worth an error.
	for range 8 {
		f, err := openFile(path, create)
		if errors.Is(err, errBeingDeleted) {
			// Only a holder deletes, and it has not finished: as busy
			// as a held lock.
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("open lock file: %w", err)
		}
		locked, err := tryLockFile(f)
		if err != nil {
			f.Close()
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		if !locked {
			f.Close()
			return nil, false, nil
		}
		same, err := stillLinked(f, path)
		if err != nil {
			unlockFile(f)
			f.Close()
			return nil, false, err
		}
		if same {
			return &Handle{f: f, path: path}, true, nil
		}
		// We locked a file its previous holder had already unlinked.
		unlockFile(f)
		f.Close()
	}
	return nil, false, fmt.Errorf("lock %s: %w", path, ErrReplaced)
}

// ErrReplaced is the error of a lock whose file something kept removing
// and re-creating between its open and its lock, round after round.
var ErrReplaced = errors.New("lock file keeps being replaced")

// stillLinked reports whether path still names the open file f.
func stillLinked(f *os.File, path string) (bool, error) {
	if gone, err := deletePending(f); err != nil || gone {
		return false, err
	}
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat lock file %s: %w", path, err)
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat lock file %s: %w", path, err)
	}
	return os.SameFile(fi, pi), nil
}

// Unlock releases the lock. Closing the file releases it, so this never
// leaves the lock held, even when it returns an error.
func (l *Handle) Unlock() error {
	if l == nil || l.f == nil {
		return errors.New("flock: unlock of a lock not held")
	}
	f := l.f
	l.f = nil
	// Released explicitly first where closing alone may release it late.
	unErr := unlockFile(f)
	if err := f.Close(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	if unErr != nil {
		return fmt.Errorf("unlock %s: %w", l.path, unErr)
	}
	return nil
}

// Remove deletes the lock file and releases the lock. Deleting while
// holding the lock is what makes deletion safe: anyone who opened the old
// file is waiting on it and, once it is released, sees that the path no
// longer names it and starts over.
func (l *Handle) Remove() error {
	if l == nil || l.f == nil {
		return errors.New("flock: remove of a lock not held")
	}
	rmErr := os.Remove(l.path)
	if errors.Is(rmErr, os.ErrNotExist) {
		rmErr = nil
	}
	unErr := l.Unlock()
	if rmErr != nil {
		return fmt.Errorf("remove lock file: %w", rmErr)
	}
	return unErr
}
