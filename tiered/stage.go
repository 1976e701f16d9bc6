package tiered

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tiercache/tiercache/internal/flock"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// A pull extracts into a stage beside DIR, named stagePrefix and digits,
// and holds the lock of the file named like it plus stageLockExt for as
// long as the stage exists. A process killed mid-pull leaves both behind,
// its lock free: that is how sweepStages tells its stage from a live one.
const (
	stagePrefix  = ".tiercache-pull-"
	stageLockExt = ".lock"
)

// locklessStageAge is how old, by mtime, a stage without a lock file must
// be before sweepStages removes it. Such stages come from tiercache
// versions that did not lock them, whose owner may still be alive, so only
// age can tell; an hour spares any pull that is plausibly still running.
const locklessStageAge = time.Hour

// newStage creates a fresh, private (0700) stage directory in parent, to
// be renamed into place, locked for as long as it exists. release removes
// what is left of the stage (nothing once it was renamed away), then its
// lock file; only the first call acts. If the stage cannot be removed the
// lock file stays, unlocked, so that a later sweepStages finishes the job.
//
// The lock file is created and locked before the directory and removed
// after it, so at no instant does a live pull's stage look dead.
func newStage(parent string) (stage string, release func(), err error) {
	for range 4 {
		// 20 digits: never a name os.MkdirTemp gives (at most 10 digits),
		// so an older tiercache's lock-less stage is never taken for one
		// of these.
		stage = filepath.Join(parent, fmt.Sprintf("%s%020d", stagePrefix, rand.Uint64()))
		lock, ok, err := flock.TryLock(stage + stageLockExt)
		if errors.Is(err, flock.ErrReplaced) {
			continue // sweepers took the lock file before we could lock it
		}
		if err != nil {
			return "", nil, fmt.Errorf("create stage: %w", err)
		}
		if !ok {
			continue // a sweeper holds the name for a moment: take another
		}
		if err := os.Mkdir(stage, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) {
				// A dead pull's stage (its lock was free): left to a sweep.
				_ = lock.Unlock()
				continue
			}
			_ = lock.Remove()
			return "", nil, err
		}
		return stage, sync.OnceFunc(func() {
			if err := fsutil.RemoveAll(stage); err != nil {
				_ = lock.Unlock()
				return
			}
			_ = lock.Remove()
		}), nil
	}
	return "", nil, fmt.Errorf("create stage in %s: no free name", parent)
}

// isStageName reports whether name is a stage's: stagePrefix followed by
// digits only, as every tiercache version has named them.
func isStageName(name string) bool {
	digits, ok := strings.CutPrefix(name, stagePrefix)
	if !ok || digits == "" {
		return false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// sweepStages removes from parent the stages left by pulls whose process
// died (killed, out of memory), with their lock files: a stage whose lock
// can be taken, a lock file without its stage whose lock can be taken,
// and a stage without a lock file older than locklessStageAge. Nothing
// else in parent is touched; a stage or lock file that is a symlink is
// never followed (such a stage is removed as a link).
//
// It may take long (a stage can be a whole tree), so a pull runs it
// beside its own work. It stops between stages when ctx is done,
// returning ctx's error; a process that exits meanwhile leaves what was
// not removed, locked by no one, to the next sweep. Other failures do not
// stop it: they are returned together at the end. A missing parent is
// not an error.
func sweepStages(ctx context.Context, parent string) error {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep stages: %w", err)
	}
	var errs []error
	seen := make(map[string]bool)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, _ := strings.CutSuffix(e.Name(), stageLockExt)
		if !isStageName(name) || seen[name] {
			continue
		}
		seen[name] = true
		if err := sweepStage(ctx, filepath.Join(parent, name)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweepStage removes the stage at stage and its lock file if no live pull
// owns them (see sweepStages). The removal runs under the stage's lock,
// so neither the owner nor another sweeper can be at work on it meanwhile.
func sweepStage(ctx context.Context, stage string) error {
	lockPath := stage + stageLockExt
	if fi, err := os.Lstat(lockPath); err == nil && !fi.Mode().IsRegular() {
		return nil // not a file this package made: locking it would follow it
	}
	lock, ok, err := flock.TryLockExisting(lockPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Without a lock file, only age can tell (see locklessStageAge).
		fi, err := os.Lstat(stage)
		if err != nil || time.Since(fi.ModTime()) < locklessStageAge {
			return ignoreNotExist(err)
		}
		// Locked like a new stage, so that two sweepers do not remove it
		// together and one cut short leaves it to the next at once.
		lock, ok, err = flock.TryLock(lockPath)
		if err != nil || !ok {
			return err
		}
	case err != nil:
		return err
	case !ok:
		return nil // a live pull's
	}
	fi, err := os.Lstat(stage)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A lock file alone: its stage was removed, or its pull died
		// before making it, or its creator has not locked it yet, which
		// then fails to and picks another name.
		return lock.Remove()
	case err != nil:
		_ = lock.Unlock()
		return err
	case fi.IsDir():
		err = fsutil.RemoveAll(stage)
	default:
		// A symlink (or a stray file) goes as a name; never followed.
		err = ignoreNotExist(os.Remove(stage))
	}
	if err != nil {
		// The lock file stays: on Windows a file some other process has
		// open (a virus scanner, an indexer) cannot be deleted yet, and a
		// later sweep takes the free lock and tries again.
		_ = lock.Unlock()
		return fmt.Errorf("remove dead stage %s: %w", stage, err)
	}
	return lock.Remove()
}

// ignoreNotExist is err, except nil for a file that is not there.
func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// stageBeside makes a stage in parent (see newStage) and, beside the
// caller's work, sweeps parent of dead pulls' stages. done releases the
// stage and waits for the sweep, unless ctx ended: a process exiting
// then leaves the rest to the next sweep.
func stageBeside(ctx context.Context, parent string) (stage string, done func(), err error) {
	stage, release, err := newStage(parent)
	if err != nil {
		return "", nil, err
	}
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		_ = sweepStages(ctx, parent)
	}()
	return stage, func() {
		release()
		select {
		case <-swept:
		case <-ctx.Done():
		}
	}, nil
}
