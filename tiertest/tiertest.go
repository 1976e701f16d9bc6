// Package tiertest is the conformance suite of tiercache.Backend: one
// explicit list of subtests that every tier (local, tiered, the end-to-end
// setups against a real bucket) runs, so they all keep the same contract.
//
// A backend's test calls Run with a Harness that returns a fresh, empty
// backend for each subtest:
//
//	func TestConformance(t *testing.T) {
//		tiertest.Run(t, func(t *testing.T) tiercache.Backend {
//			c, err := local.Open(t.TempDir(), local.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return c
//		})
//	}
//
// The suite checks: misses; put then get with full tree fidelity; replace;
// invalidate; LRU prune order, counts and limit validation; list and stats;
// awkward keys (path syntax, every printable ASCII byte, unicode, 512-byte
// keys, case, escaping collisions) with no cross-talk; invalid keys;
// concurrent puts and gets of one key never showing a torn tree; and
// cancellation leaving nothing behind.
package tiertest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// Harness creates a fresh, empty Backend for one subtest. It registers any
// cleanup with t.
type Harness func(t *testing.T) tiercache.Backend

// Options tunes Run for backends with coarser clocks.
type Options struct {
	// AccessStep is how long the suite waits between operations whose
	// order must show in Created and LastAccess, so it must exceed the
	// backend's time resolution. Zero means 15ms.
	AccessStep time.Duration
}

// Run runs the conformance suite against backends made by newBackend, with
// default Options.
func Run(t *testing.T, newBackend Harness) {
	RunOptions(t, newBackend, Options{})
}

// RunOptions runs the conformance suite against backends made by
// newBackend.
func RunOptions(t *testing.T, newBackend Harness, opts Options) {
	if opts.AccessStep == 0 {
		opts.AccessStep = 15 * time.Millisecond
	}
	s := &suite{newBackend: newBackend, step: opts.AccessStep}
	t.Run("Miss", s.testMiss)
	t.Run("PutGet", s.testPutGet)
	t.Run("PutInvalidSource", s.testPutInvalidSource)
	t.Run("Replace", s.testReplace)
	t.Run("Invalidate", s.testInvalidate)
	t.Run("Prune", s.testPrune)
	t.Run("ListStats", s.testListStats)
	t.Run("WeirdKeys", s.testWeirdKeys)
	t.Run("InvalidKeys", s.testInvalidKeys)
	t.Run("ConcurrentSameKey", s.testConcurrentSameKey)
	t.Run("Cancelled", s.testCancelled)
}

type suite struct {
	newBackend Harness
	step       time.Duration
}

// srcDir returns a new empty directory for a source tree.
func srcDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// small returns a source tree made by treetest.Small with tag.
func small(t *testing.T, tag string) string {
	t.Helper()
	dir := srcDir(t, "small")
	treetest.Small(t, dir, 8, tag)
	return dir
}

// sized returns a source tree holding one file of n bytes.
func sized(t *testing.T, n int) string {
	t.Helper()
	dir := srcDir(t, "sized")
	if err := os.WriteFile(filepath.Join(dir, "data"), make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustPut(t *testing.T, b tiercache.Backend, key, src, desc string) string {
	t.Helper()
	p, err := b.Put(t.Context(), key, src, desc)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return p
}

// mustGet returns the path of a hit, failing t on a miss or error.
func mustGet(t *testing.T, b tiercache.Backend, key string) string {
	t.Helper()
	p, ok, err := b.Get(t.Context(), key)
	if err != nil || !ok {
		t.Fatalf("Get(%q) = %q, %v, %v; want a hit", key, p, ok, err)
	}
	return p
}

func mustMiss(t *testing.T, b tiercache.Backend, key string) {
	t.Helper()
	p, ok, err := b.Get(t.Context(), key)
	if err != nil || ok || p != "" {
		t.Fatalf("Get(%q) = %q, %v, %v; want a miss (\"\", false, nil)", key, p, ok, err)
	}
}

// checkTag asserts that path holds a complete Small tree tagged want.
func checkTag(t *testing.T, path, want string) {
	t.Helper()
	got, err := treetest.CheckSmall(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("tree at %s has tag %q, want %q", path, got, want)
	}
}

// keysOf lists the backend and returns the sorted keys.
func keysOf(t *testing.T, b tiercache.Backend) []string {
	t.Helper()
	entries, err := b.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	slices.Sort(keys)
	return keys
}

func (s *suite) testMiss(t *testing.T) {
	b := s.newBackend(t)
	mustMiss(t, b, "never-stored")
	if keys := keysOf(t, b); len(keys) != 0 {
		t.Fatalf("fresh backend lists %q", keys)
	}
	st, err := b.Stats(t.Context())
	if err != nil || st != (tiercache.Stats{}) {
		t.Fatalf("Stats of a fresh backend = %+v, %v; want zero", st, err)
	}
}

func (s *suite) testPutGet(t *testing.T) {
	b := s.newBackend(t)
	src := srcDir(t, "src")
	ref := srcDir(t, "ref") // Fidelity is deterministic: ref is what src must stay
	opts := treetest.FidelityOptions{SmallFiles: 40}
	treetest.Fidelity(t, src, opts)
	treetest.Fidelity(t, ref, opts)

	put := mustPut(t, b, "fidelity", src, "the fidelity tree")
	if filepath.Clean(put) == filepath.Clean(src) {
		t.Fatalf("Put returned the source directory %s", put)
	}
	treetest.AssertEqual(t, src, put)
	got := mustGet(t, b, "fidelity")
	if filepath.Clean(got) == filepath.Clean(src) {
		t.Fatalf("Get returned the source directory %s", got)
	}
	treetest.AssertEqual(t, src, got)
	treetest.AssertEqual(t, ref, src) // the source is untouched
}

func (s *suite) testPutInvalidSource(t *testing.T) {
	b := s.newBackend(t)
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := b.Put(t.Context(), "k", missing, ""); err == nil {
		t.Fatal("Put of a missing source directory returned nil error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(t.Context(), "k", file, ""); err == nil {
		t.Fatal("Put of a regular file as source returned nil error")
	}
	mustMiss(t, b, "k")
}

func (s *suite) testReplace(t *testing.T) {
	b := s.newBackend(t)
	mustPut(t, b, "k", small(t, "one"), "first")
	checkTag(t, mustGet(t, b, "k"), "one")
	mustPut(t, b, "k", small(t, "two"), "second")
	checkTag(t, mustGet(t, b, "k"), "two")
	entries, err := b.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Key != "k" || entries[0].Description != "second" {
		t.Fatalf("List after replace = %+v; want the one entry \"k\" described \"second\"", entries)
	}
}

func (s *suite) testInvalidate(t *testing.T) {
	b := s.newBackend(t)
	mustPut(t, b, "gone", small(t, "gone"), "")
	mustPut(t, b, "kept", small(t, "kept"), "")
	if err := b.Invalidate(t.Context(), "gone"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	mustMiss(t, b, "gone")
	checkTag(t, mustGet(t, b, "kept"), "kept")
	if err := b.Invalidate(t.Context(), "gone"); err != nil {
		t.Fatalf("second Invalidate: %v, want nil", err)
	}
	if err := b.Invalidate(t.Context(), "never-stored"); err != nil {
		t.Fatalf("Invalidate of a missing key: %v, want nil", err)
	}
	if keys := keysOf(t, b); !slices.Equal(keys, []string{"kept"}) {
		t.Fatalf("List after invalidate = %q, want [kept]", keys)
	}
	// A key can be stored again after invalidation.
	mustPut(t, b, "gone", small(t, "back"), "")
	checkTag(t, mustGet(t, b, "gone"), "back")
}

func (s *suite) testPrune(t *testing.T) {
	b := s.newBackend(t)
	ctx := t.Context()
	// Sizes are distinct so byte limits pick exactly one answer.
	for _, kv := range []struct {
		key  string
		size int
	}{{"a", 100}, {"b", 200}, {"c", 300}, {"d", 400}} {
		mustPut(t, b, kv.key, sized(t, kv.size), "")
		time.Sleep(s.step)
	}
	mustGet(t, b, "a")
	time.Sleep(s.step)
	mustGet(t, b, "c")
	// Least recently accessed first: b, d, a, c.

	for _, bad := range [][2]int64{{-1, 0}, {0, -1}, {-5, -5}} {
		n, err := b.Prune(ctx, int(bad[0]), bad[1])
		if !errors.Is(err, tiercache.ErrInvalidArgument) || n != 0 {
			t.Fatalf("Prune(%d, %d) = %d, %v; want 0, ErrInvalidArgument", bad[0], bad[1], n, err)
		}
	}
	prune := func(maxEntries int, maxBytes int64, wantN int, want ...string) {
		t.Helper()
		n, err := b.Prune(ctx, maxEntries, maxBytes)
		if err != nil {
			t.Fatalf("Prune(%d, %d): %v", maxEntries, maxBytes, err)
		}
		if n != wantN {
			t.Errorf("Prune(%d, %d) evicted %d, want %d", maxEntries, maxBytes, n, wantN)
		}
		if got := keysOf(t, b); !slices.Equal(got, want) {
			t.Fatalf("after Prune(%d, %d) the keys are %q, want %q", maxEntries, maxBytes, got, want)
		}
	}
	prune(0, 0, 0, "a", "b", "c", "d")      // zero is unlimited
	prune(10, 1<<40, 0, "a", "b", "c", "d") // within limits
	prune(3, 0, 1, "a", "c", "d")           // b is the least recent
	// Bytes as the backend counts them: what entries take in it
	// (Stored) where it says, else the trees' Size.
	bytes := map[string]int64{}
	es, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		bytes[e.Key] = cmp.Or(e.Stored, e.Size)
	}
	ac := bytes["a"] + bytes["c"]
	prune(0, ac+bytes["d"]-1, 1, "a", "c") // one byte over: d goes
	prune(0, ac, 0, "a", "c")              // exactly at the limit
	prune(1, 0, 1, "c")                    // a was read before c
	mustMiss(t, b, "b")
	mustMiss(t, b, "d")
	mustMiss(t, b, "a")
	mustGet(t, b, "c")
	prune(0, 1, 1) // c alone is over 1 byte
	mustMiss(t, b, "c")
}

func (s *suite) testListStats(t *testing.T) {
	b := s.newBackend(t)
	before := time.Now()
	// 3 regular files (2+3+4 bytes), 1 directory, 1 symlink: 5 members.
	src := srcDir(t, "src")
	for rel, data := range map[string]string{"x": "ab", "y": "abc", "sub/z": "abcd"} {
		p := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	members := int64(5)
	link := filepath.Join(src, "link")
	if err := os.Symlink("x", link); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); err != nil {
		if !treetest.UnderWine() {
			t.Fatal(err)
		}
		// Wine's CreateSymbolicLink reports success without making one.
		t.Log("the tree has no symlink: Wine cannot create one")
		members--
	}
	mustPut(t, b, "one", src, "first entry")
	time.Sleep(s.step)
	mustPut(t, b, "two", sized(t, 1000), "second entry")
	time.Sleep(s.step)
	mustGet(t, b, "one")
	after := time.Now()

	entries, err := b.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("List returned %d entries, want 2: %+v", len(entries), entries)
	}
	slices.SortFunc(entries, func(x, y tiercache.Entry) int { return strings.Compare(x.Key, y.Key) })
	one, two := entries[0], entries[1]
	if one.Key != "one" || one.Description != "first entry" || one.Size != 9 || one.Files != members {
		t.Errorf("entry one = %+v; want key one, description \"first entry\", size 9, files %d", one, members)
	}
	if two.Key != "two" || two.Description != "second entry" || two.Size != 1000 || two.Files != 1 {
		t.Errorf("entry two = %+v; want key two, description \"second entry\", size 1000, files 1", two)
	}
	// Allow a little clock slack for remote stores.
	slack := 2 * time.Second
	for _, e := range entries {
		if e.Created.Before(before.Add(-slack)) || e.Created.After(after.Add(slack)) {
			t.Errorf("%s: Created %v outside [%v, %v]", e.Key, e.Created, before, after)
		}
		if e.LastAccess.Before(e.Created.Add(-slack)) || e.LastAccess.After(after.Add(slack)) {
			t.Errorf("%s: LastAccess %v not between Created %v and %v", e.Key, e.LastAccess, e.Created, after)
		}
	}
	if !one.Created.Before(two.Created) {
		t.Errorf("Created of one (%v) is not before that of two (%v)", one.Created, two.Created)
	}
	if !one.LastAccess.After(two.LastAccess) {
		t.Errorf("LastAccess of one (%v, read last) is not after that of two (%v)", one.LastAccess, two.LastAccess)
	}
	st, err := b.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tiercache.StatsOf(entries, nil)
	if !statsEqual(st, want) {
		t.Errorf("Stats = %+v, want StatsOf(List) = %+v", st, want)
	}
	if st.Entries != 2 || st.Bytes != 1009 || st.Files != members+1 {
		t.Errorf("Stats = %+v; want 2 entries, 1009 bytes, %d files", st, members+1)
	}
}

func statsEqual(a, b tiercache.Stats) bool {
	return a.Entries == b.Entries && a.Bytes == b.Bytes && a.Files == b.Files &&
		a.Oldest.Equal(b.Oldest) && a.Newest.Equal(b.Newest) && a.OldestAccess.Equal(b.OldestAccess)
}

// WeirdKeys returns keys that stress the mapping of keys onto names: path
// syntax, Windows syntax, escapes, every printable ASCII byte alone and
// inside a key, unicode, the longest key, and sets that collide under
// careless escaping or case folding. Every one is valid.
func WeirdKeys() []string {
	keys := []string{
		"../foo/../bar", "a/b", "/abs", "abs/", ".", "..", "...", ".hidden",
		`a\b`, `C:\x`, `\\server\share`, "a b", " lead", "trail ", "%2F",
		"a%2Fb", "a_b", "a_2fb", "a!b", "a~b", "A", "a", "ABC", "abc", "Abc",
		"日本語", "café", "cafe\u0301", "emoji 🙂", "tab\\t", "key:with:colons",
		"*?<>|", "nul", "CON", "com1.txt", "-rf", "--", "~",
		strings.Repeat("k", tiercache.MaxKeyLen),
		strings.Repeat("é", tiercache.MaxKeyLen/2),
		strings.Repeat("/", tiercache.MaxKeyLen),
		strings.Repeat("K", tiercache.MaxKeyLen-1) + "a",
		strings.Repeat("K", tiercache.MaxKeyLen-1) + "b",
	}
	for c := byte(0x20); c < 0x7f; c++ {
		keys = append(keys, "key"+string(c)+"x")
		if c != 'a' && c != 'A' && c != '.' && c != '~' {
			keys = append(keys, string(c))
		}
	}
	return keys
}

func (s *suite) testWeirdKeys(t *testing.T) {
	b := s.newBackend(t)
	keys := WeirdKeys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Fatalf("WeirdKeys repeats %q", k)
		}
		seen[k] = true
		if err := tiercache.ValidateKey(k); err != nil {
			t.Fatalf("WeirdKeys holds an invalid key: %v", err)
		}
	}
	// Every tree records its own key, so cross-talk shows.
	src := t.TempDir()
	for i, k := range keys {
		dir := filepath.Join(src, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "key"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		mustPut(t, b, k, dir, k)
	}
	for _, k := range keys {
		p := mustGet(t, b, k)
		got, err := os.ReadFile(filepath.Join(p, "key"))
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if string(got) != k {
			t.Fatalf("Get(%q) returned the tree of %q", k, got)
		}
	}
	want := slices.Sorted(func(yield func(string) bool) {
		for _, k := range keys {
			if !yield(k) {
				return
			}
		}
	})
	if got := keysOf(t, b); !slices.Equal(got, want) {
		t.Fatalf("List keys differ from the keys put:\n got %q\nwant %q", got, want)
	}
	// Removing one key leaves its neighbours under naive escaping alone.
	for _, k := range []string{"a/b", "A", "."} {
		if err := b.Invalidate(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		mustMiss(t, b, k)
	}
	for _, k := range []string{"a%2Fb", "a_b", "a", "..", "..."} {
		mustGet(t, b, k)
	}
}

// InvalidKeys returns keys every backend must reject with ErrInvalidKey.
func InvalidKeys() []string {
	return []string{
		"",
		strings.Repeat("k", tiercache.MaxKeyLen+1),
		"nul\x00byte",
		"new\nline",
		"carriage\rreturn",
		"tab\there",
		"del\x7f",
		"bad\xffutf8",
		"line\u2028separator",
	}
}

func (s *suite) testInvalidKeys(t *testing.T) {
	b := s.newBackend(t)
	src := small(t, "x")
	ctx := t.Context()
	for _, k := range InvalidKeys() {
		if _, _, err := b.Get(ctx, k); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want ErrInvalidKey", k, err)
		}
		if _, err := b.Put(ctx, k, src, ""); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", k, err)
		}
		if err := b.Invalidate(ctx, k); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Invalidate(%q): %v, want ErrInvalidKey", k, err)
		}
	}
	if keys := keysOf(t, b); len(keys) != 0 {
		t.Fatalf("invalid keys left entries %q", keys)
	}
}

func (s *suite) testConcurrentSameKey(t *testing.T) {
	b := s.newBackend(t)
	const (
		putters = 3
		getters = 3
		rounds  = 6
	)
	tags := make([]string, putters)
	srcs := make([]string, putters)
	for i := range putters {
		tags[i] = fmt.Sprintf("writer-%d", i)
		srcs[i] = small(t, tags[i])
	}
	ctx := t.Context()
	var (
		wg      sync.WaitGroup
		done    atomic.Bool
		hits    atomic.Int64
		mu      sync.Mutex
		errs    []error
		failure = func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	)
	var putWG sync.WaitGroup
	for i := range putters {
		putWG.Go(func() {
			for range rounds {
				if _, err := b.Put(ctx, "shared", srcs[i], tags[i]); err != nil {
					failure(fmt.Errorf("put: %w", err))
					return
				}
			}
		})
	}
	for range getters {
		wg.Go(func() {
			for !done.Load() {
				p, ok, err := b.Get(ctx, "shared")
				if err != nil {
					failure(fmt.Errorf("get: %w", err))
					return
				}
				if !ok {
					continue // nothing committed yet
				}
				tag, err := treetest.CheckSmall(p)
				if err != nil {
					failure(err)
					return
				}
				if !slices.Contains(tags, tag) {
					failure(fmt.Errorf("get returned a tree tagged %q, which nobody put", tag))
					return
				}
				hits.Add(1)
			}
		})
	}
	putWG.Wait()
	done.Store(true)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	p := mustGet(t, b, "shared")
	tag, err := treetest.CheckSmall(p)
	if err != nil || !slices.Contains(tags, tag) {
		t.Fatalf("final tree: tag %q, %v", tag, err)
	}
	if keys := keysOf(t, b); !slices.Equal(keys, []string{"shared"}) {
		t.Fatalf("List after concurrent puts = %q, want [shared]", keys)
	}
	t.Logf("%d checked hits during the puts", hits.Load())
}

func (s *suite) testCancelled(t *testing.T) {
	b := s.newBackend(t)
	mustPut(t, b, "kept", small(t, "old"), "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Put(ctx, "kept", small(t, "new"), ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := b.Put(ctx, "fresh", small(t, "new"), ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	mustMiss(t, b, "fresh")
	checkTag(t, mustGet(t, b, "kept"), "old")
	if keys := keysOf(t, b); !slices.Equal(keys, []string{"kept"}) {
		t.Fatalf("List after cancelled puts = %q, want [kept]", keys)
	}
}
