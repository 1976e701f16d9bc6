package local

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/flock"
)

// kinds renders a report's problems as "kind key-or-base-name", sorted.
func kinds(r tiercache.CheckReport) []string {
	var out []string
	for _, p := range r.Problems {
		who := p.Key
		if who == "" {
			who = filepath.Base(p.Path)
		}
		out = append(out, p.Kind+" "+who)
	}
	slices.Sort(out)
	return out
}

func mustVerify(t *testing.T, c *Cache, opts VerifyOptions) tiercache.CheckReport {
	t.Helper()
	r, err := c.Verify(t.Context(), opts)
	if err != nil {
		t.Fatalf("Verify(%+v): %v", opts, err)
	}
	return r
}

// TestVerify breaks entries and plants leftovers of every kind Verify
// knows, then checks what a metadata check, a deep check and a repair
// report, that checking changes nothing, and that repairing leaves a cache
// that checks clean with its sound entries intact and live work untouched.
func TestVerify(t *testing.T) {
	c := open(t, Options{}) // grace: 10 minutes
	ctx := t.Context()
	for _, k := range []string{"sound", "bad-meta", "grown", "no-tree", "replaced"} {
		if _, err := c.Put(ctx, k, smallSrc(t, k), ""); err != nil {
			t.Fatal(err)
		}
	}
	oldReplaced, _ := c.current(nameOf("replaced"))
	if _, err := c.Put(ctx, "replaced", smallSrc(t, "v2"), ""); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, c, VerifyOptions{Deep: true})
	if r.Entries != 5 || r.Verified != 5 || len(r.Problems) != 0 {
		t.Fatalf("sound cache: %+v, want 5 entries verified and no problem", r)
	}

	// Break entries.
	ver := func(k string) string {
		v, err := c.current(nameOf(k))
		if err != nil || v == "" {
			t.Fatalf("current(%q) = %q, %v", k, v, err)
		}
		return filepath.Join(c.dataDir, v)
	}
	var brokenVersions []string // retired by the repair below
	for _, k := range []string{"bad-meta", "grown", "no-tree"} {
		brokenVersions = append(brokenVersions, "expired-version "+filepath.Base(ver(k)))
	}
	must(t, os.WriteFile(filepath.Join(ver("bad-meta"), metaFile), []byte("{not json"), 0o644))
	must(t, os.WriteFile(filepath.Join(ver("grown"), treeDir, "extra"), []byte("x"), 0o644))
	must(t, os.RemoveAll(filepath.Join(ver("no-tree"), treeDir)))
	must(t, writePointer(filepath.Join(c.indexDir, "evil"), "../../etc", false))
	must(t, writePointer(filepath.Join(c.indexDir, "vanished"), "../data/vanished-0123456789abcdef", false))

	// Leftovers: old ones of each kind, and young or live ones that must
	// be left alone.
	long := time.Now().Add(-2 * time.Hour)
	dead := filepath.Join(c.stagingDir, "00000000000000d1")
	live := filepath.Join(c.stagingDir, "00000000000000a1")
	for _, d := range []string{dead, live} {
		must(t, os.MkdirAll(filepath.Join(d, stagingVer, treeDir), 0o755))
	}
	must(t, os.WriteFile(dead+stagingLockExt, nil, 0o644))
	// A directory without its lock file (died while removing it) is dead
	// however young; a lock file without its directory (died before
	// creating it) once settled, since a young one may be a Put's that is
	// about to lock it.
	lockless := filepath.Join(c.stagingDir, "00000000000000d2")
	must(t, os.MkdirAll(filepath.Join(lockless, stagingVer), 0o755))
	lockOnly := filepath.Join(c.stagingDir, "00000000000000d3"+stagingLockExt)
	youngLock := filepath.Join(c.stagingDir, "00000000000000d4"+stagingLockExt)
	for _, f := range []string{lockOnly, youngLock} {
		must(t, os.WriteFile(f, nil, 0o644))
	}
	must(t, os.Chtimes(lockOnly, long, long))
	held, ok, err := flock.TryLock(live + stagingLockExt)
	if err != nil || !ok {
		t.Fatalf("lock live staging: %v %v", ok, err)
	}
	defer held.Unlock()
	oldOrphan := filepath.Join(c.dataDir, nameOf("crashed")+"-00000000000000aa")
	youngOrphan := filepath.Join(c.dataDir, nameOf("crashed")+"-00000000000000bb")
	for _, d := range []string{oldOrphan, youngOrphan} {
		must(t, os.MkdirAll(filepath.Join(d, treeDir), 0o755))
	}
	must(t, os.Chtimes(oldOrphan, long, long))
	must(t, os.Chtimes(filepath.Join(c.retiredDir, oldReplaced), long, long))
	trashed := filepath.Join(c.trashDir, "half-deleted")
	must(t, os.MkdirAll(filepath.Join(trashed, "ro"), 0o755))
	must(t, os.WriteFile(filepath.Join(trashed, "ro", "f"), []byte("x"), 0o444))
	must(t, os.Chmod(filepath.Join(trashed, "ro"), 0o555))
	tmp := filepath.Join(c.indexDir, tmpPrefix+"0000000000000001")
	must(t, writePointer(tmp, "../data/x", false))
	must(t, setPointerTime(tmp, long))

	metadata := []string{
		"broken-entry evil",
		"broken-entry no-tree",
		"broken-entry vanished-0123456789abcdef",
		"broken-entry " + filepath.Base(ver("bad-meta")),
		"expired-version " + oldReplaced,
		"orphan-version " + filepath.Base(oldOrphan),
		"stale-staging " + filepath.Base(dead),
		"stale-staging " + filepath.Base(lockless),
		"stale-staging " + filepath.Base(lockOnly),
		"temp-pointer " + filepath.Base(tmp),
	}
	slices.Sort(metadata)
	r = mustVerify(t, c, VerifyOptions{})
	if got := kinds(r); !slices.Equal(got, metadata) {
		t.Fatalf("metadata check found\n%q\nwant\n%q", got, metadata)
	}
	if r.Entries != 7 || r.Verified != 0 || r.Unrepaired() != len(metadata) {
		t.Errorf("metadata check: %d entries, %d verified, %d unrepaired", r.Entries, r.Verified, r.Unrepaired())
	}
	deep := slices.Concat(metadata, []string{"tree-mismatch grown"})
	slices.Sort(deep)
	r = mustVerify(t, c, VerifyOptions{Deep: true})
	if got := kinds(r); !slices.Equal(got, deep) {
		t.Fatalf("deep check found\n%q\nwant\n%q", got, deep)
	}
	if r.Verified != 2 { // sound, replaced
		t.Errorf("%d trees verified, want 2", r.Verified)
	}
	// Trash is reported once it has sat there past the grace: younger,
	// it is a deletion under way, or one a sweep that found the sweep
	// lock held has just handed over.
	r = mustVerify(t, c, VerifyOptions{Grace: time.Nanosecond})
	if got := kinds(r); !slices.Contains(got, "trash half-deleted") {
		t.Errorf("check with no grace found %q, without the trash", got)
	}
	for _, p := range []string{dead, lockless, lockOnly, oldOrphan, trashed, tmp, filepath.Join(c.indexDir, "evil")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("a check without repair removed %s: %v", p, err)
		}
	}

	r = mustVerify(t, c, VerifyOptions{Deep: true, Repair: true})
	if got := kinds(r); !slices.Equal(got, deep) {
		t.Fatalf("repair found\n%q\nwant\n%q", got, deep)
	}
	if n := r.Unrepaired(); n != 0 {
		t.Fatalf("%d problems unrepaired: %+v", n, r.Problems)
	}
	r = mustVerify(t, c, VerifyOptions{Deep: true})
	if len(r.Problems) != 0 || r.Entries != 2 || r.Verified != 2 {
		t.Fatalf("check after repair: %+v, want 2 sound entries and no problem", r)
	}
	for _, k := range []string{"bad-meta", "grown", "no-tree"} {
		if _, ok, err := c.Get(ctx, k); ok || err != nil {
			t.Errorf("Get(%q) after repair: %v %v, want a clean miss", k, ok, err)
		}
	}
	p, ok, err := c.Get(ctx, "sound")
	if err != nil || !ok {
		t.Fatalf("Get(sound) after repair: %v %v", ok, err)
	}
	checkTag(t, p, "sound")
	for _, d := range []string{live, live + stagingLockExt, youngOrphan, youngLock} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("repair removed %s, which is live or young: %v", d, err)
		}
	}
	if n := names(t, c.trashDir); len(n) != 0 {
		t.Errorf("trash after repair: %q", n)
	}

	// A shorter grace counts the young leftovers too (the versions the
	// repair retired among them), but never what a live Put holds.
	r = mustVerify(t, c, VerifyOptions{Grace: time.Nanosecond, Repair: true})
	want := slices.Concat(brokenVersions, []string{"orphan-version " + filepath.Base(youngOrphan), "stale-staging " + filepath.Base(youngLock)})
	slices.Sort(want)
	if got := kinds(r); !slices.Equal(got, want) || r.Unrepaired() != 0 {
		t.Fatalf("no-grace repair: %q (%d unrepaired), want %q removed", got, r.Unrepaired(), want)
	}
	for _, d := range []string{youngOrphan, youngLock, dead, dead + stagingLockExt, lockless, lockOnly} {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", d, err)
		}
	}
	if _, err := os.Lstat(live); err != nil {
		t.Errorf("live staging removed: %v", err)
	}
	if n := names(t, c.dataDir); len(n) != 2 {
		t.Errorf("data after the no-grace repair holds %q, want the 2 current versions", n)
	}

	if _, err := c.Verify(ctx, VerifyOptions{Grace: -1}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("negative grace: %v, want ErrInvalidArgument", err)
	}
}

// TestVerifyConcurrentPuts checks that entries replaced while Verify runs
// are never reported: a replacement is not damage.
func TestVerifyConcurrentPuts(t *testing.T) {
	c := open(t, Options{NoSync: true})
	ctx := t.Context()
	srcs := []string{smallSrc(t, "a"), smallSrc(t, "b")}
	done := make(chan struct{})
	errc := make(chan error, 1)
	var puts atomic.Int64
	go func() {
		defer close(errc)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := c.Put(ctx, "k", srcs[i%2], ""); err != nil {
				errc <- err
				return
			}
			puts.Add(1)
		}
	}()
	// Until both have run a good number of times, interleaved.
	for i := 0; i < 30 || puts.Load() < 30; i++ {
		r, err := c.Verify(ctx, VerifyOptions{Deep: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Problems) != 0 {
			t.Fatalf("Verify during puts reported %+v", r.Problems)
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRepairTreeOfArchiveEntry: a tree made beside a sound archive that
// no longer matches the entry is dropped by a repair, not the entry: the
// next Get makes the tree again from the archive.
func TestRepairTreeOfArchiveEntry(t *testing.T) {
	c := open(t, Options{Grace: time.Millisecond})
	ctx := t.Context()
	putArchive(t, c, "a", smallSrc(t, "a"))
	tree, ok, err := c.Get(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("Get: %v, %v", ok, err)
	}
	must(t, os.WriteFile(filepath.Join(tree, "extra"), []byte("x"), 0o644))
	time.Sleep(10 * time.Millisecond) // past the grace of the Get's use
	r := mustVerify(t, c, VerifyOptions{Deep: true, Repair: true})
	// (The trash the tree went to is emptied by the same run.)
	if got := kinds(r); !slices.Contains(got, "tree-mismatch a") || r.Unrepaired() != 0 {
		t.Fatalf("repair: %q, %d unrepaired; want the tree of a repaired", got, r.Unrepaired())
	}
	s, ok, err := c.Lookup(ctx, "a")
	if err != nil || !ok || s.Tree != "" {
		t.Fatalf("after the repair: Lookup = %+v, %v, %v; want the entry, without its tree", s, ok, err)
	}
	p, ok, err := c.Get(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("Get after the repair: %v, %v", ok, err)
	}
	checkTag(t, p, "a")
	if _, err := os.Lstat(filepath.Join(p, "extra")); !os.IsNotExist(err) {
		t.Errorf("the remade tree holds the stray file: %v", err)
	}
}
