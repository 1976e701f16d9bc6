//go:build unix

package flock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openFile opens the lock file at path for locking, creating it if create
// is set, private: anyone who can open a lock file, even read-only, can
// hold its lock and stall its owner for good.
func openFile(path string, create bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	return os.OpenFile(path, flags, 0o600)
}

// tryLockFile takes the lock on f without waiting, reporting false when
// another open file description holds it.
func tryLockFile(f *os.File) (bool, error) {
	err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// unlockFile does nothing: closing f releases the lock at once.
func unlockFile(*os.File) error { return nil }

// deletePending reports false: stillLinked's look at the path says it all.
func deletePending(*os.File) (bool, error) { return false, nil }

// flock retries on EINTR, which Go's runtime signals can cause.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
