package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tiercache/tiercache/internal/flock"
	"github.com/tiercache/tiercache/internal/fsutil"
)

const (
	sweepLock = "sweep"
	// trashLock is held while trash/ is being emptied. It is not the
	// sweep lock, so that a long deletion (by a detached process, see
	// Options.KeepTrash) never keeps other processes from sweeping the
	// staging of killed runs.
	trashLock     = "trash"
	fullSweepMark = "full-sweep"
	// putSweepEvery bounds how often Puts of one Cache sweep, so a burst
	// of Puts does not list retired/ and trash/ every time.
	putSweepEvery = time.Minute
)

// Sweep runs a full sweep now (see the package doc): it deletes versions
// whose grace has passed, staging left by dead processes, orphan versions
// older than the grace, and lock files of absent keys nobody holds. It
// carries on past errors on single items and returns them joined. If
// another goroutine or process is sweeping the same root, it returns nil
// at once. Open, Put and Prune sweep on their own; call Sweep to reclaim
// space at a time of your choosing.
func (c *Cache) Sweep(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.sweep(ctx.Err, true)
}

// maybeSweep sweeps after a Put, at most once per putSweepEvery (or per
// grace, if shorter) for this Cache. Its errors are dropped: the Put has
// succeeded, and the next sweep retries.
func (c *Cache) maybeSweep(stop func() error) {
	every := min(c.grace, putSweepEvery)
	now := time.Now().UnixNano()
	last := c.lastSweep.Load()
	if now-last < int64(every) || !c.lastSweep.CompareAndSwap(last, now) {
		return
	}
	_ = c.sweep(stop, false)
}

// sweep removes what a scan finds, under the sweep lock; stop says when
// to give up (a cancelled context). The full steps run when full is set
// or when the last full sweep is older than the grace.
func (c *Cache) sweep(stop func() error, full bool) error {
	lock, ok, err := c.tryLock(filepath.Join(c.locksDir, sweepLock))
	if err != nil {
		return err
	}
	s := &scan{c: c, stop: stop, grace: c.grace}
	if !ok {
		// Another process is sweeping, and may have listed staging/
		// before a run was killed. Staging is safe to sweep at once
		// (each directory's own lock decides), so the next command
		// always cleans up after a killed one.
		return s.staging(removeAll)
	}
	defer lock.Unlock()
	var errs []error
	errs = append(errs, s.staging(removeAll), s.retired(removeAll))
	mark := filepath.Join(c.locksDir, fullSweepMark)
	if fi, err := os.Stat(mark); full || err != nil || time.Since(fi.ModTime()) >= c.grace {
		ferr := errors.Join(s.orphans(removeAll), s.tempPointers(removeAll), c.sweepKeyLocks(stop))
		if ferr == nil {
			ferr = touch(mark)
		}
		if ferr == nil {
			c.own(mark)
		}
		errs = append(errs, ferr)
	}
	if !c.keepTrash {
		errs = append(errs, c.emptyTrash(stop))
	}
	return errors.Join(errs...)
}

// EmptyTrash deletes what sweeps have moved to trash/ (see
// Options.KeepTrash). If another goroutine or process is emptying it
// already, it returns nil at once.
func (c *Cache) EmptyTrash(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.emptyTrash(ctx.Err)
}

// HasTrash reports whether trash/ holds anything to delete.
func (c *Cache) HasTrash() bool {
	d, err := os.Open(c.trashDir)
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(1)
	return len(names) > 0
}

// sweepKeyLocks removes the Cache.Lock files of keys with no entry that
// nobody holds, and every LockPush file nobody holds (its name is no
// entry's). Removing while holding the lock is safe (see flock).
func (c *Cache) sweepKeyLocks(stop func() error) error {
	return forEachName(c.keyLocks, stop, func(file string) error {
		name, ok := strings.CutSuffix(file, ".lock")
		if !ok {
			return nil
		}
		if _, err := os.Lstat(filepath.Join(c.indexDir, name)); err == nil {
			return nil
		}
		lock, ok, err := flock.TryLock(filepath.Join(c.keyLocks, file))
		if err != nil || !ok {
			return err
		}
		return lock.Remove()
	})
}

// emptyTrash deletes everything in trash/, read-only trees included.
// Whoever holds the trash lock is doing it; this returns nil at once then.
func (c *Cache) emptyTrash(stop func() error) error {
	lock, ok, err := c.tryLock(filepath.Join(c.locksDir, trashLock))
	if err != nil || !ok {
		return err
	}
	defer lock.Unlock()
	return c.emptyTrashLocked(stop)
}

// emptyTrashWait is emptyTrash that waits for a deletion in progress
// elsewhere to end instead of leaving the rest to it, for callers that
// promise an empty trash when they return (Verify with Repair).
func (c *Cache) emptyTrashWait(ctx context.Context) error {
	lock, err := c.lock(ctx, filepath.Join(c.locksDir, trashLock))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return c.emptyTrashLocked(ctx.Err)
}

func (c *Cache) emptyTrashLocked(stop func() error) error {
	return forEachName(c.trashDir, stop, func(name string) error {
		return removeTrash(filepath.Join(c.trashDir, name))
	})
}

// removeTrash deletes what is in trash/, a variable so that tests can
// play the refusal Windows gives to delete a file a process holds open.
var removeTrash = fsutil.RemoveAll

// renameToTrash is the rename toTrash makes, a variable so that tests can
// play the refusal Windows gives while a reader has a file open in the
// tree.
var renameToTrash = os.Rename

// toTrash renames path into trash/ under name (cheap, atomic), so that the
// slow deletion happens in emptyTrash and a crash during it leaves only
// trash. A missing path is not an error.
func (c *Cache) toTrash(path, name string) error {
	err := renameToTrash(path, filepath.Join(c.trashDir, name))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// A name clash in trash (a crash mid-deletion, then the same name
	// again): use a fresh one.
	if err := renameToTrash(path, filepath.Join(c.trashDir, name+"-"+unique())); err != nil {
		return fmt.Errorf("move to trash: %w", err)
	}
	return nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// touch creates path or sets its mtime to now.
func touch(path string) error {
	now := time.Now()
	if err := os.Chtimes(path, now, now); err == nil {
		return nil
	}
	// Private like the lock files beside it (see flock's openFile).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}
