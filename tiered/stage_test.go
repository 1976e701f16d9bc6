package tiered

import (
	"github.com/tiercache/tiercache/remote/memstore"

	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/flock"
)

// deadStage makes what a pull killed mid-extraction leaves in parent: a
// stage holding a small tree and its lock file, locked by no one.
func deadStage(t *testing.T, parent, name string) string {
	t.Helper()
	stage := filepath.Join(parent, name)
	writeTree(t, stage)
	if err := os.WriteFile(stage+stageLockExt, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return stage
}

func writeTree(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"a/b/c/d/e.txt", "a/f.txt", "g.txt"} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func age(t *testing.T, path string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func mustExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("%s: %v, want it kept", filepath.Base(path), err)
	}
}

func mustBeGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: Lstat err %v, want it removed", filepath.Base(path), err)
	}
}

func sweep(t *testing.T, parent string) {
	t.Helper()
	if err := sweepStages(t.Context(), parent); err != nil {
		t.Fatalf("sweepStages: %v", err)
	}
}

func TestStageSweepRemovesDeadOwners(t *testing.T) {
	parent := t.TempDir()
	dead := deadStage(t, parent, ".tiercache-pull-00000000000000000042")
	old := deadStage(t, parent, ".tiercache-pull-7") // short names are locked too
	// A lock file whose pull died before making its stage, or after
	// removing it.
	orphan := filepath.Join(parent, ".tiercache-pull-99"+stageLockExt)
	if err := os.WriteFile(orphan, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A read-only directory inside (Go's module cache is all 0555).
	ro := filepath.Join(dead, "a", "b")
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(ro, 0o755) })

	sweep(t, parent)
	for _, p := range []string{dead, dead + stageLockExt, old, old + stageLockExt, orphan} {
		mustBeGone(t, p)
	}
}

func TestStageSweepKeepsLiveStage(t *testing.T) {
	parent := t.TempDir()
	stage, release, err := newStage(parent)
	if err != nil {
		t.Fatal(err)
	}
	if !isStageName(filepath.Base(stage)) {
		t.Fatalf("newStage made %s, not a stage name", stage)
	}
	writeTree(t, stage)
	age(t, stage, 3*locklessStageAge) // age is no verdict on a locked stage
	// A lock file held, its stage not made yet: how newStage starts.
	early, ok, err := flock.TryLock(filepath.Join(parent, ".tiercache-pull-5"+stageLockExt))
	if err != nil || !ok {
		t.Fatalf("TryLock: ok=%v err=%v", ok, err)
	}
	defer early.Unlock()

	sweep(t, parent)
	mustExist(t, filepath.Join(stage, "a", "b", "c", "d", "e.txt"))
	mustExist(t, stage+stageLockExt)
	mustExist(t, early.Path())

	release()
	release() // only the first call acts
	mustBeGone(t, stage)
	mustBeGone(t, stage+stageLockExt)
}

func TestStageReleaseAfterRename(t *testing.T) {
	parent := t.TempDir()
	stage, release, err := newStage(parent)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(stage); err != nil || !fi.IsDir() {
		t.Fatalf("stage: %v", err)
	} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Errorf("stage mode %v, want private 0700", fi.Mode().Perm())
	}
	writeTree(t, stage)
	dir := filepath.Join(parent, "dir")
	if err := os.Rename(stage, dir); err != nil {
		t.Fatal(err)
	}
	release()
	mustBeGone(t, stage+stageLockExt)
	mustExist(t, filepath.Join(dir, "g.txt"))
}

func TestStageSweepLockless(t *testing.T) {
	parent := t.TempDir()
	old := filepath.Join(parent, ".tiercache-pull-1234567890")
	fresh := filepath.Join(parent, ".tiercache-pull-987654321")
	writeTree(t, old)
	writeTree(t, fresh)
	age(t, old, locklessStageAge+time.Minute)
	age(t, fresh, locklessStageAge-10*time.Minute)

	sweep(t, parent)
	mustBeGone(t, old)
	mustBeGone(t, old+stageLockExt) // the lock it took for the removal
	mustExist(t, filepath.Join(fresh, "a", "f.txt"))
	mustBeGone(t, fresh+stageLockExt) // none made for a stage it keeps
}

func TestStageSweepTouchesNothingElse(t *testing.T) {
	parent := t.TempDir()
	var keep []string
	for _, name := range []string{
		".tiercache-pull-",
		".tiercache-pull-abc",
		".tiercache-pull-12x",
		".tiercache-pull--1",
		".tiercache-pull-12.lockx",
		".tiercache-pull-12.lock.lock",
		".Tiercache-pull-12",
		"tiercache-pull-12",
		"x.tiercache-pull-12",
		".tiercache-local",
		"dir",
	} {
		p := filepath.Join(parent, name)
		writeTree(t, p)
		age(t, p, 2*locklessStageAge)
		// A free lock beside it must not make it a stage either.
		if err := os.WriteFile(p+stageLockExt, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, p, p+stageLockExt)
	}
	plain := filepath.Join(parent, "notes.lock")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, plain)

	sweep(t, parent)
	for _, p := range keep {
		mustExist(t, p)
	}
}

func TestStageSweepHonoursContext(t *testing.T) {
	parent := t.TempDir()
	dead := deadStage(t, parent, ".tiercache-pull-1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sweepStages(ctx, parent); !errors.Is(err, context.Canceled) {
		t.Fatalf("sweepStages with a cancelled context: %v, want Canceled", err)
	}
	mustExist(t, dead+stageLockExt)
	sweep(t, parent)
	mustBeGone(t, dead)
	mustBeGone(t, dead+stageLockExt)
}

// TestStageSweepRacesLivePulls sweeps over and over while pulls create,
// fill and release stages: no live stage may lose a file, and nothing is
// left at the end.
func TestStageSweepRacesLivePulls(t *testing.T) {
	parent := t.TempDir()
	stop := make(chan struct{})
	var sweeps sync.WaitGroup
	sweeps.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := sweepStages(t.Context(), parent); err != nil {
				t.Errorf("sweepStages: %v", err)
				return
			}
		}
	})
	var pulls sync.WaitGroup
	for range 3 {
		pulls.Go(func() {
			for range 40 {
				stage, release, err := newStage(parent)
				if err != nil {
					t.Errorf("newStage: %v", err)
					return
				}
				p := filepath.Join(stage, "f")
				if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
					t.Errorf("write into live stage: %v", err)
				}
				runtime.Gosched()
				if _, err := os.Stat(p); err != nil {
					t.Errorf("live stage lost its file: %v", err)
				}
				release()
			}
		})
	}
	pulls.Wait()
	close(stop)
	sweeps.Wait()
	sweep(t, parent)
	if left, _ := filepath.Glob(filepath.Join(parent, "*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestDeadStageInsideDir: what a pull killed while it staged inside DIR
// (its parent not writable) left there is not pushed with DIR, and the
// next pull into DIR removes it.
func TestDeadStageInsideDir(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	clean, err := c.Push(t.Context(), "clean", smallTree(t, "stage"), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := smallTree(t, "stage")
	dead := deadStage(t, dir, ".tiercache-pull-00000000000000000042")
	res, err := c.Push(t.Context(), "k", dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustBeGone(t, dead)
	mustBeGone(t, dead+stageLockExt)
	if res.Entry.Files != clean.Entry.Files || res.Entry.Size != clean.Entry.Size {
		t.Errorf("the entry holds %d files of %d bytes, want the tree's %d of %d alone", res.Entry.Files, res.Entry.Size, clean.Entry.Files, clean.Entry.Size)
	}
	dst := t.TempDir()
	dead = deadStage(t, dst, ".tiercache-pull-00000000000000000043")
	if _, ok, err := c.Pull(t.Context(), "k", nil, dst, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull: %v %v", ok, err)
	}
	mustBeGone(t, dead)
	mustBeGone(t, dead+stageLockExt)
}
