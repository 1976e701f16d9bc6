package tiered

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote/memstore"
)

// guardHome is a machine whose local tier is at its default place,
// ~/.cache/tiercache, below the ~/.cache that jobs push and pull whole:
// it returns ~/.cache and the tier, which holds an entry "mine".
func guardHome(t *testing.T) (cache string, l *local.Cache) {
	t.Helper()
	cache = filepath.Join(t.TempDir(), ".cache")
	l, err := local.Open(filepath.Join(cache, "tiercache"), local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	own, err := New(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Push(t.Context(), "mine", smallTree(t, "mine"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cache, l
}

// checkTier fails t unless the tier l holds "mine", as pushed, and the
// keys in others alone, and no file named planted.
func checkTier(t *testing.T, l *local.Cache, others ...string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(l.Root(), "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the entry's tiercache/ was written into the live tier: %v", err)
	}
	es, err := l.List(t.Context())
	keys := []string{}
	for _, e := range es {
		keys = append(keys, e.Key)
	}
	want := append([]string{"mine"}, others...)
	slices.Sort(keys)
	slices.Sort(want)
	if err != nil || !slices.Equal(keys, want) {
		t.Errorf("the tier lists %q, %v; want %q", keys, err, want)
	}
	c, err := New(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(t.TempDir(), "d")
	if _, ok, err := c.Pull(t.Context(), "mine", nil, d, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull mine: %v, %v", ok, err)
	}
	if tag, err := treetest.CheckSmall(d); err != nil || tag != "mine" {
		t.Errorf("mine restores %q, %v", tag, err)
	}
}

// TestTierGuardPullNoLocal: a pull straight from the remote (NoLocal)
// into ~/.cache of an entry holding a tiercache/ leaves that member
// out, as a pull through the tier does: the tier still exists on the
// machine, used by other jobs.
func TestTierGuardPullNoLocal(t *testing.T) {
	store := memstore.New()
	theirs := smallTree(t, "theirs")
	if err := os.MkdirAll(filepath.Join(theirs, "tiercache"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(theirs, "tiercache", "planted"), []byte("p"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newTiered(t, store, Options{}).Push(t.Context(), "k", theirs, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	cache, l := guardHome(t)
	// The tier given but not used, and a remote-only Cache told where
	// the machine's tier is.
	for _, c := range []struct {
		l    *local.Cache
		opts Options
	}{{l, Options{Remote: store, NoLocal: true}}, {nil, Options{Remote: store, LocalRoot: l.Root()}}} {
		c, err := New(c.l, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		h, ok, err := c.Pull(t.Context(), "k", nil, cache, PullOptions{})
		if err != nil || !ok {
			t.Fatalf("pull: %v, %v", ok, err)
		}
		if want := []string{filepath.Join(cache, "tiercache")}; !slices.Equal(h.LeftOut, want) {
			t.Errorf("Hit.LeftOut = %q; want %q", h.LeftOut, want)
		}
		if tag, err := os.ReadFile(filepath.Join(cache, treetest.SmallMarker)); err != nil || string(tag) != "theirs" {
			t.Errorf("the rest of the entry: %q, %v", tag, err)
		}
		checkTier(t, l)
		if _, _, err := c.Pull(t.Context(), "k", nil, filepath.Join(l.Root(), "x"), PullOptions{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("pull into the tier: %v; want ErrInvalidArgument", err)
		}
	}
	// A LocalRoot where nothing is guards nothing.
	c, err := New(nil, Options{Remote: store, LocalRoot: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	if h, ok, err := c.Pull(t.Context(), "k", nil, d, PullOptions{}); err != nil || !ok || h.LeftOut != nil {
		t.Fatalf("pull: %v, %v, left out %q", ok, err, h.LeftOut)
	}
	if _, err := os.Stat(filepath.Join(d, "tiercache", "planted")); err != nil {
		t.Errorf("the entry's tiercache/ was left out with no tier there: %v", err)
	}
}

// TestTierGuardPush: a library Push of a tree holding the Cache's local
// tier leaves the tier out (PutResult.LeftOut says so) rather than
// archive it, and its own archive as it grows; a path that is the tier
// or inside it is refused.
func TestTierGuardPush(t *testing.T) {
	cache, l := guardHome(t)
	store := memstore.New()
	for _, opts := range []Options{{}, {Remote: store}, {Remote: store, NoLocal: true}, {Remote: store, LocalRoot: l.Root()}} {
		ll := l
		if opts.LocalRoot != "" {
			ll = nil
		}
		c, err := New(ll, opts)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second replaces the first, its archive in the tier
			res, err := c.Push(t.Context(), "k", cache, PushOptions{})
			if err != nil {
				t.Fatalf("push (remote %v): %v", opts.Remote != nil, err)
			}
			if want := []string{filepath.Join(cache, "tiercache")}; !slices.Equal(res.LeftOut, want) {
				t.Errorf("PutResult.LeftOut = %q; want %q", res.LeftOut, want)
			}
			if res.Entry.Files != 1 {
				t.Errorf("pushed %d files; want 1 (x)", res.Entry.Files)
			}
		}
		for _, p := range []string{l.Root(), filepath.Join(l.Root(), "data")} {
			if _, err := c.Push(t.Context(), "bad", p, PushOptions{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
				t.Errorf("push of %s: %v; want ErrInvalidArgument", p, err)
			}
		}
	}
	d := filepath.Join(t.TempDir(), "d")
	c, _ := New(nil, Options{Remote: store})
	if _, ok, err := c.Pull(t.Context(), "k", nil, d, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull: %v, %v", ok, err)
	}
	if _, err := os.Lstat(filepath.Join(d, "tiercache")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the entry holds the local tier: %v", err)
	}
	checkTier(t, l, "k")

	// Only the tier is left out, even under another name below another
	// path; one that pattern would also leave out fails the push.
	other := filepath.Join(t.TempDir(), "other")
	if err := os.MkdirAll(filepath.Join(other, "tiercache"), 0o755); err != nil {
		t.Fatal(err)
	}
	own, _ := New(l, Options{})
	if _, err := own.PushPaths(t.Context(), "two", []string{cache, other}, PushOptions{}); err == nil || !strings.Contains(err.Error(), filepath.Join(other, "tiercache")) {
		t.Errorf("push of %s and %s: %v; want a failure naming %s", cache, other, err, filepath.Join(other, "tiercache"))
	}
	// An exclude pattern of the caller's that leaves it out already.
	res, err := own.Push(t.Context(), "ex", cache, PushOptions{Exclude: []string{"tier*/"}})
	if err != nil || res.LeftOut != nil || res.Entry.Files != 1 {
		t.Errorf("push with the tier excluded: %d files, left out %q, %v", res.Entry.Files, res.LeftOut, err)
	}
	// Put copies the tree whole, into the tier: refused.
	if _, err := own.Put(t.Context(), "put", cache, ""); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("Put of %s: %v; want ErrInvalidArgument", cache, err)
	}
	checkTier(t, l, "k", "ex")
}
