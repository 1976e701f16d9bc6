package tiered

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote/memstore"
)

// lookupOnly is Pull with LookupOnly into a directory that must stay
// absent, and checks that it does.
func lookupOnly(t *testing.T, c *Cache, key string, prefixes []string, strict bool) (Hit, bool, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "never")
	h, ok, err := c.Pull(t.Context(), key, prefixes, dir, PullOptions{LookupOnly: true, Strict: strict})
	if _, serr := os.Lstat(dir); !errors.Is(serr, fs.ErrNotExist) {
		t.Fatalf("a lookup-only pull of %q made DIR: %v", key, serr)
	}
	return h, ok, err
}

// TestPullLookupOnly: a lookup finds what a pull restores, in the same
// tier and by the same restore-key order, without opening an archive,
// writing to either tier or touching DIR.
func TestPullLookupOnly(t *testing.T) {
	f := &faultyStore{Store: memstore.New()}
	pusher, err := New(newLocal(t), Options{Remote: f, TouchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k-a", "k-b"} {
		if _, err := pusher.Push(t.Context(), k, smallTree(t, k), PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := New(newLocal(t), Options{Remote: f, TouchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	noLocal, err := New(nil, Options{Remote: f})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		c        *Cache
		key      string
		prefixes []string
		wantKey  string
		wantTier tiercache.Tier
	}{
		{"exact, remote", fresh, "k-a", nil, "k-a", tiercache.TierRemote},
		{"restore key, remote", fresh, "k-zzz", []string{"none-", "k-"}, "k-b", tiercache.TierRemote},
		{"exact, local", pusher, "k-a", nil, "k-a", tiercache.TierLocal},
		{"restore key, local", pusher, "k-zzz", []string{"k-"}, "k-b", tiercache.TierLocal},
		{"exact, no local", noLocal, "k-a", nil, "k-a", tiercache.TierRemote},
		{"restore key, no local", noLocal, "k-zzz", []string{"k-"}, "k-b", tiercache.TierRemote},
		{"miss", fresh, "k-zzz", []string{"none-"}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, ok, err := lookupOnly(t, tc.c, tc.key, tc.prefixes, false)
			if err != nil || ok != (tc.wantKey != "") || h.Key != tc.wantKey || h.Tier != tc.wantTier {
				t.Fatalf("lookup = %+v, %v, %v; want %q in the %s tier", h, ok, err, tc.wantKey, tc.wantTier)
			}
			if ok && (h.Path != "" || h.Downloaded != 0 || h.Entry.Key != tc.wantKey || h.Entry.Size <= 0 || h.Entry.Tier != tc.wantTier) {
				t.Fatalf("lookup hit = %+v; want no path, nothing downloaded, the entry's metadata", h)
			}
			if !ok {
				return
			}
			// A real pull of the same restores the same key.
			other, err := New(newLocal(t), Options{Remote: f})
			if err != nil {
				t.Fatal(err)
			}
			if tc.c == pusher {
				other = pusher
			}
			ph, pok, err := other.Pull(t.Context(), tc.key, tc.prefixes, filepath.Join(t.TempDir(), "d"), PullOptions{})
			if err != nil || !pok || ph.Key != h.Key {
				t.Fatalf("a real pull = %+v, %v, %v; the lookup found %q", ph, pok, err, h.Key)
			}
		})
	}
	f.opens.Store(0)
	writes := f.Writes()
	for _, c := range []*Cache{fresh, pusher, noLocal} {
		if _, _, err := lookupOnly(t, c, "k-zzz", []string{"k-"}, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.opens.Load(); n != 0 {
		t.Errorf("lookups opened %d archives, want none", n)
	}
	if n := f.Writes() - writes; n != 0 {
		t.Errorf("lookups sent %d writes to the remote, want none", n)
	}
	if es, err := fresh.local.List(t.Context()); err != nil || len(es) != 0 {
		t.Errorf("lookups stored %v in the local tier (%v), want nothing", es, err)
	}
	// No access recorded locally either (the pusher's real pulls above
	// did record theirs, so compare with a lookup alone).
	mid, err := pusher.local.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lookupOnly(t, pusher, "k-a", nil, false); err != nil {
		t.Fatal(err)
	}
	after, err := pusher.local.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	access := func(es []tiercache.Entry, key string) time.Time {
		for _, e := range es {
			if e.Key == key {
				return e.LastAccess
			}
		}
		t.Fatalf("%q not in %v", key, es)
		return time.Time{}
	}
	if !access(mid, "k-a").Equal(access(after, "k-a")) {
		t.Errorf("a lookup moved the local last access of k-a from %v to %v", access(mid, "k-a"), access(after, "k-a"))
	}
}

// TestPullLookupOnlyRemoteDown: a remote that fails makes a lookup go on
// with the local tier, as a pull does, and fail with Strict.
func TestPullLookupOnlyRemoteDown(t *testing.T) {
	f, c := newFaulty(t)
	if _, err := c.Push(t.Context(), "deps-1", smallTree(t, "a"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	h, ok, err := lookupOnly(t, c, "other", []string{"deps-"}, false)
	if err != nil || !ok || h.Key != "deps-1" || h.Tier != tiercache.TierLocal || !IsRemote(h.RemoteErr) {
		t.Fatalf("lookup with the remote down = %+v, %v, %v; want the local deps-1 with RemoteErr", h, ok, err)
	}
	if _, ok, err := lookupOnly(t, c, "other", []string{"deps-"}, true); ok || !IsRemote(err) {
		t.Fatalf("strict lookup with the remote down = %v, %v; want the remote's failure", ok, err)
	}
	if _, ok, err := lookupOnly(t, c, "other", []string{"none-"}, false); ok || !IsRemote(err) {
		t.Fatalf("lookup of nothing with the remote down = %v, %v; want a miss with the remote's failure", ok, err)
	}
	if n := f.opens.Load(); n != 0 {
		t.Errorf("lookups opened %d archives, want none", n)
	}
}

// TestPushIfAbsent: a key the remote holds is not pushed again (nothing
// written to either tier, whatever the local tier holds); a missing one
// is; without a remote, the local tier decides.
func TestPushIfAbsent(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := smallTree(t, "a")
	ifAbsent := PushOptions{IfAbsent: true}
	res, err := c.Push(t.Context(), "k", src, ifAbsent)
	if err != nil || !res.Uploaded || res.AlreadyIn != "" || res.Path == "" {
		t.Fatalf("first push = %+v, %v; want an upload", res, err)
	}
	e1, _, _ := c.local.Peek(t.Context(), "k")
	writes := store.Writes()
	res, err = c.Push(t.Context(), "k", smallTree(t, "b"), ifAbsent)
	if err != nil || res.AlreadyIn != tiercache.TierRemote || res.Uploaded || res.UploadSkipped || res.Path != "" {
		t.Fatalf("second push = %+v, %v; want nothing done, the key in the remote", res, err)
	}
	if n := store.Writes() - writes; n != 0 {
		t.Errorf("a push of a stored key sent %d writes, want none", n)
	}
	if e2, _, _ := c.local.Peek(t.Context(), "k"); !e2.Created.Equal(e1.Created) || e2.LastAccess != e1.LastAccess {
		t.Errorf("a push of a stored key changed the local entry: %+v, was %+v", e2, e1)
	}

	// Another machine: the remote has it, so nothing is stored locally.
	other := newTiered(t, store, Options{})
	if res, err := other.Push(t.Context(), "k", src, ifAbsent); err != nil || res.AlreadyIn != tiercache.TierRemote {
		t.Fatalf("push on another machine = %+v, %v", res, err)
	}
	if es, _ := other.local.List(t.Context()); len(es) != 0 {
		t.Errorf("local tier after a skipped push: %v", es)
	}
	// The remote decides: a key only the local tier holds is pushed.
	if err := store.Delete(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Push(t.Context(), "k", src, ifAbsent); err != nil || !res.Uploaded {
		t.Fatalf("push of a key the remote lacks = %+v, %v; want an upload", res, err)
	}
	noLocal, err := New(nil, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := noLocal.Push(t.Context(), "k", src, ifAbsent); err != nil || res.AlreadyIn != tiercache.TierRemote {
		t.Fatalf("push with NoLocal = %+v, %v; want nothing done", res, err)
	}
	if res, err := noLocal.Push(t.Context(), "k2", src, ifAbsent); err != nil || !res.Uploaded {
		t.Fatalf("push of a new key with NoLocal = %+v, %v; want an upload", res, err)
	}

	// Local only.
	lo := newTiered(t, nil, Options{})
	if res, err := lo.Push(t.Context(), "k", src, ifAbsent); err != nil || res.AlreadyIn != "" || res.Path == "" {
		t.Fatalf("local-only first push = %+v, %v", res, err)
	}
	if res, err := lo.Push(t.Context(), "k", src, ifAbsent); err != nil || res.AlreadyIn != tiercache.TierLocal || res.Path != "" {
		t.Fatalf("local-only second push = %+v, %v; want nothing done", res, err)
	}
}

// TestPushIfAbsentRemoteDown: a remote that fails the check is a remote
// failure: the local tier answers in its place.
func TestPushIfAbsentRemoteDown(t *testing.T) {
	f, c := newFaulty(t)
	f.down.Store(true)
	src := smallTree(t, "a")
	ifAbsent := PushOptions{IfAbsent: true}
	res, err := c.Push(t.Context(), "k", src, ifAbsent)
	if err != nil || !IsRemote(res.RemoteErr) || res.AlreadyIn != "" || res.Path == "" || res.Uploaded {
		t.Fatalf("push with the remote down = %+v, %v; want a local-only save with RemoteErr", res, err)
	}
	res, err = c.Push(t.Context(), "k", src, ifAbsent)
	if err != nil || !IsRemote(res.RemoteErr) || res.AlreadyIn != tiercache.TierLocal || res.Path != "" {
		t.Fatalf("second push with the remote down = %+v, %v; want nothing done, the key local", res, err)
	}
	noLocal, err := New(nil, Options{Remote: f})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noLocal.Push(t.Context(), "k", src, ifAbsent); !IsRemote(err) {
		t.Fatalf("push with NoLocal and the remote down: %v, want the remote's failure", err)
	}
}

// TestPruneTiersMaxAge: each tier evicts the entries unused for longer
// than its MaxAge, by its own record of use, and TierStats shows the
// oldest use.
func TestPruneTiersMaxAge(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{TouchInterval: -1})
	for _, k := range []string{"old", "used"} {
		if _, err := c.Push(t.Context(), k, smallTree(t, k), PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const age = 400 * time.Millisecond
	time.Sleep(age + 200*time.Millisecond)
	if _, err := c.Push(t.Context(), "new", smallTree(t, "new"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Pull(t.Context(), "used", nil, filepath.Join(t.TempDir(), "d"), PullOptions{}); err != nil || !ok {
		t.Fatalf("pull of used: %v, %v", ok, err)
	}
	c.Wait() // its access record reaches the remote
	ts, err := c.TierStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(ts.Local.OldestAccess); d < age || ts.Remote == nil || time.Since(ts.Remote.OldestAccess) < age {
		t.Fatalf("TierStats = %+v; want an oldest access at least %s ago in each tier", ts, age)
	}
	res, err := c.PruneTiers(t.Context(), policy.Limits{MaxAge: age}, policy.Limits{MaxAge: age})
	if err != nil || res.Local != 1 || res.Remote != 1 {
		t.Fatalf("PruneTiers by age = %+v, %v; want one eviction in each tier", res, err)
	}
	locals, remotes, err := c.ListTiers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, es := range [][]tiercache.Entry{locals, remotes} {
		if len(es) != 2 {
			t.Fatalf("after the prune: %v, want new and used", es)
		}
		for _, e := range es {
			if e.Key == "old" {
				t.Fatalf("old survived the prune in the %s tier", e.Tier)
			}
		}
	}
}
