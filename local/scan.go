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

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/flock"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// scan finds the leftovers of interrupted or superseded operations, one
// step per kind. It has two users: a sweep removes every leftover it is
// handed, and Verify reports each as a Problem and removes it only with
// Repair. Both therefore judge leftovers by the same rules and remove
// them under the same locks.
type scan struct {
	c    *Cache
	stop func() error
	// grace is how old leftovers must be to be handed over.
	grace time.Duration
	// settle is how old a staging lock file without its directory must
	// be (see staging).
	settle time.Duration
	// wait, when set, makes a removal wait for a key's stripe lock
	// (Verify's repairs); a sweep never waits and leaves a busy key's
	// leftovers to the next sweep.
	wait context.Context
}

// found is handed each leftover: the Problem it is, or nil for tidying a
// sweep does but nobody needs to hear of (the record of a retired version
// that is gone or current again), and a function that removes it. Its
// error is collected and the step carries on.
type found func(p *tiercache.Problem, remove func() error) error

// errNotLeftover is what a removal returns when, looking again under the
// key's lock, it finds what it was handed no longer a leftover (a Put
// committed it, or restarted its grace, meanwhile) and leaves it: not a
// failure, and not a removal either.
var errNotLeftover = errors.New("no longer a leftover")

// removeAll is the sweep's found: remove everything.
func removeAll(_ *tiercache.Problem, remove func() error) error { return remove() }

// old reports whether a leftover modified at t is past the grace.
func (s *scan) old(t time.Time) bool { return time.Since(t) >= s.grace }

// lockStripe takes the stripe lock of the key stored under name; ok is
// false when a sweep found it busy.
func (s *scan) lockStripe(name string) (lock *flock.Handle, ok bool, err error) {
	if s.wait == nil {
		return s.c.tryLock(s.c.stripeOf(name))
	}
	lock, err = s.c.lockStripe(s.wait, name)
	return lock, err == nil, err
}

// staging finds the staging of dead Puts. The removal runs while this
// holds the leftover's lock, so no Put can take it meanwhile. The verdict
// is exact: a Put locks staging/<id>.lock before it creates
// staging/<id>/ and removes that file only after the directory, so a
// lock that can be taken, or a directory without a lock file, has no
// live owner. The lock file is never created here.
//
// One instant is ambiguous: a lock file just created, not yet locked by
// its creator. Taking it then is harmless (the creator fails to lock and
// picks another name, and removing the file leaves nothing behind), but
// a check that only reports would report a live Put; lock files without
// a directory younger than settle are therefore skipped.
func (s *scan) staging(fn found) error {
	c := s.c
	const died = "the staging directory of a put whose process died"
	problem := func(path, why string) *tiercache.Problem {
		return &tiercache.Problem{Kind: ProblemStaleStaging, Path: path, Detail: why}
	}
	return forEachName(c.stagingDir, s.stop, func(name string) error {
		path := filepath.Join(c.stagingDir, name)
		if id, isLock := strings.CutSuffix(name, stagingLockExt); isLock {
			dir := filepath.Join(c.stagingDir, id)
			shown, why := dir, died
			if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
				shown, why = path, "the lock file of a put whose process died"
				if fi, err := os.Lstat(path); err != nil || time.Since(fi.ModTime()) < s.settle {
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
			if shown == dir {
				// Looked at again under the lock: a Put that released its
				// staging between our look and our lock has removed the
				// directory and is removing this file. Where a delete is
				// not seen as pending (Wine; see flock.stillLinked) we may
				// hold that very file, and must not call it dead.
				if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
					shown, why = path, "the lock file of a put whose process died"
					if fi, err := os.Lstat(path); err != nil || time.Since(fi.ModTime()) < s.settle {
						return ignoreNotExist(err)
					}
				}
			}
			return fn(problem(shown, why), func() error {
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
			return fn(problem(path, "a stray file in the staging directory"), func() error { return ignoreNotExist(os.Remove(path)) })
		}
		return fn(problem(path, died), func() error { return c.toTrash(path, "staging-"+name) })
	})
}

// retired finds versions replaced or removed longer ago than the grace,
// and records whose version is gone or current again (a crash between
// recording and swapping), which only need dropping.
func (s *scan) retired(fn found) error {
	c := s.c
	return forEachName(c.retiredDir, s.stop, func(version string) error {
		rec := filepath.Join(c.retiredDir, version)
		fi, err := os.Lstat(rec)
		if err != nil || !s.old(fi.ModTime()) {
			return ignoreNotExist(err)
		}
		drop := func() error { return ignoreNotExist(os.Remove(rec)) }
		name, ok := versionName(version)
		if !ok {
			return fn(nil, drop)
		}
		path := filepath.Join(c.dataDir, version)
		var p *tiercache.Problem
		if _, err := os.Lstat(path); err == nil {
			if cur, _ := c.current(name); cur != version {
				p = &tiercache.Problem{Kind: ProblemExpiredVersion, Path: path, Detail: fmt.Sprintf("replaced or removed %s ago", since(fi.ModTime()))}
			}
		}
		return fn(p, func() error {
			lock, ok, err := s.lockStripe(name)
			if err != nil || !ok {
				return err
			}
			defer lock.Unlock()
			// Judged again under the lock: a Put that replaced a version
			// still current when we looked (a stale record) has restarted
			// its grace by rewriting the record.
			fi, err := os.Lstat(rec)
			if err != nil {
				return ignoreNotExist(err)
			}
			if !s.old(fi.ModTime()) {
				return errNotLeftover
			}
			if cur, _ := c.current(name); cur != version {
				if err := c.toTrash(path, version); err != nil {
					return err
				}
			}
			return drop()
		})
	})
}

// orphans finds versions older than the grace that no pointer names and
// no retired record covers: a crash between publishing a version and
// pointing at it. The removal checks again under the key's stripe lock,
// which a Put holds from publishing a version to pointing at it.
func (s *scan) orphans(fn found) error {
	c := s.c
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
	return forEachName(c.dataDir, s.stop, func(version string) error {
		if !orphan(version) {
			return nil
		}
		path := filepath.Join(c.dataDir, version)
		fi, err := os.Lstat(path)
		if err != nil || !s.old(fi.ModTime()) {
			return ignoreNotExist(err)
		}
		name, _ := versionName(version)
		p := &tiercache.Problem{Kind: ProblemOrphanVersion, Path: path, Detail: fmt.Sprintf("no pointer names it; last used %s ago", since(fi.ModTime()))}
		return fn(p, func() error {
			lock, ok, err := s.lockStripe(name)
			if err != nil || !ok {
				return err
			}
			defer lock.Unlock()
			if !orphan(version) {
				return errNotLeftover // pointed at meanwhile
			}
			return c.toTrash(path, version)
		})
	})
}

// tempPointers finds temporary pointers older than the grace, left in
// index/ by a crash while a pointer was swapped, and temporary pull
// records left in pulls/ the same way (see NotePull).
func (s *scan) tempPointers(fn found) error {
	c := s.c
	for _, d := range []struct{ dir, prefix, detail string }{
		{c.indexDir, tmpPrefix, "a temporary pointer left by an interrupted put"},
		{filepath.Join(c.root, pullsDir), markerTmp, "a temporary pull record left by an interrupted pull"},
	} {
		err := forEachName(d.dir, s.stop, func(name string) error {
			if !strings.HasPrefix(name, d.prefix) {
				return nil
			}
			path := filepath.Join(d.dir, name)
			fi, err := os.Lstat(path)
			if err != nil || !s.old(fi.ModTime()) {
				return ignoreNotExist(err)
			}
			return fn(&tiercache.Problem{Kind: ProblemTempPointer, Path: path, Detail: d.detail},
				func() error { return ignoreNotExist(os.Remove(path)) })
		})
		if err = ignoreNotExist(err); err != nil {
			return err
		}
	}
	return nil
}

// trash finds what is left in trash/ past the grace. Anything younger is
// a deletion under way or about to start: a sweep that found the sweep
// lock held (by a detached empty-trash, say) moves dead staging here and
// leaves the deleting to the lock's holder or the next command. A sweep
// empties trash/ whatever its age instead (see emptyTrash).
func (s *scan) trash(fn found) error {
	c := s.c
	return forEachName(c.trashDir, s.stop, func(name string) error {
		path := filepath.Join(c.trashDir, name)
		if fi, err := os.Lstat(path); err == nil && !s.old(changedAt(fi)) {
			return nil
		}
		return fn(&tiercache.Problem{Kind: ProblemTrash, Path: path, Detail: "left by an interrupted deletion"},
			func() error { return fsutil.RemoveAll(path) })
	})
}

// forEachName calls fn for every name in dir, in batches so huge
// directories are never held in memory at once, and stops at stop's error.
// fn's errNotLeftover is no failure.
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
			if ferr := fn(name); ferr != nil && !errors.Is(ferr, errNotLeftover) {
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

// since renders the time elapsed since t, rounded to the second.
func since(t time.Time) string { return time.Since(t).Round(time.Second).String() }
