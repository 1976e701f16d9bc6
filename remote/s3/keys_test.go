package s3

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/tiered"
)

// numbered returns prefix+"00", prefix+"01", ... up to n keys.
func numbered(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return keys
}

// putTrees commits an entry of a one-file tree under each key, in order.
// The last one is committed a pause after the others, so it is the
// newest by any clock with millisecond resolution.
func putTrees(tb testing.TB, s remote.Store, keys []string) {
	tb.Helper()
	src := tb.TempDir()
	for i, key := range keys {
		if err := os.WriteFile(filepath.Join(src, "f"), fmt.Appendf(nil, "tree %d", i), 0o644); err != nil {
			tb.Fatal(err)
		}
		var buf bytes.Buffer
		res, err := archive.Write(bg, &buf, src, archive.WriteOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		if i == len(keys)-1 {
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := s.Put(bg, remote.Meta{Key: key, Size: res.Size, Files: res.Files}, onlyReader{&buf}); err != nil {
			tb.Fatalf("Put(%.40q): %v", key, err)
		}
	}
}

// manifestOf returns the object name of key's manifest, without the
// store's prefix.
func manifestOf(key string) string { return manifestsDir + stemFor(key) + manifestSuffix }

// pullNewest pulls a missing key with restore prefix, on a fresh
// machine over s, and checks it restores want. It returns the manifests
// read meanwhile, sorted.
func pullNewest(t *testing.T, e *env, s remote.Store, prefix, want string) []string {
	t.Helper()
	l, err := local.Open(filepath.Join(t.TempDir(), "cache"), local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tiered.New(l, tiered.Options{Remote: s, TouchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.rec.reset()
	h, ok, err := c.Pull(t.Context(), prefix+"missing", []string{prefix}, filepath.Join(t.TempDir(), "dst"), tiered.PullOptions{})
	if err != nil || !ok || h.Key != want {
		t.Fatalf("Pull: hit %v on %.40q, %v; want a hit on the newest, %.40q", ok, h.Key, err, want)
	}
	return manifestGets(e.rec)
}

// manifestGets returns the object names of the manifests rec saw GET.
func manifestGets(rec *recorder) []string {
	var names []string
	for _, r := range rec.requests(func(r request) bool {
		return r.method == http.MethodGet && strings.Contains(r.path, "/"+manifestsDir)
	}) {
		names = append(names, r.path[strings.Index(r.path, "/"+manifestsDir)+1:])
	}
	slices.Sort(names)
	return names
}

// TestRestoreKeyReadsOneManifest: a pull whose key misses, with a
// restore prefix matching 50 entries, reads the manifests of its own key
// (the miss) and of the entry it restores, the newest, and no other:
// ranking the candidates takes a listing, not a GET per entry.
func TestRestoreKeyReadsOneManifest(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	keys := numbered("gomod-", 50)
	putTrees(t, s, keys)
	newest := keys[len(keys)-1]
	got := pullNewest(t, e, s, "gomod-", newest)
	// Reads of the chosen entry's manifest beyond the first are the
	// hit path's own (Open, a pinned version): not the ranking's.
	want := []string{manifestOf(newest), manifestOf("gomod-missing")}
	if !slices.Equal(slices.Compact(slices.Clone(got)), want) {
		t.Fatalf("the pull read %d manifests (%q), want only %q", len(got), got, want)
	}
	t.Logf("manifest GETs of a restore-key lookup over %d entries: %d", len(keys), len(got))
}

// TestRestoreKeyFallbackStems: the ranking reads the manifests of the
// keys whose object names do not tell them (fallback stems, see
// stemFor), and only those: a long key is a candidate under its real key,
// and wins when it is the newest.
func TestRestoreKeyFallbackStems(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	long := func(c string) string { return "gomod-" + strings.Repeat("/", 505) + c }
	keys := append(numbered("gomod-", 10), long("a"), long("b"))
	putTrees(t, s, keys)
	for _, k := range keys[10:] {
		if !strings.Contains(stemFor(k), fallbackMarker) {
			t.Fatalf("key %.40q… has a full stem; the test needs fallback ones", k)
		}
	}
	got := pullNewest(t, e, s, "gomod-", long("b"))
	want := []string{manifestOf(long("a")), manifestOf(long("b")), manifestOf("gomod-missing")}
	slices.Sort(want)
	if !slices.Equal(slices.Compact(slices.Clone(got)), want) {
		t.Fatalf("the pull read %d manifests (%.60q), want only the miss's and the long keys' %.60q", len(got), got, want)
	}
}
