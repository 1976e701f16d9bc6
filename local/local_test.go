package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/flock"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/tiertest"
)

// open opens a cache in a fresh directory, removed at the end even though
// it holds read-only trees.
func open(t testing.TB, opts Options) *Cache {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cache")
	t.Cleanup(func() { _ = fsutil.RemoveAll(root) })
	c, err := Open(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reopen(t testing.TB, c *Cache, opts Options) *Cache {
	t.Helper()
	c2, err := Open(c.Root(), opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	return c2
}

func TestConformance(t *testing.T) {
	tiertest.Run(t, func(t *testing.T) tiercache.Backend { return open(t, Options{}) })
}

func srcDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func smallSrc(t *testing.T, tag string) string {
	t.Helper()
	dir := srcDir(t)
	treetest.Small(t, dir, 20, tag)
	return dir
}

// names lists a directory, failing t on error.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestFidelity(t *testing.T) {
	c := open(t, Options{})
	src := srcDir(t)
	treetest.Fidelity(t, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 300})
	p, err := c.Put(t.Context(), "fidelity", src, "")
	if err != nil {
		t.Fatal(err)
	}
	treetest.AssertEqual(t, src, p)
	g, ok, err := c.Get(t.Context(), "fidelity")
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	treetest.AssertEqual(t, src, g)

	// Measure measures what a fill wrote the way Put measures what it
	// copies (hardlinks counted once, root not a member).
	e, ok := lookup(t, c, "fidelity")
	if !ok {
		t.Fatal("Put's entry is not listed")
	}
	_, err = c.PutFunc(t.Context(), "fidelity2", "", func(ctx context.Context, dir string) (tiercache.Shape, error) {
		if _, err := Copy(ctx, src, dir); err != nil {
			return tiercache.Shape{}, err
		}
		return Measure(ctx, dir)
	})
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := lookup(t, c, "fidelity2")
	if e.Size != e2.Size || e.Files != e2.Files || e.Size < 2*treetest.BigFileSize {
		t.Fatalf("Put measured size %d files %d, Measure size %d files %d", e.Size, e.Files, e2.Size, e2.Files)
	}
}

// TestPutLeavesOutSockets: Put and Measure leave a socket out alike, so
// a push of a tree holding one (a daemon's, in a cache directory) works.
func TestPutLeavesOutSockets(t *testing.T) {
	c := open(t, Options{})
	src := smallSrc(t, "s")
	sh0, err := Measure(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(src, "s.sock"))
	if err != nil && treetest.UnderWine() {
		t.Skipf("Wine has no Unix domain sockets, which this test needs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sh, err := Measure(t.Context(), src)
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	if sh != sh0 {
		t.Errorf("Measure with a socket: %s, without: %s", sh, sh0)
	}
	p, err := c.Put(t.Context(), "k", src, "")
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(p, "s.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the socket was stored: %v", err)
	}
	e, ok := lookup(t, c, "k")
	if !ok {
		t.Fatal("Put's entry is not listed")
	}
	if e.Size != sh0.Size || e.Files != sh0.Files {
		t.Errorf("entry records %d bytes in %d entries, want %s", e.Size, e.Files, sh0)
	}
}

func TestPutFunc(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	p, err := c.PutFunc(ctx, "k", "made by fill", func(ctx context.Context, dir string) (tiercache.Shape, error) {
		if !strings.HasPrefix(dir, c.Root()+string(filepath.Separator)) {
			return tiercache.Shape{}, fmt.Errorf("fill dir %s is outside the root", dir)
		}
		if n := names(t, dir); len(n) != 0 {
			return tiercache.Shape{}, fmt.Errorf("fill dir not empty: %q", n)
		}
		if err := os.WriteFile(filepath.Join(dir, "a"), []byte("12345"), 0o644); err != nil {
			return tiercache.Shape{}, err
		}
		if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
			return tiercache.Shape{}, err
		}
		if err := os.Mkdir(filepath.Join(dir, "empty"), 0o555); err != nil {
			return tiercache.Shape{}, err
		}
		return Measure(ctx, dir)
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "b")); err != nil || string(b) != "12345" {
		t.Fatalf("stored file: %q %v", b, err)
	}
	e, ok := lookup(t, c, "k")
	if !ok || e.Size != 5 || e.Files != 3 || e.Description != "made by fill" {
		t.Fatalf("entry = %+v %v; want size 5 (hardlink counted once), files 3", e, ok)
	}

	// A failing fill commits nothing and removes its staging, read-only
	// parts included.
	boom := errors.New("boom")
	_, err = c.PutFunc(ctx, "k", "", func(ctx context.Context, dir string) (tiercache.Shape, error) {
		if err := os.Mkdir(filepath.Join(dir, "ro"), 0o755); err != nil {
			return tiercache.Shape{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, "ro", "f"), nil, 0o444); err != nil {
			return tiercache.Shape{}, err
		}
		if err := os.Chmod(filepath.Join(dir, "ro"), 0o555); err != nil {
			return tiercache.Shape{}, err
		}
		return tiercache.Shape{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("PutFunc with failing fill: %v, want boom", err)
	}
	// A fill that outlives its context commits nothing either.
	cctx, cancel := context.WithCancel(ctx)
	_, err = c.PutFunc(cctx, "k", "", func(ctx context.Context, dir string) (tiercache.Shape, error) {
		cancel()
		return tiercache.Shape{Files: 1}, os.WriteFile(filepath.Join(dir, "late"), nil, 0o644)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("PutFunc cancelled during fill: %v, want Canceled", err)
	}
	if p2, ok, err := c.Get(ctx, "k"); err != nil || !ok || p2 != p {
		t.Fatalf("after failed PutFuncs Get = %q %v %v, want the first version %q", p2, ok, err, p)
	}
	if n := names(t, c.stagingDir); len(n) != 0 {
		t.Fatalf("failed PutFuncs left staging %q", n)
	}
	if _, err := c.PutFunc(ctx, "k", "", nil); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("PutFunc(nil): %v, want ErrInvalidArgument", err)
	}
	if _, err := c.Put(ctx, "k", smallSrc(t, "x"), strings.Repeat("d", MaxDescriptionLen+1)); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("Put with a huge description: %v, want ErrInvalidArgument", err)
	}
}

func TestCancelDuringCopy(t *testing.T) {
	c := open(t, Options{})
	src := srcDir(t)
	treetest.Small(t, src, 200, "x")
	ctx, cancel := context.WithCancel(t.Context())
	// Cancel once the copy is under way, from inside it: the copier
	// looks at ctx before every entry.
	go func() {
		for ctx.Err() == nil {
			if n, _ := os.ReadDir(c.stagingDir); len(n) > 0 {
				cancel()
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	_, err := c.Put(ctx, "k", src, "")
	cancel()
	if err == nil {
		// The copy may win the race; the contract then is a complete entry.
		p, ok, gerr := c.Get(t.Context(), "k")
		if gerr != nil || !ok {
			t.Fatalf("Put succeeded but Get = %v %v", ok, gerr)
		}
		checkTag(t, p, "x")
		return
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v, want Canceled", err)
	}
	if _, ok, _ := c.Get(t.Context(), "k"); ok {
		t.Fatal("cancelled Put left an entry")
	}
	if n := names(t, c.stagingDir); len(n) != 0 {
		t.Fatalf("cancelled Put left staging %q", n)
	}
}

func checkTag(t *testing.T, p, want string) {
	t.Helper()
	tag, err := treetest.CheckSmall(p)
	if err != nil || tag != want {
		t.Fatalf("tree %s: tag %q, %v; want %q", p, tag, err, want)
	}
}

// lookup returns key's entry as List reports it, which records no access.
func lookup(t *testing.T, c *Cache, key string) (tiercache.Entry, bool) {
	t.Helper()
	es, err := c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Key == key {
			return e, true
		}
	}
	return tiercache.Entry{}, false
}

func TestListDoesNotTouchAccess(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", smallSrc(t, "x"), "d"); err != nil {
		t.Fatal(err)
	}
	e1, ok := lookup(t, c, "k")
	if !ok || e1.LastAccess != e1.Created {
		t.Fatalf("entry after Put = %+v %v; want LastAccess == Created", e1, ok)
	}
	time.Sleep(5 * time.Millisecond)
	e2, _ := lookup(t, c, "k")
	if !e2.LastAccess.Equal(e1.LastAccess) {
		t.Fatalf("List moved LastAccess from %v to %v", e1.LastAccess, e2.LastAccess)
	}
	if _, _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	e3, _ := lookup(t, c, "k")
	if !e3.LastAccess.After(e1.LastAccess) {
		t.Fatalf("Get did not move LastAccess (%v -> %v)", e1.LastAccess, e3.LastAccess)
	}
}

// TestRemoteAccess: the record of the last access told to the remote
// starts at the version's store time, survives hits and other processes,
// and restarts with each new version.
func TestRemoteAccess(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	if _, ok := c.RemoteAccess("k"); ok {
		t.Fatal("RemoteAccess of a missing key reports a record")
	}
	if err := c.SetRemoteAccess("k", time.Now()); err != nil {
		t.Fatalf("SetRemoteAccess of a missing key: %v", err)
	}
	if _, ok := c.RemoteAccess("k"); ok {
		t.Fatal("SetRemoteAccess of a missing key created a record")
	}
	before := time.Now().Add(-time.Second) // coarse file system clocks
	if _, err := c.Put(ctx, "k", smallSrc(t, "x"), ""); err != nil {
		t.Fatal(err)
	}
	if at, ok := c.RemoteAccess("k"); !ok || at.Before(before) {
		t.Fatalf("RemoteAccess after Put = %v, %v; want the store time (after %v)", at, ok, before)
	}
	past := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := c.SetRemoteAccess("k", past); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Get(ctx, "k"); err != nil || !ok {
		t.Fatalf("Get after SetRemoteAccess: %v, %v", ok, err)
	}
	if at, ok := reopen(t, c, Options{}).RemoteAccess("k"); !ok || !at.Equal(past) {
		t.Fatalf("RemoteAccess in another process = %v, %v; want %v, kept by Get", at, ok, past)
	}
	if _, err := c.Put(ctx, "k", smallSrc(t, "y"), ""); err != nil {
		t.Fatal(err)
	}
	if at, _ := c.RemoteAccess("k"); at.Before(before) {
		t.Fatalf("RemoteAccess after a new version = %v; want its store time", at)
	}
	if err := c.SetRemoteAccess("", past); !errors.Is(err, tiercache.ErrInvalidKey) {
		t.Fatalf("SetRemoteAccess of an invalid key: %v", err)
	}
}

// TestStoredKeyChecked plays a hash collision: the entry found under a
// key's name records another key. It must be a miss, and Invalidate of the
// key must leave the other key's entry alone.
func TestStoredKeyChecked(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", smallSrc(t, "x"), ""); err != nil {
		t.Fatal(err)
	}
	version, err := c.current(nameOf("k"))
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(c.dataDir, version, metaFile)
	m, err := readMeta(mp)
	if err != nil {
		t.Fatal(err)
	}
	m.Key = "other"
	b, _ := json.Marshal(m)
	if err := os.WriteFile(mp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := c.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("Get of a key whose entry records another key = %q %v %v, want a miss", p, ok, err)
	}
	if _, ok := lookup(t, c, "k"); ok {
		t.Fatal("List found an entry recording another key")
	}
	if err := c.Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.current(nameOf("k")); v != version {
		t.Fatal("Invalidate removed an entry recording another key")
	}
}

func TestBrokenEntries(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	if _, err := c.Put(ctx, "bad-meta", smallSrc(t, "x"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "good", smallSrc(t, "y"), ""); err != nil {
		t.Fatal(err)
	}
	version, _ := c.current(nameOf("bad-meta"))
	if err := os.WriteFile(filepath.Join(c.dataDir, version, metaFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A pointer that names something that is not a version of its key.
	if err := writePointer(filepath.Join(c.indexDir, nameOf("evil")), "../../etc", false); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bad-meta", "evil"} {
		if _, ok, err := c.Get(ctx, k); ok || !errors.Is(err, tiercache.ErrIntegrity) {
			t.Fatalf("Get(%q) of a broken entry: %v %v, want ErrIntegrity", k, ok, err)
		}
	}
	entries, err := c.List(ctx)
	if err != nil || len(entries) != 1 || entries[0].Key != "good" {
		t.Fatalf("List = %+v %v; want only the good entry", entries, err)
	}
	n, err := c.Prune(ctx, 0, 0)
	if err != nil || n != 0 {
		t.Fatalf("Prune = %d %v; want 0 (broken pointers are removed uncounted)", n, err)
	}
	for _, k := range []string{"bad-meta", "evil"} {
		if _, ok, err := c.Get(ctx, k); ok || err != nil {
			t.Fatalf("Get(%q) after Prune: %v %v, want a clean miss", k, ok, err)
		}
	}
	if _, ok, _ := c.Get(ctx, "good"); !ok {
		t.Fatal("Prune removed the good entry")
	}
}

// TestReadOnlyTreesEvictedAndSwept stores read-only trees, removes them by
// Invalidate, Prune and replacement, and checks that each stays readable
// within the grace period and is deleted by the sweep after it.
func TestReadOnlyTreesEvictedAndSwept(t *testing.T) {
	// Long enough that a loaded machine finishes the steps below well
	// within it: the first check relies on nothing having expired yet.
	const grace = 3 * time.Second
	c := open(t, Options{Grace: grace})
	ctx := t.Context()
	src := srcDir(t)
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 20})
	var paths []string
	for _, k := range []string{"inv", "pruned", "replaced", "kept"} {
		p, err := c.Put(ctx, k, src, "")
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		time.Sleep(2 * time.Millisecond) // distinct access times
	}
	if _, _, err := c.Get(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "replaced"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, "inv"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Prune(ctx, 2, 0); err != nil || n != 1 {
		t.Fatalf("Prune = %d %v, want 1 (pruned is the least recent)", n, err)
	}
	newest, err := c.Put(ctx, "replaced", smallSrc(t, "new"), "")
	if err != nil {
		t.Fatal(err)
	}
	// Within the grace, the old trees are still where Get put them.
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		treetest.AssertEqual(t, src, p)
	}
	if n := names(t, c.retiredDir); len(n) != 3 {
		t.Fatalf("retired records %q, want 3", n)
	}
	time.Sleep(grace + 50*time.Millisecond)
	if err := c.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	for i, p := range paths[:3] {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("tree %d (%s) still there after the grace: %v", i, p, err)
		}
	}
	treetest.AssertEqual(t, src, paths[3])
	checkTag(t, newest, "new")
	for _, d := range []string{c.retiredDir, c.trashDir, c.stagingDir} {
		if n := names(t, d); len(n) != 0 {
			t.Errorf("%s not empty after the sweep: %q", d, n)
		}
	}
	if n := names(t, c.dataDir); len(n) != 2 {
		t.Errorf("data holds %q, want the 2 current versions", n)
	}
}

// TestStagingOfDeadAndLiveProcesses plants the staging a dead process
// leaves at each point of its life (its lock free; its lock file without
// the directory; the directory without its lock file), and that of a live
// one (its lock held), then opens the cache: the dead ones are cleaned at
// once, however young, and the live one is left alone until its owner
// dies.
func TestStagingOfDeadAndLiveProcesses(t *testing.T) {
	c := open(t, Options{})
	dead := filepath.Join(c.stagingDir, "0123456789abcdef")
	live := filepath.Join(c.stagingDir, "fedcba9876543210")
	noLock := filepath.Join(c.stagingDir, "00000000deadbeef")
	for _, d := range []string{dead, live, noLock} {
		ro := filepath.Join(d, stagingVer, treeDir, "ro")
		if err := os.MkdirAll(ro, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(ro, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	lockOnly := filepath.Join(c.stagingDir, "1111111111111111"+stagingLockExt)
	for _, f := range []string{dead + stagingLockExt, lockOnly} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	held, ok, err := flock.TryLock(live + stagingLockExt)
	if err != nil || !ok {
		t.Fatalf("lock live staging: %v %v", ok, err)
	}
	reopen(t, c, Options{})
	if got := names(t, c.stagingDir); !slices.Equal(got, []string{filepath.Base(live), filepath.Base(live + stagingLockExt)}) {
		t.Fatalf("staging after Open = %q, want only the live one", got)
	}
	if n := names(t, c.trashDir); len(n) != 0 {
		t.Fatalf("trash not emptied: %q", n)
	}
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	reopen(t, c, Options{})
	if got := names(t, c.stagingDir); len(got) != 0 {
		t.Fatalf("staging after its owner died = %q, want none", got)
	}
}

// TestStagingSweptWhileAnotherSweeps plants the staging of a dead process
// while another process holds the sweep lock (as a detached trash deletion
// does when it opens the cache): opening the cache must still clean it,
// so the command after a killed one always does.
func TestStagingSweptWhileAnotherSweeps(t *testing.T) {
	c := open(t, Options{})
	other, ok, err := flock.TryLock(filepath.Join(c.locksDir, sweepLock))
	if err != nil || !ok {
		t.Fatalf("take the sweep lock: %v %v", ok, err)
	}
	defer other.Unlock()
	dead := filepath.Join(c.stagingDir, "0123456789abcdef")
	if err := os.MkdirAll(filepath.Join(dead, stagingVer, treeDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dead+stagingLockExt, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	reopen(t, c, Options{KeepTrash: true})
	if got := names(t, c.stagingDir); len(got) != 0 {
		t.Fatalf("staging after Open while another process sweeps = %q, want none", got)
	}
	if got := names(t, c.trashDir); len(got) != 1 {
		t.Fatalf("trash = %q, want the dead staging", got)
	}
}

// TestOrphanVersions plants versions no pointer names, as a crash between
// publishing a version and swapping the pointer leaves them: the full
// sweep removes the ones older than the grace, and never a current one.
func TestOrphanVersions(t *testing.T) {
	const grace = time.Hour
	c := open(t, Options{Grace: grace})
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", smallSrc(t, "x"), ""); err != nil {
		t.Fatal(err)
	}
	cur, _ := c.current(nameOf("k"))
	old := nameOf("k") + "-00000000000000aa"
	recent := nameOf("k") + "-00000000000000bb"
	for _, v := range []string{old, recent} {
		if err := os.MkdirAll(filepath.Join(c.dataDir, v, treeDir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * grace)
	for _, v := range []string{old, cur} { // the current one is old too
		if err := os.Chtimes(filepath.Join(c.dataDir, v), long, long); err != nil {
			t.Fatal(err)
		}
	}
	// A crashed Put's temporary pointer.
	tmp := filepath.Join(c.indexDir, tmpPrefix+"0000000000000001")
	if err := writePointer(tmp, "../data/"+old, false); err != nil {
		t.Fatal(err)
	}
	if err := setPointerTime(tmp, long); err != nil {
		t.Fatal(err)
	}
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	got := names(t, c.dataDir)
	slices.Sort(got)
	want := []string{cur, recent}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("data after sweep = %q, want %q", got, want)
	}
	if _, err := os.Lstat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary pointer survived: %v", err)
	}
	p, ok, err := c.Get(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("Get after sweep: %v %v", ok, err)
	}
	checkTag(t, p, "x")
}

// TestStaleRetiredRecord plays a crash between recording the version a Put
// replaces and swapping the pointer: the record names the current version,
// and the sweep must drop the record, not the entry.
func TestStaleRetiredRecord(t *testing.T) {
	const grace = 50 * time.Millisecond
	c := open(t, Options{Grace: grace})
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", smallSrc(t, "x"), ""); err != nil {
		t.Fatal(err)
	}
	cur, _ := c.current(nameOf("k"))
	if err := c.retire(cur); err != nil {
		t.Fatal(err)
	}
	time.Sleep(grace + 10*time.Millisecond)
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := names(t, c.retiredDir); len(n) != 0 {
		t.Fatalf("stale record kept: %q", n)
	}
	p, ok, err := c.Get(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	checkTag(t, p, "x")
}

func TestLock(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	unlock, err := c.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	// The holder can put and get the key: Lock is not an internal lock.
	if _, err := c.Put(ctx, "k", smallSrc(t, "x"), ""); err != nil {
		t.Fatalf("Put while holding Lock: %v", err)
	}
	if err := c.Invalidate(ctx, "k"); err != nil {
		t.Fatalf("Invalidate while holding Lock: %v", err)
	}
	// Another holder (goroutine or process) waits; its ctx bounds the wait.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(wctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v, want DeadlineExceeded", err)
	}
	// Another key is independent.
	u2, err := c.Lock(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	u2()
	// The sweep leaves a held lock file alone, even for a key with no
	// entry, and removes a free one.
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := names(t, c.keyLocks); !slices.Equal(n, []string{nameOf("k") + ".lock"}) {
		t.Fatalf("key locks after sweep = %q, want only the held one", n)
	}
	unlock()
	u3, err := c.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	u3()
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := names(t, c.keyLocks); len(n) != 0 {
		t.Fatalf("key locks after sweep = %q, want none", n)
	}
	if _, err := c.Lock(ctx, "bad\nkey"); !errors.Is(err, tiercache.ErrInvalidKey) {
		t.Fatalf("Lock of an invalid key: %v", err)
	}
}

// TestLockPush: a push lock excludes other push locks of its key, not
// the key's Lock (a download must never wait for a push), and the sweep
// removes its file once free.
func TestLockPush(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	unlock, err := c.LockPush(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	waited := false
	wctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := c.LockPush(wctx, "k", func() { waited = true }); !errors.Is(err, context.DeadlineExceeded) || !waited {
		t.Fatalf("second LockPush while held: %v (told of the wait: %v), want DeadlineExceeded", err, waited)
	}
	u, err := c.Lock(ctx, "k")
	if err != nil {
		t.Fatalf("Lock while the push lock is held: %v", err)
	}
	u()
	unlock()
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := names(t, c.keyLocks); len(n) != 0 {
		t.Fatalf("key locks after sweep = %q, want none", n)
	}
}

func TestOpen(t *testing.T) {
	if _, err := Open("", Options{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("Open(\"\"): %v", err)
	}
	if _, err := Open(t.TempDir(), Options{Grace: -time.Second}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("Open with negative grace: %v", err)
	}
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(foreign, Options{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("Open of a foreign directory: %v, want ErrInvalidArgument", err)
	}
	if n := names(t, foreign); !slices.Equal(n, []string{"precious.txt"}) {
		t.Fatalf("refused Open changed the directory: %q", n)
	}
	// A new root (missing or empty) is created, and reopened fine.
	root := filepath.Join(t.TempDir(), "a", "b")
	c, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Grace() != DefaultGrace || !filepath.IsAbs(c.Root()) {
		t.Fatalf("grace %v root %s", c.Grace(), c.Root())
	}
	if _, err := c.Put(t.Context(), "k", smallSrc(t, "x"), ""); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(root, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	p, ok, err := c2.Get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("Get after reopen: %v %v", ok, err)
	}
	checkTag(t, p, "x")
	if b, err := os.ReadFile(filepath.Join(root, cacheDirTag)); err != nil || !strings.HasPrefix(string(b), "Signature: 8a477f597d28d172789f06886806bc55") {
		t.Fatalf("CACHEDIR.TAG: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(root, markerName), []byte("layout 99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, Options{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("Open of an unknown layout: %v", err)
	}
}

func TestFreeBytes(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "cache"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.FreeBytes()
	if err != nil || n <= 0 {
		t.Fatalf("FreeBytes = %d, %v; want a positive size", n, err)
	}
}

func TestEntryAtDescribesThatVersion(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "cache"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fill := func(n int) func(context.Context, string) (tiercache.Shape, error) {
		return func(_ context.Context, dir string) (tiercache.Shape, error) {
			return tiercache.Shape{Size: int64(n), Files: 1}, os.WriteFile(filepath.Join(dir, "f"), make([]byte, n), 0o644)
		}
	}
	p1, err := c.PutFunc(t.Context(), "k", "one", fill(10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunc(t.Context(), "k", "two", fill(20)); err != nil {
		t.Fatal(err)
	}
	// The replaced version is still described as itself, not as the
	// current one.
	e, err := c.EntryAt(p1)
	if err != nil || e.Size != 10 || e.Description != "one" || e.Key != "k" {
		t.Fatalf("EntryAt(replaced) = %+v, %v", e, err)
	}
	for _, bad := range []string{t.TempDir(), filepath.Join(c.Root(), "data"), filepath.Dir(p1)} {
		if _, err := c.EntryAt(bad); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("EntryAt(%s) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// TestPutRefusesOverlappingSource: a source that holds the cache root
// (a home directory holding ~/.cache) would copy the tier into itself
// without end, and one inside it would store the tier's own files: both
// are refused up front, and nothing is stored.
func TestPutRefusesOverlappingSource(t *testing.T) {
	c := open(t, Options{})
	treetest.Small(t, filepath.Join(filepath.Dir(c.Root()), "work"), 5, "w")
	if _, err := c.Put(t.Context(), "a", filepath.Join(filepath.Dir(c.Root()), "work"), ""); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{
		"holds the root":  filepath.Dir(c.Root()),
		"the root itself": c.Root(),
		"inside the root": filepath.Join(c.Root(), "data"),
	} {
		_, err := c.Put(t.Context(), "k", src, "")
		if !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), c.Root()) {
			t.Errorf("%s: %v; want ErrInvalidArgument naming the tier", name, err)
		}
	}
	if _, ok, err := c.Get(t.Context(), "k"); ok || err != nil {
		t.Errorf("Get after refused puts: %v, %v; want a miss", ok, err)
	}
}

// TestGetLostTree: an entry kept as a tree alone whose tree was removed
// from under the tier is never a hit: Get drops it, reporting
// ErrIntegrity, and misses plainly after that.
func TestGetLostTree(t *testing.T) {
	c := open(t, Options{})
	p, err := c.Put(t.Context(), "k", smallSrc(t, "a"), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := fsutil.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(t.Context(), "k"); ok || !errors.Is(err, tiercache.ErrIntegrity) {
		t.Fatalf("Get of a lost tree = %q, %v, %v; want a miss with ErrIntegrity", got, ok, err)
	}
	if got, ok, err := c.Get(t.Context(), "k"); ok || err != nil {
		t.Fatalf("Get once dropped = %q, %v, %v; want a plain miss", got, ok, err)
	}
}

// TestOpenOnAFile: a cache root that is a regular file is refused as an
// invalid argument, saying so.
func TestOpenOnAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f, Options{}); !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), "is a file") {
		t.Fatalf("Open on a file: %v; want ErrInvalidArgument saying it is a file", err)
	}
}

// TestUnreadableMetadataSaysSoOnce: an entry whose meta.json is not
// JSON is an integrity error naming the file, the sentinel said once.
func TestUnreadableMetadataSaysSoOnce(t *testing.T) {
	c := open(t, Options{})
	if _, err := c.Put(t.Context(), "k", smallSrc(t, "a"), ""); err != nil {
		t.Fatal(err)
	}
	meta := metaFileOf(t, c, "k")
	if err := os.WriteFile(meta, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Lookup(t.Context(), "k")
	if !errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), meta) || strings.Count(err.Error(), tiercache.ErrIntegrity.Error()) != 1 {
		t.Errorf("Lookup: %v; want one integrity error naming %s", err, meta)
	}
}

// TestLookupDropsBrokenMetadata: an entry whose meta.json is missing or
// not JSON is reported (ErrIntegrity) and dropped, so the next lookup is
// a plain miss; one in a newer tiercache's format is reported and kept.
func TestLookupDropsBrokenMetadata(t *testing.T) {
	for name, tc := range map[string]struct {
		body []byte // nil: removed
		kept bool
	}{
		"missing":      {nil, false},
		"not JSON":     {[]byte("{"), false},
		"newer format": {[]byte(`{"format": 99, "key": "k"}`), true},
	} {
		t.Run(name, func(t *testing.T) {
			c := open(t, Options{})
			if _, err := c.Put(t.Context(), "k", smallSrc(t, "a"), ""); err != nil {
				t.Fatal(err)
			}
			var err error
			if meta := metaFileOf(t, c, "k"); tc.body == nil {
				err = os.Remove(meta)
			} else {
				err = os.WriteFile(meta, tc.body, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := c.Lookup(t.Context(), "k"); ok || !errors.Is(err, tiercache.ErrIntegrity) {
				t.Fatalf("first Lookup: %v, %v; want ErrIntegrity", ok, err)
			}
			_, ok, err := c.Lookup(t.Context(), "k")
			if gotKept := errors.Is(err, tiercache.ErrIntegrity); ok || gotKept != tc.kept || (!tc.kept && err != nil) {
				t.Fatalf("second Lookup: %v, %v; want kept %v", ok, err, tc.kept)
			}
		})
	}
}

// metaFileOf returns the meta.json of key's one version in c, to damage.
func metaFileOf(t *testing.T, c *Cache, key string) string {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(c.Root(), "data", key+"-*", metaFile))
	if err != nil || len(metas) != 1 {
		t.Fatalf("meta.json of %s: %v, %v", key, metas, err)
	}
	return metas[0]
}
