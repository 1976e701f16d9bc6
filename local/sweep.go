package local

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// sweep runs the steps of a sweep under the sweep lock; stop says when to
// give up (a cancelled context). The full steps run when full is set or
// when the last full sweep is older than the grace.
func (c *Cache) sweep(stop func() error, full bool) error {
	lock, ok, err := flock.TryLock(filepath.Join(c.locksDir, sweepLock))
	if err != nil {
		return err
	}
	if !ok {
		// Another process is sweeping, and may have listed staging/
		// before a run was killed. Staging is safe to sweep at once
		// (each directory's own lock decides), so the next command
		// always cleans up after a killed one.
		return c.sweepStaging(stop)
	}
	defer lock.Unlock()
	var errs []error
	errs = append(errs, c.sweepStaging(stop), c.sweepRetired(stop))
	mark := filepath.Join(c.locksDir, fullSweepMark)
	if fi, err := os.Stat(mark); full || err != nil || time.Since(fi.ModTime()) >= c.grace {
		ferr := errors.Join(c.sweepOrphans(stop), c.sweepTempPointers(stop), c.sweepKeyLocks(stop))
		if ferr == nil {
			ferr = touch(mark)
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

// forEachName calls fn for every name in dir, in batches so huge
// directories are never held in memory at once, and stops at stop's error.
func forEachName(dir string, stop func() error, fn func(name string) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	var errs []error
	for {
		names, err := d.Readdirnames(1024)
		for _, name := range names {
			if serr := stop(); serr != nil {
				return errors.Join(append(errs, serr)...)
			}
			if ferr := fn(name); ferr != nil {
				errs = append(errs, ferr)
			}
		}
		if errors.Is(err, io.EOF) {
			return errors.Join(errs...)
		}
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
}

// sweepStaging moves the staging of dead Puts to trash.
func (c *Cache) sweepStaging(stop func() error) error {
	return c.forEachDeadStaging(stop, 0, func(_, _ string, remove func() error) error { return remove() })
}

// forEachDeadStaging calls fn for every leftover in staging/ that has no
// live owner, with why it is there and a function that removes it. fn
// runs while this holds the leftover's lock, so no Put can take it
// meanwhile. The verdict is exact: a Put locks staging/<id>.lock before
// it creates staging/<id>/ and removes that file only after the
// directory, so a lock that can be taken, or a directory without a lock
// file, has no live owner. The lock file is never created here.
//
// One instant is ambiguous: a lock file just created, not yet locked by
// its creator. Taking it then is harmless (the creator fails to lock and
// picks another name, and removing the file leaves nothing behind), but
// a check that only reports would report a live Put; lock files without
// a directory younger than settle are therefore skipped.
func (c *Cache) forEachDeadStaging(stop func() error, settle time.Duration, fn func(path, why string, remove func() error) error) error {
	const died = "the staging directory of a put whose process died"
	return forEachName(c.stagingDir, stop, func(name string) error {
		path := filepath.Join(c.stagingDir, name)
		if id, isLock := strings.CutSuffix(name, stagingLockExt); isLock {
			dir := filepath.Join(c.stagingDir, id)
			shown, why := dir, died
			if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
				shown, why = path, "the lock file of a put whose process died"
				if fi, err := os.Lstat(path); err != nil || time.Since(fi.ModTime()) < settle {
					return ignoreNotExist(err)
				}
			}
			lock, ok, err := flock.TryLockExisting(path)
			if err != nil || !ok {
				return ignoreNotExist(err) // gone meanwhile, or a live Put
			}
			removed := false
			defer func() {
				if !removed {
					lock.Unlock()
				}
			}()
			return fn(shown, why, func() error {
				// As in release: the directory first, the lock file last.
				if err := c.toTrash(dir, "staging-"+id); err != nil {
					return err
				}
				removed = true
				return lock.Remove()
			})
		}
		if _, err := os.Lstat(path + stagingLockExt); !errors.Is(err, fs.ErrNotExist) {
			return nil // its lock file decides
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return ignoreNotExist(err)
		}
		if !fi.IsDir() {
			return fn(path, "a stray file in the staging directory", func() error { return ignoreNotExist(os.Remove(path)) })
		}
		return fn(path, died, func() error { return c.toTrash(path, "staging-"+name) })
	})
}

// sweepRetired moves versions whose grace has passed to trash, and drops
// records whose version is current again (a crash between recording and
// swapping).
func (c *Cache) sweepRetired(stop func() error) error {
	return forEachName(c.retiredDir, stop, func(version string) error {
		rec := filepath.Join(c.retiredDir, version)
		fi, err := os.Lstat(rec)
		if err != nil {
			return ignoreNotExist(err)
		}
		if time.Since(fi.ModTime()) < c.grace {
			return nil
		}
		name, ok := versionName(version)
		if !ok {
			return ignoreNotExist(os.Remove(rec))
		}
		lock, ok, err := flock.TryLock(c.stripeOf(name))
		if err != nil || !ok {
			return err // busy: the next sweep will do it
		}
		defer lock.Unlock()
		if cur, _ := c.current(name); cur != version {
			if err := c.toTrash(filepath.Join(c.dataDir, version), version); err != nil {
				return err
			}
		}
		return ignoreNotExist(os.Remove(rec))
	})
}

// sweepOrphans moves to trash the versions older than the grace that no
// pointer names and no retired record covers. The check is repeated under
// the key's stripe lock, which a Put holds from publishing a version to
// swapping the pointer to it.
func (c *Cache) sweepOrphans(stop func() error) error {
	orphan := func(version string) bool {
		name, ok := versionName(version)
		if !ok {
			return false // not ours: leave it alone
		}
		if _, err := os.Lstat(filepath.Join(c.retiredDir, version)); err == nil {
			return false
		}
		cur, err := c.current(name)
		return err == nil && cur != version
	}
	return forEachName(c.dataDir, stop, func(version string) error {
		if !orphan(version) {
			return nil
		}
		fi, err := os.Lstat(filepath.Join(c.dataDir, version))
		if err != nil {
			return ignoreNotExist(err)
		}
		if time.Since(fi.ModTime()) < c.grace {
			return nil
		}
		name, _ := versionName(version)
		lock, ok, err := flock.TryLock(c.stripeOf(name))
		if err != nil || !ok {
			return err
		}
		defer lock.Unlock()
		if !orphan(version) {
			return nil
		}
		return c.toTrash(filepath.Join(c.dataDir, version), version)
	})
}

// sweepTempPointers removes temporary pointers a crashed Put left in
// index/.
func (c *Cache) sweepTempPointers(stop func() error) error {
	return forEachName(c.indexDir, stop, func(name string) error {
		if !strings.HasPrefix(name, tmpPrefix) {
			return nil
		}
		p := filepath.Join(c.indexDir, name)
		fi, err := os.Lstat(p)
		if err != nil || time.Since(fi.ModTime()) < c.grace {
			return ignoreNotExist(err)
		}
		return ignoreNotExist(os.Remove(p))
	})
}

// sweepKeyLocks removes the Cache.Lock files of keys with no entry that
// nobody holds. Removing while holding the lock is safe (see flock).
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
	lock, ok, err := flock.TryLock(filepath.Join(c.locksDir, trashLock))
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
	lock, err := flock.Lock(ctx, filepath.Join(c.locksDir, trashLock))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return c.emptyTrashLocked(ctx.Err)
}

func (c *Cache) emptyTrashLocked(stop func() error) error {
	return forEachName(c.trashDir, stop, func(name string) error {
		return fsutil.RemoveAll(filepath.Join(c.trashDir, name))
	})
}

// toTrash renames path into trash/ under name (cheap, atomic), so that the
// slow deletion happens in emptyTrash and a crash during it leaves only
// trash. A missing path is not an error.
func (c *Cache) toTrash(path, name string) error {
	err := os.Rename(path, filepath.Join(c.trashDir, name))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// A name clash in trash (a crash mid-deletion, then the same name
	// again): use a fresh one.
	if err := os.Rename(path, filepath.Join(c.trashDir, name+"-"+unique())); err != nil {
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
