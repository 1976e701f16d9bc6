package storetest

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// keyTimesOf returns the keys Keys lists under prefix, sorted, after
// checking each is listed once with a commit time.
func keyTimesOf(t *testing.T, s remote.Store, prefix string) []string {
	t.Helper()
	kts, err := s.Keys(t.Context(), prefix)
	if err != nil {
		t.Fatalf("Keys(%q): %v", prefix, err)
	}
	keys := make([]string, 0, len(kts))
	for _, kt := range kts {
		if kt.Committed.IsZero() {
			t.Errorf("Keys(%q): %q has no commit time", prefix, kt.Key)
		}
		keys = append(keys, kt.Key)
	}
	slices.Sort(keys)
	if len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Errorf("Keys(%q) lists a key twice: %q", prefix, keys)
	}
	return keys
}

// newestFirst returns the keys Keys lists under prefix, newest commit
// first, ties in key order: as a restore key ranks them.
func newestFirst(t *testing.T, s remote.Store, prefix string) []string {
	t.Helper()
	kts, err := s.Keys(t.Context(), prefix)
	if err != nil {
		t.Fatalf("Keys(%q): %v", prefix, err)
	}
	slices.SortFunc(kts, func(a, b remote.KeyTime) int {
		if c := b.Committed.Compare(a.Committed); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	keys := make([]string, 0, len(kts))
	for _, kt := range kts {
		keys = append(keys, kt.Key)
	}
	return keys
}

// testKeys: Keys lists the keys under a prefix, each once, long ones
// (which a store may name by a digest of the key) by their real keys,
// with commit times whose newest-first order is the order of the puts; a
// replaced key is dated by its new version, a deleted one is gone; a
// scope's view lists its own keys only, as plain keys, and the
// read-only view what the store lists.
func (s *suite) testKeys(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	if got := keyTimesOf(t, st, ""); len(got) != 0 {
		t.Fatalf("Keys of an empty store = %q", got)
	}
	// Long keys of escaped characters, sharing far more than the
	// leading bytes a store can keep of a name: longOut is not under
	// the long prefix the others share.
	longPrefix := "a/" + strings.Repeat("/", 300)
	pad := func(k string) string { return k + strings.Repeat("/", tiercache.MaxKeyLen-len(k)) }
	long1, long2 := pad(longPrefix+"x"), pad(longPrefix+"y")
	longOut := pad("a/" + strings.Repeat("/", 250) + "q")
	scoped := tiercache.ScopedKey("pr-1", "a/3")
	puts := []string{"a/1", long1, "b/1", longOut, "a/2", scoped, long2}
	for _, k := range puts {
		mustPut(t, st, remote.Meta{Key: k}, []byte(k))
		time.Sleep(step)
	}
	// show names the long keys in messages.
	names := map[string]string{long1: "long1", long2: "long2", longOut: "longOut", longPrefix: "longPrefix"}
	show := func(keys ...string) []string {
		out := make([]string, 0, len(keys))
		for _, k := range keys {
			out = append(out, cmp.Or(names[k], k))
		}
		return out
	}
	ks := func(keys ...string) []string { return keys }
	for _, c := range []struct {
		prefix string
		want   []string // newest first
	}{
		{"", ks(long2, scoped, "a/2", longOut, "b/1", long1, "a/1")},
		{"a/", ks(long2, "a/2", longOut, long1, "a/1")},
		{longPrefix, ks(long2, long1)},
		{long1, ks(long1)},
		{"b", ks("b/1")},
		{"pr-1\x00", ks(scoped)},
		{"c", ks()},
	} {
		if got := newestFirst(t, st, c.prefix); !slices.Equal(got, c.want) {
			t.Errorf("Keys(%q) newest first = %q, want %q", show(c.prefix), show(got...), show(c.want...))
		}
		if got, sorted := keyTimesOf(t, st, c.prefix), slices.Sorted(slices.Values(c.want)); !slices.Equal(got, sorted) {
			t.Errorf("Keys(%q) = %q, want %q", show(c.prefix), show(got...), show(sorted...))
		}
	}

	// A replaced key is dated by its new version; a deleted one goes.
	mustPut(t, st, remote.Meta{Key: "a/1"}, []byte("again"))
	if err := st.Delete(ctx, "a/2"); err != nil {
		t.Fatal(err)
	}
	if got, want := newestFirst(t, st, "a/"), ks("a/1", long2, longOut, long1); !slices.Equal(got, want) {
		t.Errorf("after replacing a/1 and deleting a/2: Keys newest first = %q, want %q", show(got...), show(want...))
	}

	// A scope's view: its own keys, plain; the default scope's hides
	// the others.
	if got := keyTimesOf(t, inScope(t, st, "pr-1"), ""); !slices.Equal(got, ks("a/3")) {
		t.Errorf("Keys in scope pr-1 = %q, want [a/3]", got)
	}
	if got := keyTimesOf(t, inScope(t, st, "pr-1"), "b"); len(got) != 0 {
		t.Errorf("Keys(b) in scope pr-1 = %q: another scope's entries leaked in", got)
	}
	if got := keyTimesOf(t, inScope(t, st, ""), "pr"); len(got) != 0 {
		t.Errorf("Keys(pr) in the default scope = %q: another scope's entries leaked in", got)
	}
	if got, want := keyTimesOf(t, inScope(t, st, ""), "a/"), keyTimesOf(t, st, "a/"); !slices.Equal(got, want) {
		t.Errorf("Keys(a/) in the default scope = %q, want the store's %q", show(got...), show(want...))
	}
	if _, err := inScope(t, st, "pr-1").Keys(ctx, "a\x00b"); !errors.Is(err, tiercache.ErrInvalidKey) {
		t.Errorf("Keys(%q) in a view: %v, want ErrInvalidKey", "a\x00b", err)
	}
	if got, want := keyTimesOf(t, remote.ReadOnly(st), ""), keyTimesOf(t, st, ""); !slices.Equal(got, want) {
		t.Errorf("Keys through ReadOnly = %q, want the store's %q", show(got...), show(want...))
	}
}
