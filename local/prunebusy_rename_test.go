package local

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/policy"
)

// errInUse stands for the refusal Windows gives to renaming a tree in
// which a reader still has a file open.
var errInUse = errors.New("the process cannot access the file because it is being used by another process")

// busy makes every move into trash of vdir, or of anything in it, fail
// with errInUse until the test ends or the returned function is called.
func busy(t *testing.T, vdir string) (release func()) {
	t.Helper()
	orig := renameToTrash
	renameToTrash = func(oldpath, newpath string) error {
		if oldpath == vdir || strings.HasPrefix(oldpath, vdir+string(filepath.Separator)) {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errInUse}
		}
		return orig(oldpath, newpath)
	}
	release = func() { renameToTrash = orig }
	t.Cleanup(release)
	return release
}

// TestPruneCarriesOnPastBusyTree: over its byte limit, Prune drops the
// trees made beside archives; one it cannot move away (a reader has a
// file open in it, on Windows) stays and still counts, and Prune goes on
// with the other trees and evicts what the limit then requires, reporting
// it. The kept tree is deleted by a later sweep once it can be.
func TestPruneCarriesOnPastBusyTree(t *testing.T) {
	const grace = 20 * time.Millisecond
	c := open(t, Options{Grace: grace})
	ctx := t.Context()
	a := putArchive(t, c, "a", smallSrc(t, "a"))
	b := putArchive(t, c, "b", smallSrc(t, "b"))
	pa, ok, err := c.Get(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("Get a: %v, %v", ok, err)
	}
	time.Sleep(2 * time.Millisecond) // a is the least recently used
	if _, ok, err := c.Get(ctx, "b"); err != nil || !ok {
		t.Fatalf("Get b: %v, %v", ok, err)
	}
	time.Sleep(grace + 10*time.Millisecond) // both trees past the grace
	vdirA := filepath.Dir(a.Archive)
	release := busy(t, vdirA)

	var evicted []policy.Item
	limits := policy.Limits{MaxBytes: a.ArchiveSize + b.ArchiveSize, OnEvict: func(it policy.Item) { evicted = append(evicted, it) }}
	n, err := c.PruneLimits(ctx, limits)
	if err != nil {
		t.Fatalf("Prune failed on a tree it could not move away: %v", err)
	}
	if n != 1 || len(evicted) != 1 || evicted[0].Key != "a" || evicted[0].Size != a.ArchiveSize+a.Entry.Size {
		t.Fatalf("Prune = %d, evicted %+v; want a evicted with %d bytes (its archive and its kept tree)", n, evicted, a.ArchiveSize+a.Entry.Size)
	}
	if s, ok, err := c.Lookup(ctx, "b"); err != nil || !ok || s.Tree != "" {
		t.Fatalf("b = %+v, %v, %v; want it kept, its tree dropped", s, ok, err)
	}
	checkTag(t, pa, "a")

	// The sweep keeps the busy version and its record, carrying on.
	time.Sleep(grace + 10*time.Millisecond)
	if err := c.Sweep(ctx); !errors.Is(err, errInUse) {
		t.Fatalf("Sweep = %v; want the failed move reported", err)
	}
	if _, err := os.Lstat(filepath.Join(c.retiredDir, filepath.Base(vdirA))); err != nil {
		t.Fatalf("record of the busy version dropped: %v", err)
	}
	checkTag(t, pa, "a")

	release()
	if err := c.Sweep(ctx); err != nil {
		t.Fatalf("Sweep once the tree is free: %v", err)
	}
	if _, err := os.Lstat(vdirA); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("evicted version still there once free: %v", err)
	}
	if got := names(t, c.retiredDir); len(got) != 0 {
		t.Fatalf("retired = %q, want none", got)
	}
}

// TestSweepCarriesOnPastBusyVersion: a removed version the sweep cannot
// move away is kept with its record, the sweep removes the others, and
// fsck reports the failed repair.
func TestSweepCarriesOnPastBusyVersion(t *testing.T) {
	const grace = 20 * time.Millisecond
	c := open(t, Options{Grace: grace})
	ctx := t.Context()
	px, err := c.Put(ctx, "x", smallSrc(t, "x"), "")
	if err != nil {
		t.Fatal(err)
	}
	py, err := c.Put(ctx, "y", smallSrc(t, "y"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x", "y"} {
		if err := c.Invalidate(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(grace + 10*time.Millisecond)
	vx := filepath.Dir(px)
	release := busy(t, vx)
	if err := c.Sweep(ctx); !errors.Is(err, errInUse) {
		t.Fatalf("Sweep = %v; want the failed move reported", err)
	}
	if _, err := os.Lstat(filepath.Dir(py)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the free version was not removed: %v", err)
	}
	checkTag(t, px, "x")
	if got := names(t, c.retiredDir); !slices.Equal(got, []string{filepath.Base(vx)}) {
		t.Fatalf("retired = %q, want the busy version's record alone", got)
	}

	r := mustVerify(t, c, VerifyOptions{Repair: true})
	if len(r.Problems) != 1 || r.Problems[0].Kind != ProblemExpiredVersion || r.Problems[0].Repaired ||
		!strings.Contains(r.Problems[0].Detail, errInUse.Error()) {
		t.Fatalf("fsck = %+v; want the busy version reported, its repair failed", r.Problems)
	}

	release()
	if err := c.Sweep(ctx); err != nil {
		t.Fatalf("Sweep once the version is free: %v", err)
	}
	if _, err := os.Lstat(vx); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the version is still there once free: %v", err)
	}
}
