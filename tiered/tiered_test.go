package tiered

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
	"github.com/tiercache/tiercache/tiertest"
)

func newLocal(t *testing.T) *local.Cache {
	t.Helper()
	l, err := local.Open(filepath.Join(t.TempDir(), "cache"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newTiered(t *testing.T, store *memstore.Store, opts Options) *Cache {
	t.Helper()
	if store != nil {
		opts.Remote = store
	}
	c, err := New(newLocal(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func smallTree(t *testing.T, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src-"+tag)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Small(t, dir, 20, tag)
	return dir
}

// fidelityTree writes the shared fidelity tree with smallFiles small files
// into a new directory and returns it.
func fidelityTree(t *testing.T, smallFiles int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: smallFiles})
	return src
}

func TestConformanceLocalOnly(t *testing.T) {
	tiertest.Run(t, func(t *testing.T) tiercache.Backend { return newTiered(t, nil, Options{}) })
}

func TestConformanceOverMemRemote(t *testing.T) {
	// Every local hit recorded remotely: the suite checks LRU order by
	// hits a few milliseconds apart.
	tiertest.Run(t, func(t *testing.T) tiercache.Backend { return newTiered(t, memstore.New(), Options{TouchInterval: -1}) })
}

// dropLocal returns a fresh Cache over a new, empty local tier sharing
// c's remote, as a new CI machine would see it.
func dropLocal(t *testing.T, c *Cache) *Cache {
	t.Helper()
	n, err := New(newLocal(t), c.opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHydrateAfterDroppingLocal(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := fidelityTree(t, 200)
	res, err := c.PutResult(t.Context(), "fid", src, "fidelity")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded || res.ArchiveSize == 0 {
		t.Fatalf("put result %+v: want an upload", res)
	}
	fresh := dropLocal(t, c)
	h, ok, err := fresh.Restore(t.Context(), "fid", nil)
	if err != nil || !ok {
		t.Fatalf("restore: ok=%v err=%v", ok, err)
	}
	if h.Tier != tiercache.TierRemote || h.Downloaded != res.ArchiveSize || h.Key != "fid" {
		t.Fatalf("hit %+v: want a remote hit of %d bytes", h, res.ArchiveSize)
	}
	treetest.AssertEqual(t, src, h.Path)
	h2, ok, err := fresh.Restore(t.Context(), "fid", nil)
	if err != nil || !ok || h2.Tier != tiercache.TierLocal || h2.Downloaded != 0 {
		t.Fatalf("second restore: %+v ok=%v err=%v, want a local hit", h2, ok, err)
	}
}

func TestOneHydrationForManyGoroutines(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.Put(t.Context(), "k", smallTree(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	opens := store.Opens()
	store.SetOpenDelay(50 * time.Millisecond)
	fresh := dropLocal(t, c)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			p, ok, err := fresh.Get(t.Context(), "k")
			if err == nil && !ok {
				err = errors.New("miss")
			}
			if err == nil {
				var tag string
				tag, err = treetest.CheckSmall(p)
				if err == nil && tag != "v1" {
					err = errors.New("wrong tag " + tag)
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := store.Opens() - opens; n != 1 {
		t.Fatalf("%d remote opens, want 1", n)
	}
}

func TestWaiterCancellationDoesNotFailOthers(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.Put(t.Context(), "k", smallTree(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	store.SetOpenDelay(200 * time.Millisecond)
	fresh := dropLocal(t, c)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, _, err := fresh.Get(ctx, "k")
		first <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the first caller start the flight
	second := make(chan error, 1)
	go func() {
		_, ok, err := fresh.Get(t.Context(), "k")
		if err == nil && !ok {
			err = errors.New("miss")
		}
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("other caller failed: %v", err)
	}
}

func TestIntegrityFailureLeavesNoEntry(t *testing.T) {
	cases := map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-7] },
		"garbage":      func(b []byte) []byte { return []byte("this is not an archive at all") },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			store := memstore.New()
			c := newTiered(t, store, Options{})
			if _, err := c.Put(t.Context(), "k", smallTree(t, "v1"), ""); err != nil {
				t.Fatal(err)
			}
			store.Corrupt("k", f)
			fresh := dropLocal(t, c)
			_, ok, err := fresh.Get(t.Context(), "k")
			if ok || err == nil {
				t.Fatalf("corrupt archive accepted: ok=%v err=%v", ok, err)
			}
			if !errors.Is(err, tiercache.ErrIntegrity) || !IsRemote(err) {
				t.Fatalf("err = %v, want ErrIntegrity from the remote", err)
			}
			// Neither names the local tier's put, which a pull's reader
			// would take for a push.
			if strings.Contains(err.Error(), `put "k"`) {
				t.Errorf("Get's error names a put: %v", err)
			}
			// The refused entry is gone from the remote: store and break
			// it again for a pull into a directory.
			if _, err := c.Put(t.Context(), "k", smallTree(t, "v2"), ""); err != nil {
				t.Fatal(err)
			}
			store.Corrupt("k", f)
			fresh = dropLocal(t, c)
			h, ok, err := fresh.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
			if ok || err != nil || len(h.Refused) != 1 || !errors.Is(h.Refused[0], tiercache.ErrIntegrity) {
				t.Fatalf("Pull: ok=%v err=%v refused=%v, want a miss refusing the entry", ok, err, h.Refused)
			}
			if strings.Contains(h.Refused[0].Error(), `put "k"`) {
				t.Errorf("Pull's error names a put: %v", h.Refused[0])
			}
			es, err := fresh.Local().List(t.Context())
			if err != nil || len(es) != 0 {
				t.Fatalf("local entries after failed hydration: %v %v", es, err)
			}
		})
	}
}

func TestLyingManifest(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.Put(t.Context(), "k", smallTree(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	store.CorruptMeta("k", func(m remote.Meta) remote.Meta { m.Size++; return m })
	_, ok, err := dropLocal(t, c).Get(t.Context(), "k")
	if ok || !errors.Is(err, tiercache.ErrIntegrity) {
		t.Fatalf("lying size accepted: ok=%v err=%v", ok, err)
	}
}

func TestReadOnly(t *testing.T) {
	store := memstore.New()
	rw := newTiered(t, store, Options{})
	if _, err := rw.Put(t.Context(), "k", smallTree(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	ro := dropLocal(t, rw)
	ro.opts.ReadOnly = true
	writes := store.Writes()
	if _, ok, err := ro.Get(t.Context(), "k"); err != nil || !ok {
		t.Fatalf("read-only get: ok=%v err=%v", ok, err)
	}
	if _, ok, err := ro.Get(t.Context(), "k"); err != nil || !ok {
		t.Fatalf("read-only local hit: ok=%v err=%v", ok, err)
	}
	if _, err := ro.Put(t.Context(), "k2", smallTree(t, "v2"), ""); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("put: %v", err)
	}
	if err := ro.Invalidate(t.Context(), "k"); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("invalidate: %v", err)
	}
	if _, err := ro.PruneTiers(t.Context(), policy.Limits{MaxEntries: 1}, policy.Limits{MaxEntries: 1}); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("prune: %v", err)
	}
	if n := store.Writes() - writes; n != 0 {
		t.Fatalf("%d write calls reached the remote in read-only mode", n)
	}
}

func TestUploadSkippedWhenIdentical(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := smallTree(t, "v1")
	if _, err := c.Put(t.Context(), "k", src, ""); err != nil {
		t.Fatal(err)
	}
	before, _ := store.Stat(t.Context(), "k")
	time.Sleep(10 * time.Millisecond) // so a new access time differs
	res, err := dropLocal(t, c).PutResult(t.Context(), "k", src, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded || !res.UploadSkipped {
		t.Fatalf("identical tree re-uploaded: %+v", res)
	}
	// The push still records a use of the key, for remote pruning.
	if after, _ := store.Stat(t.Context(), "k"); !after.LastAccess.After(before.LastAccess) {
		t.Fatalf("skipped upload left the remote access time at %v", after.LastAccess)
	}
	res, err = c.PutResult(t.Context(), "k", smallTree(t, "v2"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded {
		t.Fatalf("changed tree not uploaded: %+v", res)
	}
}

func TestRestoreKeys(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	put := func(c *Cache, key, tag string) {
		t.Helper()
		if _, err := c.Put(t.Context(), key, smallTree(t, tag), ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // distinct creation times
	}
	put(c, "gomod-old", "old")
	put(c, "gomod-new", "new")
	// Only the remote has the newest one: the other machine pushed it.
	other := dropLocal(t, c)
	put(other, "gomod-newest", "newest")
	put(c, "npm-1", "npm")

	check := func(key string, prefixes []string, wantKey string, wantTier tiercache.Tier) {
		t.Helper()
		h, ok, err := c.Restore(t.Context(), key, prefixes)
		if err != nil {
			t.Fatal(err)
		}
		if wantKey == "" {
			if ok {
				t.Fatalf("Restore(%q, %q) = %+v, want a miss", key, prefixes, h)
			}
			return
		}
		if !ok || h.Key != wantKey || h.Tier != wantTier {
			t.Fatalf("Restore(%q, %q) = %+v ok=%v, want %s from %s", key, prefixes, h, ok, wantKey, wantTier)
		}
		tag, err := treetest.CheckSmall(h.Path)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"gomod-old": "old", "gomod-new": "new", "gomod-newest": "newest", "npm-1": "npm"}[wantKey]; tag != want {
			t.Fatalf("tree tag %q, want %q", tag, want)
		}
	}
	check("gomod-old", []string{"npm-"}, "gomod-old", tiercache.TierLocal)
	check("gomod-zzz", []string{"nothing-", "gomod-"}, "gomod-newest", tiercache.TierRemote)
	check("gomod-zzz", []string{"npm-", "gomod-"}, "npm-1", tiercache.TierLocal)
	check("cargo-1", []string{"cargo-"}, "", "")
	// A restore key that is itself a key takes that entry before its
	// newer partial matches, as actions/cache does.
	check("gomod-zzz", []string{"gomod-new"}, "gomod-new", tiercache.TierLocal)
	if _, _, err := c.Restore(t.Context(), "k", []string{""}); !errors.Is(err, tiercache.ErrInvalidKey) {
		t.Fatalf("empty restore prefix: %v", err)
	}
}

func TestPerTierPruneAndStats(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	for _, k := range []string{"a", "b", "c"} {
		if _, err := c.Put(t.Context(), k, smallTree(t, k), ""); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.PruneTiers(t.Context(), policy.Limits{MaxEntries: 1}, policy.Limits{MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Local != 2 || res.Remote != 1 {
		t.Fatalf("prune result %+v, want 2 local and 1 remote evictions", res)
	}
	ts, err := c.TierStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ts.Local.Entries != 1 || ts.Remote == nil || ts.Remote.Entries != 2 {
		t.Fatalf("tier stats %+v", ts)
	}
	locals, remotes, err := c.ListTiers(t.Context())
	if err != nil || len(locals) != 1 || len(remotes) != 2 || locals[0].Tier != tiercache.TierLocal || remotes[0].Tier != tiercache.TierRemote {
		t.Fatalf("ListTiers: %v %v %v", locals, remotes, err)
	}
}

// A manifest recording a small tree over an archive that holds a big one
// (a decompression bomb) stops at the recorded size, not at the default
// extraction limits.
func TestBombStopsAtRecordedSize(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	big := filepath.Join(t.TempDir(), "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(big, "zeros"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(t.Context(), "k", big, ""); err != nil {
		t.Fatal(err)
	}
	store.CorruptMeta("k", func(m remote.Meta) remote.Meta { m.Size = 1000; return m })
	_, ok, err := dropLocal(t, c).Get(t.Context(), "k")
	if ok || !errors.Is(err, tiercache.ErrLimitExceeded) {
		t.Fatalf("bomb: ok=%v err=%v, want ErrLimitExceeded", ok, err)
	}
}

func TestTreeLargerThanFreeSpace(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.Put(t.Context(), "k", smallTree(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	store.CorruptMeta("k", func(m remote.Meta) remote.Meta { m.Size = 1 << 62; return m })
	_, ok, err := dropLocal(t, c).Get(t.Context(), "k")
	if ok || !errors.Is(err, tiercache.ErrLimitExceeded) || !strings.Contains(err.Error(), "free") {
		t.Fatalf("huge tree: ok=%v err=%v, want a free-space ErrLimitExceeded", ok, err)
	}
	// Nothing was written: the entry is skipped as a miss would be.
	if !IsRemote(err) {
		t.Errorf("a tree too large for the local tier is not skipped like a refused entry: %v", err)
	}
}

// TestPutTreeChangingDuringPush: the local copy and the upload read the
// source at the same time, so a source that changes under a push must fail
// it on both sides rather than leave two different snapshots.
func TestPutTreeChangingDuringPush(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seeded bool // the remote already holds a tree of the new shape
	}{{"new key", false}, {"replacing", true}} {
		t.Run(tc.name, func(t *testing.T) {
			store := memstore.New()
			c := newTiered(t, store, Options{})
			src := smallTree(t, "v1")
			if tc.seeded {
				if _, err := c.Put(t.Context(), "k", src, ""); err != nil {
					t.Fatal(err)
				}
				if err := c.Local().Invalidate(t.Context(), "k"); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := store.Stat(t.Context(), "k")
			testHookMeasured = func() {
				if err := os.WriteFile(filepath.Join(src, "late.txt"), []byte("written during the push"), 0o644); err != nil {
					t.Error(err)
				}
			}
			t.Cleanup(func() { testHookMeasured = nil })
			_, err := c.PutResult(t.Context(), "k", src, "")
			if err == nil || !strings.Contains(err.Error(), "changed while it was being stored") {
				t.Fatalf("push of a changing tree: err = %v, want a 'changed' error", err)
			}
			if _, ok, err := c.Local().Get(t.Context(), "k"); err != nil || ok {
				t.Errorf("local tier holds the key after the failed push (ok=%v, err=%v)", ok, err)
			}
			after, _ := store.Stat(t.Context(), "k")
			if !reflect.DeepEqual(after, before) {
				t.Errorf("remote entry changed by the failed push: %+v, was %+v", after, before)
			}
		})
	}
}

// TestPutStoresSameTreeInBothTiers: the tree committed locally and the one
// uploaded are the same, bytes and metadata.
func TestPutStoresSameTreeInBothTiers(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := fidelityTree(t, 200)
	res, err := c.PutResult(t.Context(), "k", src, "d")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded {
		t.Fatalf("not uploaded: %+v", res)
	}
	treetest.AssertEqual(t, src, res.Path)
	m, err := store.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != res.Entry.Size || m.Files != res.Entry.Files || m.ArchiveSize != res.ArchiveSize {
		t.Errorf("remote %+v and local %+v describe different trees", m, res)
	}
	h, ok, err := dropLocal(t, c).get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("hydrate: ok=%v err=%v", ok, err)
	}
	treetest.AssertEqual(t, src, h.Path)
}

// TestPushLeavesOutSockets: a socket in the pushed tree (a daemon's, in a
// cache directory) is left out by the measure, the local copy and the
// archive alike, so the push succeeds and both tiers hold the tree
// without it, with the same counts.
func TestPushLeavesOutSockets(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := smallTree(t, "sock")
	ln, err := net.Listen("unix", filepath.Join(src, "agent.sock"))
	if err != nil && treetest.UnderWine() {
		t.Skipf("Wine has no Unix domain sockets, which this test needs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	keys := []string{"both-tiers", "remote-only"}
	local0, err := c.PutResult(t.Context(), keys[0], src, "")
	if err != nil {
		t.Fatalf("push of a tree holding a socket: %v", err)
	}
	if _, err := c.pushRemote(t.Context(), keys[1], dirSource(src), PushOptions{}, false); err != nil {
		t.Fatalf("push --no-local of a tree holding a socket: %v", err)
	}
	// The reference: src without its socket, and with the mtime its
	// root had when pushed.
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_ = os.Remove(filepath.Join(src, "agent.sock"))
	if err := os.Chtimes(src, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	want, err := local.Measure(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	treetest.AssertEqual(t, src, local0.Path)
	for _, key := range keys {
		m, err := store.Stat(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if m.Size != want.Size || m.Files != want.Files {
			t.Errorf("%s: remote records %d bytes in %d entries, want %s (the tree without its socket)", key, m.Size, m.Files, want)
		}
		h, ok, err := dropLocal(t, c).get(t.Context(), key)
		if err != nil || !ok {
			t.Fatalf("%s: hydrate: ok=%v err=%v", key, ok, err)
		}
		treetest.AssertEqual(t, src, h.Path)
	}
}

// TestGetDamagedLocalCopy: Get of a key whose local archive is damaged
// drops it and fetches the remote copy; with no remote copy, it is the
// miss with an error wrapping ErrIntegrity that tiercache.Backend
// promises, and a plain miss after that.
func TestGetDamagedLocalCopy(t *testing.T) {
	mid := func(data []byte, _ local.Stored) int { return len(data) / 2 }
	store := memstore.New()
	c := newTiered(t, store, Options{})
	push(t, c, "k", "v1")
	damageLocal(t, c, "k", mid, 0x40)
	p, ok, err := c.Get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("Get with a remote copy: %v, %v; want a hit", ok, err)
	}
	if tag, err := treetest.CheckSmall(p); err != nil || tag != "v1" {
		t.Fatalf("Get with a remote copy gave %q, %v", tag, err)
	}

	alone := newTiered(t, nil, Options{})
	push(t, alone, "k", "v1")
	damageLocal(t, alone, "k", mid, 0x40)
	if _, ok, err := alone.Get(t.Context(), "k"); ok || !errors.Is(err, tiercache.ErrIntegrity) {
		t.Fatalf("Get with no remote: %v, %v; want a miss with ErrIntegrity", ok, err)
	}
	if _, ok, err := alone.Get(t.Context(), "k"); ok || err != nil {
		t.Fatalf("Get after the drop: %v, %v; want a plain miss", ok, err)
	}
}

// TestPullLostLocalTree: a local entry kept as a tree alone whose tree
// was removed is dropped, and Pull fetches the key from the remote
// (Hit.Dropped saying why) instead of failing on every pull.
func TestPullLostLocalTree(t *testing.T) {
	store := memstore.New()
	push(t, newTiered(t, store, Options{}), "k", "v1")
	l := newLocal(t)
	p, err := l.Put(t.Context(), "k", smallTree(t, "old"), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := fsutil.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	c, err := New(l, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	h, tag, ok := pullTag(t, c, "k", nil, PullOptions{})
	if !ok || tag != "v1" || h.Tier != tiercache.TierRemote || !errors.Is(h.Dropped, tiercache.ErrIntegrity) {
		t.Fatalf("pull: %v, %q from %q, dropped %v; want the remote copy, the lost one dropped", ok, tag, h.Tier, h.Dropped)
	}
}
