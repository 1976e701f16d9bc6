package tiered

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// reuseTree writes about 24 MiB of incompressible files into a new
// directory, enough for several frames, and returns it.
func reuseTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	rnd := rand.NewChaCha8([32]byte{1})
	for i := range 120 {
		data := make([]byte, 200<<10)
		_, _ = rnd.Read(data)
		reuseWrite(t, filepath.Join(dir, fmt.Sprintf("d%d", i%6), fmt.Sprintf("f%03d", i)), data)
	}
	return dir
}

func reuseWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// reuseChange overwrites one file of dir with other bytes of its size.
func reuseChange(t *testing.T, dir, name string) {
	t.Helper()
	data := make([]byte, 200<<10)
	_, _ = rand.NewChaCha8([32]byte{byte(len(name)), name[len(name)-1]}).Read(data)
	reuseWrite(t, filepath.Join(dir, name), data)
}

func remoteSum(t *testing.T, store *memstore.Store, key string) string {
	t.Helper()
	m, err := store.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("stat %q: %v", key, err)
	}
	return m.SHA256
}

// TestPushReusesBase: a push with a base repeats the frames of the
// base's archive that did not change, which the store copies, and
// commits byte for byte the archive a full push makes; with or without
// the local tier.
func TestPushReusesBase(t *testing.T) {
	for _, noLocal := range []bool{false, true} {
		t.Run(fmt.Sprintf("noLocal=%v", noLocal), func(t *testing.T) {
			store := memstore.New()
			c := newTiered(t, store, Options{NoLocal: noLocal})
			ctx := t.Context()
			src := reuseTree(t)
			v1, err := c.Push(ctx, "v1", src, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if v1.Base != "" || v1.Copied != 0 {
				t.Fatalf("first push reused %q: %+v", v1.Base, v1)
			}
			reuseChange(t, src, "d3/f045")
			res, err := c.Push(ctx, "v2", src, PushOptions{Base: "v1"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Base != "v1" || res.FramesReused < 2 || res.Copied <= 0 || res.Copied >= res.ArchiveSize || res.BaseNote != "" {
				t.Errorf("push with base v1: %+v; want most frames reused and copied", res)
			}
			// With the local tier, which keeps v1's archive, every frame
			// found in the base is taken from it, not compressed again.
			if want := map[bool]int{false: res.FramesReused, true: 0}[noLocal]; res.FramesKept != want {
				t.Errorf("%d frames kept from the local copy of the base, want %d", res.FramesKept, want)
			}
			full, err := c.Push(ctx, "v2-full", src, PushOptions{NoBase: true})
			if err != nil {
				t.Fatal(err)
			}
			if full.Base != "" || full.Copied != 0 || full.FramesReused != 0 {
				t.Errorf("push with NoBase reused: %+v", full)
			}
			if a, b := remoteSum(t, store, "v2"), remoteSum(t, store, "v2-full"); a != b {
				t.Errorf("the reusing push stored %s, a full push %s", a, b)
			}
			fresh := newTiered(t, store, Options{})
			dst := filepath.Join(t.TempDir(), "dst")
			if _, ok, err := fresh.Pull(ctx, "v2", nil, dst, PullOptions{}); err != nil || !ok {
				t.Fatalf("pull v2: %v %v", ok, err)
			}
			treetest.AssertEqual(t, src, dst)
		})
	}
}

// pushV1 pushes reuseTree as v1 to a new memory store through a new
// cache with a local tier.
func pushV1(t *testing.T) (*memstore.Store, *Cache, string) {
	t.Helper()
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := reuseTree(t)
	if _, err := c.Push(t.Context(), "v1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	return store, c, src
}

// damageLocal flips the bits of mask in the byte at(data, s) of the
// archive the local tier of c keeps for key.
func damageLocal(t *testing.T, c *Cache, key string, at func(data []byte, s local.Stored) int, mask byte) {
	t.Helper()
	s, ok, err := c.local.Lookup(t.Context(), key)
	if err != nil || !ok || s.Archive == "" {
		t.Fatalf("local %s: %+v %v %v", key, s, ok, err)
	}
	data, err := os.ReadFile(s.Archive)
	if err != nil {
		t.Fatal(err)
	}
	data[at(data, s)] ^= mask
	if err := os.Chmod(s.Archive, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Archive, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPushDamagedLocalBase: a byte flipped in the local tier's copy of
// the base costs only that frame's compression: the push still commits
// the archive a full push makes.
func TestPushDamagedLocalBase(t *testing.T) {
	store, c, src := pushV1(t)
	ctx := t.Context()
	damageLocal(t, c, "v1", func(data []byte, _ local.Stored) int { return len(data) / 4 }, 0x40)
	reuseChange(t, src, "d5/f119")
	res, err := c.Push(ctx, "v2", src, PushOptions{Base: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.FramesKept == 0 || res.FramesKept >= res.FramesReused {
		t.Errorf("%d of %d frames kept from a damaged local base, want all but the damaged one", res.FramesKept, res.FramesReused)
	}
	if _, err := c.Push(ctx, "v2-full", src, PushOptions{NoBase: true}); err != nil {
		t.Fatal(err)
	}
	if a, b := remoteSum(t, store, "v2"), remoteSum(t, store, "v2-full"); a != b {
		t.Errorf("the push from a damaged local base stored %s, a full push %s", a, b)
	}
}

// TestPushBaseChoice: without PushOptions.Base a push takes the entry
// last pulled into the same directory on this machine, else the newest
// under BasePrefixes, else the key's own version; Base overrides them.
func TestPushBaseChoice(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	ctx := t.Context()
	src := reuseTree(t)
	for _, k := range []string{"deps-1", "deps-2", "other-1"} {
		reuseChange(t, src, "d0/f000")
		if _, err := c.Push(ctx, k, src, PushOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // distinct creation times
	}
	base := func(c *Cache, key, dir string, opts PushOptions) string {
		t.Helper()
		reuseChange(t, dir, "d1/f001")
		res, err := c.Push(ctx, key, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Base != "" && res.Copied == 0 {
			t.Errorf("push %q took base %q and copied nothing: %+v", key, res.Base, res)
		}
		return res.Base
	}

	m := newTiered(t, store, Options{})
	dir := filepath.Join(t.TempDir(), "work")
	if _, ok, err := m.Pull(ctx, "deps-1", nil, dir, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull: %v %v", ok, err)
	}
	if got := base(m, "new-1", dir, PushOptions{BasePrefixes: []string{"other-"}}); got != "deps-1" {
		t.Errorf("after a pull of deps-1 into the directory: base %q, want deps-1", got)
	}
	if got := base(m, "new-2", dir, PushOptions{Base: "other-1"}); got != "other-1" {
		t.Errorf("with Base other-1: base %q", got)
	}
	fresh := newTiered(t, store, Options{})
	if got := base(fresh, "new-3", src, PushOptions{BasePrefixes: []string{"nope-", "deps-"}}); got != "deps-2" {
		t.Errorf("with BasePrefixes: base %q, want the newest deps-, deps-2", got)
	}
	if got := base(fresh, "new-3", src, PushOptions{}); got != "new-3" {
		t.Errorf("a new version of new-3: base %q, want new-3's own", got)
	}
	if got := base(fresh, "new-4", src, PushOptions{}); got != "" {
		t.Errorf("a new key with nothing to go by: base %q", got)
	}
	if got := base(m, "new-5", dir, PushOptions{NoBase: true}); got != "" {
		t.Errorf("with NoBase: base %q", got)
	}
	// A Base that is not stored is the only one tried, and the note says
	// why none was used.
	reuseChange(t, dir, "d1/f001")
	res, err := m.Push(ctx, "new-6", dir, PushOptions{Base: "no-such-key", BasePrefixes: []string{"deps-"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != "" || !strings.Contains(res.BaseNote, "no-such-key") || !strings.Contains(res.BaseNote, "not stored") {
		t.Errorf("with a missing Base: base %q, note %q; want none, and a note naming it", res.Base, res.BaseNote)
	}
}

// TestPushBaseLyingIndex: a base whose manifest's index does not read
// back from its archive is not used; the push uploads everything and
// says why.
func TestPushBaseLyingIndex(t *testing.T) {
	store, c, src := pushV1(t)
	ctx := t.Context()
	store.CorruptMeta("v1", func(m remote.Meta) remote.Meta { m.Index.SHA256 = strings.Repeat("ab", 32); return m })
	reuseChange(t, src, "d2/f002")
	res, err := c.Push(ctx, "v2", src, PushOptions{Base: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != "" || res.Copied != 0 || !strings.Contains(res.BaseNote, `base "v1": its index does not match`) {
		t.Errorf("push with a lying base: %+v; want no base, and why", res)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if _, ok, err := newTiered(t, store, Options{}).Pull(ctx, "v2", nil, dst, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull v2: %v %v", ok, err)
	}
	treetest.AssertEqual(t, src, dst)
}

// noCopyStore is a remote store that cannot copy ranges: it hides
// memstore's BaseStore methods.
type noCopyStore struct{ remote.Store }

// TestPushLocalBaseWithoutCopies: with a remote that cannot copy, a push
// with a base the local tier keeps still takes its unchanged frames from
// the local copy instead of compressing them, uploads every byte, and
// stores the archive a full push makes.
func TestPushLocalBaseWithoutCopies(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, nil, Options{Remote: noCopyStore{store}})
	ctx := t.Context()
	src := reuseTree(t)
	if _, err := c.Push(ctx, "v1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	reuseChange(t, src, "d2/f020")
	res, err := c.Push(ctx, "v2", src, PushOptions{Base: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != "v1" || res.FramesKept < 2 || res.FramesReused != 0 || res.Copied != 0 || res.BaseNote == "" {
		t.Errorf("push with base v1 to a store that cannot copy: %+v; want frames kept, none reused or copied, a note", res)
	}
	if _, err := c.Push(ctx, "v2-full", src, PushOptions{NoBase: true}); err != nil {
		t.Fatal(err)
	}
	if a, b := remoteSum(t, store, "v2"), remoteSum(t, store, "v2-full"); a != b {
		t.Errorf("the push from the local base stored %s, a full push %s", a, b)
	}
	// A base the local tier does not keep: nothing to spare.
	res, err = c.Push(ctx, "v3", src, PushOptions{Base: "absent"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Base != "" || res.FramesKept != 0 {
		t.Errorf("push with an absent base: %+v", res)
	}
}
