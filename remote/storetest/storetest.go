// Package storetest is the conformance suite of remote.Store: one explicit
// list of subtests that every remote store (remote/s3 over a real MinIO
// server, remote/memstore) runs, so that they all keep the contract written
// in package remote, and code tested over the in-memory store can trust it.
//
// A store's test calls Run with a function that returns a fresh, empty,
// writable store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) remote.Store { return memstore.New() })
//	}
//
// The suite checks: misses; round trips of empty to multi-megabyte
// archives with the Meta the store computes; invalid keys and arguments;
// replace; delete, and delete of one version only (DeleteVersion);
// listing by prefix over a table of awkward keys, of Metas (List) and of
// keys with their commit times (Keys, whose newest-first order is the
// commit order, in a scope's view too); concurrent puts of one key with
// readers never seeing a torn version; LRU prune order and
// limits, counting tree bytes; pruning by age; the evictions Prune
// reports (policy.Limits.OnEvict); cancellation leaving no entry;
// digests and indexes claimed by the reader (remote.Digester,
// remote.Indexer); and the store read through remote.ReadOnly, which
// refuses every write.
//
// A store that is a remote.BaseStore runs RunBase too, the suite of
// OpenBase, ReadBase and puts through a remote.Reuser (see Reuser, an
// honest one for tests of its own).
//
// Timestamps are compared only for order, with pauses of 20ms between the
// operations whose order matters, so a store's clock needs millisecond
// resolution. Pruning by age pauses for seconds instead, since a store
// may tell the time it measures ages at to the second only (S3's Date
// header).
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// Harness returns a fresh, empty, writable store for one subtest. It
// registers any cleanup with t.
type Harness func(t *testing.T) remote.Store

// Run runs the conformance suite on stores made by newStore.
func Run(t *testing.T, newStore Harness) {
	if newStore == nil {
		t.Fatal("storetest: Run needs a Harness")
	}
	s := &suite{newStore: newStore}
	t.Run("Missing", s.testMissing)
	t.Run("PutOpen", s.testPutOpen)
	t.Run("InvalidArguments", s.testInvalidArguments)
	t.Run("Digester", s.testDigester)
	t.Run("Indexer", s.testIndexer)
	t.Run("Replace", s.testReplace)
	t.Run("Delete", s.testDelete)
	t.Run("DeleteVersion", s.testDeleteVersion)
	t.Run("ListPrefix", s.testListPrefix)
	t.Run("Keys", s.testKeys)
	t.Run("ConcurrentPutsOneKey", s.testConcurrentPutsOneKey)
	t.Run("PruneLRU", s.testPruneLRU)
	t.Run("PruneMaxAge", s.testPruneMaxAge)
	t.Run("PruneReports", s.testPruneReports)
	t.Run("Cancelled", s.testCancelled)
	t.Run("ReadOnly", s.testReadOnly)
	t.Run("Scopes", s.testScopes)
	t.Run("Signed", s.testSigned)
}

type suite struct {
	newStore Harness
}

// step separates operations whose order the store must record.
const step = 20 * time.Millisecond

// bigSize spans several parts of a store that uploads in 5 MiB parts
// (S3's smallest), so multipart paths are part of the contract too.
const bigSize = 6<<20 + 123

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// onlyReader hides every interface but io.Reader, as a pipe from a
// compressor would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func mustPut(t *testing.T, s remote.Store, m remote.Meta, data []byte) remote.Meta {
	t.Helper()
	got, err := s.Put(t.Context(), m, onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("Put(%q): %v", m.Key, err)
	}
	return got
}

// read opens key and reads its archive to the end.
func read(ctx context.Context, s remote.Store, key string) ([]byte, remote.Meta, error) {
	rc, m, err := s.Open(ctx, key)
	if err != nil {
		return nil, m, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, m, err
	}
	return b, m, rc.Close()
}

func mustRead(t *testing.T, s remote.Store, key string) ([]byte, remote.Meta) {
	t.Helper()
	b, m, err := read(t.Context(), s, key)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b, m
}

func mustMiss(t *testing.T, s remote.Store, key string) {
	t.Helper()
	if rc, _, err := s.Open(t.Context(), key); !errors.Is(err, tiercache.ErrNotFound) {
		if rc != nil {
			_ = rc.Close()
		}
		t.Fatalf("Open(%q): %v, want ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, tiercache.ErrNotFound) {
		t.Fatalf("Stat(%q): %v, want ErrNotFound", key, err)
	}
}

// keysOf lists the keys under prefix, sorted.
func keysOf(t *testing.T, s remote.Store, prefix string) []string {
	t.Helper()
	metas, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	keys := make([]string, 0, len(metas))
	for _, m := range metas {
		keys = append(keys, m.Key)
	}
	slices.Sort(keys)
	return keys
}

func assertKeys(t *testing.T, s remote.Store, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keysOf(t, s, ""); !slices.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
}

// sameMeta reports whether a and b describe the same committed version.
func sameMeta(a, b remote.Meta) bool {
	return a.Key == b.Key && a.Description == b.Description && slices.Equal(a.Paths, b.Paths) && a.Size == b.Size && a.Files == b.Files &&
		a.ArchiveSize == b.ArchiveSize && a.SHA256 == b.SHA256 && a.Index == b.Index && a.Created.Equal(b.Created)
}

func (s *suite) testMissing(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	mustMiss(t, st, "nope")
	if keys := keysOf(t, st, ""); len(keys) != 0 {
		t.Fatalf("List of an empty store = %q", keys)
	}
	// Near misses of a stored key: prefixes, extensions, case.
	mustPut(t, st, remote.Meta{Key: "a/b"}, []byte("x"))
	for _, k := range []string{"a", "a/", "a/bc", "A/b", "a/b/"} {
		mustMiss(t, st, k)
	}
	if err := st.Delete(ctx, "nope"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	// Touch need not check that the entry exists, but must not make one.
	if err := st.Touch(ctx, "nope"); err != nil {
		t.Errorf("Touch of a missing key: %v", err)
	}
	mustMiss(t, st, "nope")
	assertKeys(t, st, "a/b")
}

func (s *suite) testPutOpen(t *testing.T) {
	st := s.newStore(t)
	for i, n := range []int{0, 1, 1000, bigSize} {
		data := randBytes(uint64(i), n)
		in := remote.Meta{Key: fmt.Sprintf("size/%d", n), Description: "tree " + fmt.Sprint(n), Size: int64(3*n + 1), Files: int64(i + 2)}
		if i%2 == 1 {
			// An entry of several paths records them, as given.
			in.Paths = []string{"~/go/pkg/mod", fmt.Sprintf("./out-%d", i), "C:\\Users\\runner\\cache"}
		}
		// Fields the store computes are ignored on input.
		lying := in
		lying.ArchiveSize, lying.SHA256, lying.Created = 1, sha(nil), time.Unix(1, 0)
		got := mustPut(t, st, lying, data)
		if got.Key != in.Key || got.Description != in.Description || !slices.Equal(got.Paths, in.Paths) || got.Size != in.Size || got.Files != in.Files {
			t.Errorf("%s: Put returned %+v, want the caller's key, description, paths, size and files %+v", in.Key, got, in)
		}
		if got.ArchiveSize != int64(n) || got.SHA256 != sha(data) {
			t.Errorf("%s: Put returned archive size %d and SHA-256 %s, want %d and %s", in.Key, got.ArchiveSize, got.SHA256, n, sha(data))
		}
		if got.Created.IsZero() || got.Created.Equal(lying.Created) || got.LastAccess.Before(got.Created) {
			t.Errorf("%s: Put returned created %v, last access %v", in.Key, got.Created, got.LastAccess)
		}
		back, m := mustRead(t, st, in.Key)
		if !bytes.Equal(back, data) {
			t.Errorf("%s: read back %d bytes that differ from the %d put", in.Key, len(back), n)
		}
		if !sameMeta(m, got) {
			t.Errorf("%s: Open meta %+v, want %+v", in.Key, m, got)
		}
		stat, err := st.Stat(t.Context(), in.Key)
		if err != nil || !sameMeta(stat, got) || stat.LastAccess.Before(got.Created) {
			t.Errorf("%s: Stat = %+v, %v; want %+v", in.Key, stat, err, got)
		}
	}
	metas, err := st.List(t.Context(), "size/")
	if err != nil || len(metas) != 4 {
		t.Fatalf("List = %d entries, %v; want 4", len(metas), err)
	}
	for _, m := range metas {
		if stat, err := st.Stat(t.Context(), m.Key); err != nil || !sameMeta(m, stat) {
			t.Errorf("List meta %+v, Stat %+v, %v", m, stat, err)
		}
	}
}

func (s *suite) testInvalidArguments(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for _, k := range invalidStoredKeys() {
		if rc, _, err := st.Open(ctx, k); !errors.Is(err, tiercache.ErrInvalidKey) {
			if rc != nil {
				_ = rc.Close()
			}
			t.Errorf("Open(%q): %v, want ErrInvalidKey", k, err)
		}
		if _, err := st.Stat(ctx, k); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Stat(%q): %v, want ErrInvalidKey", k, err)
		}
		if _, err := st.Put(ctx, remote.Meta{Key: k}, strings.NewReader("x")); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", k, err)
		}
		if err := st.Delete(ctx, k); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want ErrInvalidKey", k, err)
		}
		if _, err := st.DeleteVersion(ctx, k, remote.Meta{}); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("DeleteVersion(%q): %v, want ErrInvalidKey", k, err)
		}
		if err := st.Touch(ctx, k); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Touch(%q): %v, want ErrInvalidKey", k, err)
		}
	}
	for name, m := range map[string]remote.Meta{
		"negative size":  {Key: "k", Size: -1},
		"negative files": {Key: "k", Files: -1},
		"an empty path":  {Key: "k", Paths: []string{"a", ""}},
		"too many paths": {Key: "k", Paths: make([]string, tiercache.MaxPaths+1)},
	} {
		if _, err := st.Put(ctx, m, strings.NewReader("x")); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("Put with %s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := st.Put(ctx, remote.Meta{Key: "k"}, nil); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("Put with a nil reader: %v, want ErrInvalidArgument", err)
	}
	for _, l := range []policy.Limits{{MaxEntries: -1}, {MaxBytes: -1}, {MaxAge: -time.Second}} {
		if _, err := st.Prune(ctx, l); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("Prune(%+v): %v, want ErrInvalidArgument", l, err)
		}
	}
	if keys := keysOf(t, st, ""); len(keys) != 0 {
		t.Fatalf("invalid calls left entries %q", keys)
	}
}

func (s *suite) testReplace(t *testing.T) {
	st := s.newStore(t)
	// A multipart version replaced by a small one, then the other way.
	big, small := randBytes(1, bigSize), []byte("version two")
	for i, v := range [][]byte{big, small, big} {
		desc := fmt.Sprint("version ", i)
		want := mustPut(t, st, remote.Meta{Key: "k", Description: desc, Size: int64(i)}, v)
		back, m := mustRead(t, st, "k")
		if !bytes.Equal(back, v) || !sameMeta(m, want) {
			t.Fatalf("after put %d: read %d bytes (want %d), meta %+v (want %+v)", i, len(back), len(v), m, want)
		}
		metas, err := st.List(t.Context(), "")
		if err != nil || len(metas) != 1 || !sameMeta(metas[0], want) {
			t.Fatalf("List after put %d: %+v, %v; want one entry %+v", i, metas, err, want)
		}
	}
}

func (s *suite) testDelete(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for _, k := range []string{"a", "a/b", "a/bc"} {
		mustPut(t, st, remote.Meta{Key: k}, []byte(k))
	}
	if err := st.Touch(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, st, "a/b")
	assertKeys(t, st, "a", "a/bc")
	for _, k := range []string{"a", "a/bc"} {
		if back, _ := mustRead(t, st, k); string(back) != k {
			t.Errorf("neighbour %q reads %q after a delete", k, back)
		}
	}
	if err := st.Delete(ctx, "a/b"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	// The key is free for a new version, with nothing of the old one.
	want := mustPut(t, st, remote.Meta{Key: "a/b", Description: "again"}, []byte("new"))
	if back, m := mustRead(t, st, "a/b"); string(back) != "new" || !sameMeta(m, want) {
		t.Errorf("put after delete reads %q, %+v", back, m)
	}
}

// awkwardKeys are valid keys that stress a store's mapping of keys onto
// names and its listing by prefix: path syntax, escapes that collide
// under careless encoding, every printable ASCII byte, multi-byte UTF-8
// cut anywhere by a prefix, and the longest keys.
func awkwardKeys() []string {
	keys := []string{
		"a/b", "a%2Fb", "a", "ab", "a/b/c", "../x", "..", ".", "./a", "../foo/../bar", "/abs", "abs/",
		`a\b`, `\\server\share`, "a~b", "a b", " lead", "trail ", "%", "%2F", "A", "B", "b",
		"ключ/日本語", "ключ", "😀", "cafe\u0301", "café", "\ufffe",
		strings.Repeat("a", tiercache.MaxKeyLen), strings.Repeat("a", 250) + "/x",
		strings.Repeat("é", tiercache.MaxKeyLen/2), strings.Repeat("/", tiercache.MaxKeyLen),
	}
	for c := byte(0x20); c < 0x7f; c++ {
		keys = append(keys, "key"+string(c)+"x")
	}
	return keys
}

func (s *suite) testListPrefix(t *testing.T) {
	st := s.newStore(t)
	keys := awkwardKeys()
	for _, k := range keys {
		if err := tiercache.ValidateKey(k); err != nil {
			t.Fatalf("awkward key table: %v", err)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// Each entry records its index and its key, so cross-talk shows.
			if _, err := st.Put(t.Context(), remote.Meta{Key: k, Files: int64(i)}, strings.NewReader(k)); err != nil {
				t.Errorf("Put(%q): %v", k, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, prefix := range []string{
		"", "a", "a/", "a/b", "a%", "%", ".", "..", "./", "/", `\`, "ключ", "ключ/", "é", "\xd0", "\xf0\x9f",
		"cafe", "café", "key", "key%", "key/", strings.Repeat("a", 200), strings.Repeat("é", 100) + "\xc3",
		"zzz", "😀", "\ufffe", "A", "B",
	} {
		metas, err := st.List(t.Context(), prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var got, want []string
		for _, m := range metas {
			got = append(got, m.Key)
			if m.Files != int64(slices.Index(keys, m.Key)) || m.ArchiveSize != int64(len(m.Key)) {
				t.Errorf("List(%q): meta of %q is %+v", prefix, m.Key, m)
			}
		}
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
		if got := keyTimesOf(t, st, prefix); !slices.Equal(got, want) {
			t.Errorf("Keys(%q) = %q, want %q", prefix, got, want)
		}
	}
	for _, k := range keys {
		if back, _, err := read(t.Context(), st, k); err != nil || string(back) != k {
			t.Errorf("Open(%q) = %q, %v", k, back, err)
		}
	}
}

// testConcurrentPutsOneKey: writers of one key leave exactly one complete
// version, and a reader meanwhile gets a complete version that matches
// its Meta, or an error, never a torn or mixed archive.
func (s *suite) testConcurrentPutsOneKey(t *testing.T) {
	st := s.newStore(t)
	versions := map[string][]byte{}
	for i := range 4 {
		d := randBytes(uint64(10+i), bigSize+i)
		versions[sha(d)] = d
	}
	var (
		writers sync.WaitGroup
		readers sync.WaitGroup
		done    atomic.Bool
		reads   atomic.Int64
	)
	for range 2 {
		readers.Go(func() {
			for !done.Load() {
				back, m, err := read(t.Context(), st, "shared")
				if err != nil {
					// The version being read may be replaced and
					// removed under the reader: that is an error,
					// never wrong bytes.
					if !errors.Is(err, tiercache.ErrNotFound) && !errors.Is(err, tiercache.ErrIntegrity) {
						t.Errorf("read during puts: %v", err)
						return
					}
					continue
				}
				reads.Add(1)
				if _, ok := versions[sha(back)]; !ok || sha(back) != m.SHA256 || int64(len(back)) != m.ArchiveSize {
					t.Errorf("read %d bytes during puts that are no version put, or disagree with their Meta", len(back))
					return
				}
			}
		})
	}
	for _, d := range versions {
		writers.Go(func() {
			if _, err := st.Put(t.Context(), remote.Meta{Key: "shared", Size: int64(len(d))}, onlyReader{bytes.NewReader(d)}); err != nil {
				t.Errorf("Put: %v", err)
			}
		})
	}
	writers.Wait()
	done.Store(true)
	readers.Wait()
	t.Logf("%d complete reads during the puts", reads.Load())
	back, m := mustRead(t, st, "shared")
	stat, err := st.Stat(t.Context(), "shared")
	if err != nil {
		t.Fatal(err)
	}
	if want, ok := versions[sha(back)]; !ok || !bytes.Equal(want, back) || m.SHA256 != sha(back) || !sameMeta(m, stat) {
		t.Fatalf("read %d bytes that are none of the versions put, or disagree with Meta", len(back))
	}
	if m.Size != m.ArchiveSize {
		t.Fatalf("Meta of one version with the archive of another: %+v", m)
	}
	assertKeys(t, st, "shared")
}

func (s *suite) testPruneLRU(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	// Tree sizes; the archives are sized the other way round (k1 the
	// largest), so a store counting archive bytes would evict others.
	sizes := map[string]int{"k1": 100, "k2": 200, "k3": 300, "k4": 400}
	for i, k := range []string{"k1", "k2", "k3", "k4"} {
		mustPut(t, st, remote.Meta{Key: k, Size: int64(sizes[k])}, randBytes(uint64(i), 500-sizes[k]))
		time.Sleep(step) // distinct creation times
	}
	// k1 and k2 become the most recently used, k1 last.
	for _, k := range []string{"k2", "k1"} {
		time.Sleep(step)
		if err := st.Touch(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.Prune(ctx, policy.Limits{}); err != nil || n != 0 {
		t.Fatalf("Prune(no limits) = %d, %v; want 0", n, err)
	}
	if n, err := st.Prune(ctx, policy.Limits{MaxEntries: 4, MaxBytes: 1000}); err != nil || n != 0 {
		t.Fatalf("Prune(limits already met) = %d, %v; want 0", n, err)
	}
	assertKeys(t, st, "k1", "k2", "k3", "k4")
	if n, err := st.Prune(ctx, policy.Limits{MaxEntries: 3}); err != nil || n != 1 {
		t.Fatalf("Prune(3 entries) = %d, %v; want 1", n, err)
	}
	assertKeys(t, st, "k1", "k2", "k4")
	mustMiss(t, st, "k3")
	// Tree bytes: k1+k2+k4 = 700; a 350-byte budget keeps the recent k1
	// and k2 (their archives alone, 400+300 bytes, would not fit).
	if n, err := st.Prune(ctx, policy.Limits{MaxBytes: 350}); err != nil || n != 1 {
		t.Fatalf("Prune(350 bytes) = %d, %v; want 1", n, err)
	}
	assertKeys(t, st, "k1", "k2")
	// An entry larger than MaxBytes cannot stay, however recent.
	if n, err := st.Prune(ctx, policy.Limits{MaxEntries: 1, MaxBytes: 50}); err != nil || n != 2 {
		t.Fatalf("Prune(1 entry, 50 bytes) = %d, %v; want 2", n, err)
	}
	assertKeys(t, st)
}

// agePause and maxAge time testPruneMaxAge: an entry left alone for
// agePause is older than maxAge even when the store's "now" is cut to the
// second, and one used just before the prune is younger on a slow
// machine too.
const (
	agePause = 3500 * time.Millisecond
	maxAge   = 2 * time.Second
)

func (s *suite) testPruneMaxAge(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for i, k := range []string{"stale", "touched", "replaced"} {
		mustPut(t, st, remote.Meta{Key: k, Size: 10}, randBytes(uint64(i), 10))
	}
	time.Sleep(agePause)
	// A use, by an access record or a new version, makes an entry young.
	if err := st.Touch(ctx, "touched"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(step) // "touched" is the least recently used of the rest
	mustPut(t, st, remote.Meta{Key: "replaced", Size: 10}, randBytes(9, 10))
	mustPut(t, st, remote.Meta{Key: "new", Size: 10}, randBytes(10, 10))
	if n, err := st.Prune(ctx, policy.Limits{MaxAge: time.Hour}); err != nil || n != 0 {
		t.Fatalf("Prune(1h) = %d, %v; want 0", n, err)
	}
	if n, err := st.Prune(ctx, policy.Limits{MaxAge: maxAge}); err != nil || n != 1 {
		t.Fatalf("Prune(%s) = %d, %v; want 1", maxAge, n, err)
	}
	assertKeys(t, st, "new", "replaced", "touched")
	mustMiss(t, st, "stale")
	// With a count limit too: an entry goes if either limit says so.
	if n, err := st.Prune(ctx, policy.Limits{MaxAge: maxAge, MaxEntries: 2}); err != nil || n != 1 {
		t.Fatalf("Prune(%s, 2 entries) = %d, %v; want 1", maxAge, n, err)
	}
	assertKeys(t, st, "new", "replaced")
}

// cancellingReader yields n bytes, then cancels the Put's context and
// fails with its error, as a compressor stopped by cancellation would.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
	ctx    context.Context
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
		return n, c.ctx.Err()
	}
	return n, err
}

func (s *suite) testCancelled(t *testing.T) {
	st := s.newStore(t)
	old := mustPut(t, st, remote.Meta{Key: "kept", Description: "old"}, []byte("old"))

	done, cancel := context.WithCancel(t.Context())
	cancel()
	for _, k := range []string{"kept", "fresh"} {
		if _, err := st.Put(done, remote.Meta{Key: k}, strings.NewReader("new")); !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) with a cancelled context: %v, want context.Canceled", k, err)
		}
	}
	if rc, _, err := st.Open(done, "kept"); !errors.Is(err, context.Canceled) {
		if rc != nil {
			_ = rc.Close()
		}
		t.Errorf("Open with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := st.Stat(done, "kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := st.List(done, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context: %v, want context.Canceled", err)
	}
	if err := st.Delete(done, "kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a cancelled context: %v, want context.Canceled", err)
	}
	if err := st.Touch(done, "kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Touch with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := st.Prune(done, policy.Limits{MaxEntries: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Prune with a cancelled context: %v, want context.Canceled", err)
	}

	// Cancelled midway, once a multipart store has sent parts.
	for _, k := range []string{"kept", "fresh"} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{r: bytes.NewReader(randBytes(7, bigSize)), cancel: cancel, ctx: ctx}
		if _, err := st.Put(ctx, remote.Meta{Key: k}, r); !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) cancelled midway: %v, want context.Canceled", k, err)
		}
		cancel()
	}
	mustMiss(t, st, "fresh")
	if back, m := mustRead(t, st, "kept"); string(back) != "old" || !sameMeta(m, old) {
		t.Errorf("after cancelled puts, kept reads %q, %+v; want the old version", back, m)
	}
	assertKeys(t, st, "kept")
}

func (s *suite) testReadOnly(t *testing.T) {
	rw := s.newStore(t)
	ctx := t.Context()
	want := mustPut(t, rw, remote.Meta{Key: "k", Description: "d"}, []byte("data"))
	ro := remote.ReadOnly(rw)
	for _, k := range []string{"k", "k2"} {
		if _, err := ro.Put(ctx, remote.Meta{Key: k}, strings.NewReader("x")); !errors.Is(err, tiercache.ErrReadOnly) {
			t.Errorf("read-only Put(%q): %v, want ErrReadOnly", k, err)
		}
	}
	if err := ro.Delete(ctx, "k"); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Errorf("read-only Delete: %v, want ErrReadOnly", err)
	}
	if gone, err := ro.DeleteVersion(ctx, "k", want); gone || !errors.Is(err, tiercache.ErrReadOnly) {
		t.Errorf("read-only DeleteVersion: gone %v, %v; want ErrReadOnly", gone, err)
	}
	if err := ro.Touch(ctx, "k"); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Errorf("read-only Touch: %v, want ErrReadOnly", err)
	}
	for _, l := range []policy.Limits{{}, {MaxEntries: 1}, {MaxBytes: 1}, {MaxAge: time.Hour}} {
		if _, err := ro.Prune(ctx, l); !errors.Is(err, tiercache.ErrReadOnly) {
			t.Errorf("read-only Prune(%+v): %v, want ErrReadOnly", l, err)
		}
	}
	// Reads work, through the view and the store, and see nothing changed.
	for name, st := range map[string]remote.Store{"read-only view": ro, "store": rw} {
		if back, m := mustRead(t, st, "k"); string(back) != "data" || !sameMeta(m, want) {
			t.Errorf("%s: Open reads %q, %+v", name, back, m)
		}
		if m, err := st.Stat(ctx, "k"); err != nil || !sameMeta(m, want) {
			t.Errorf("%s: Stat = %+v, %v", name, m, err)
		}
		mustMiss(t, st, "k2")
		assertKeys(t, st, "k")
	}
}

// digester yields data and claims sum as its SHA-256.
type digester struct {
	io.Reader
	sum string
}

func (d *digester) SHA256() string { return d.sum }

// testDigester: a reader that hashes its bytes itself (remote.Digester)
// has its digest recorded, for a one-part and a multipart upload; one
// that claims no well-formed digest commits nothing.
func (s *suite) testDigester(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for i, n := range []int{100, bigSize} {
		data := randBytes(uint64(40+i), n)
		key := fmt.Sprintf("digest/%d", n)
		got, err := st.Put(ctx, remote.Meta{Key: key}, &digester{Reader: bytes.NewReader(data), sum: sha(data)})
		if err != nil {
			t.Fatalf("%s: Put: %v", key, err)
		}
		if got.SHA256 != sha(data) || got.ArchiveSize != int64(n) {
			t.Errorf("%s: Put recorded %s, %d bytes; want %s, %d", key, got.SHA256, got.ArchiveSize, sha(data), n)
		}
		if back, m := mustRead(t, st, key); !bytes.Equal(back, data) || m.SHA256 != sha(data) {
			t.Errorf("%s: read back %d bytes, digest %s", key, len(back), m.SHA256)
		}
		// The claim is recorded as made, not checked: that is the
		// hashing it saves (a wrong one fails every read's check).
		other := sha([]byte("other"))
		if got, err := st.Put(ctx, remote.Meta{Key: key + "-claimed"}, &digester{Reader: bytes.NewReader(data), sum: other}); err != nil || got.SHA256 != other {
			t.Errorf("%s: Put with another digest recorded %s, %v; want the claim %s", key, got.SHA256, err, other)
		}
		for _, bad := range []string{"", "xyz", strings.ToUpper(sha(data))} {
			bkey := key + "-bad"
			_, err := st.Put(ctx, remote.Meta{Key: bkey}, &digester{Reader: bytes.NewReader(data), sum: bad})
			if !errors.Is(err, tiercache.ErrInvalidArgument) {
				t.Errorf("%s: Put with digest %q: %v, want ErrInvalidArgument", bkey, bad, err)
			}
			mustMiss(t, st, bkey)
		}
	}
}

// indexer yields data and claims index as its index, and sum (if set)
// as its SHA-256.
type indexer struct {
	io.Reader
	index remote.IndexInfo
}

func (x *indexer) Index() remote.IndexInfo { return x.index }

type digestIndexer struct {
	indexer
	sum string
}

func (d *digestIndexer) SHA256() string { return d.sum }

// testIndexer: the index a reader claims at its end (remote.Indexer) is
// recorded and returned by Put, Stat, Open and List, for a one-part and
// a multipart upload, alone or with a claimed digest; one that does not
// end the archive exactly, or is malformed, commits nothing and leaves
// the version before it; an index in Put's Meta argument is ignored.
func (s *suite) testIndexer(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for i, n := range []int{100, bigSize} {
		data := randBytes(uint64(60+i), n)
		tail := int64(40)
		size := int64(n)
		good := remote.IndexInfo{Offset: size - tail, Length: tail, SHA256: sha(data[n-int(tail):])}
		key := fmt.Sprintf("index/%d", n)
		readers := map[string]io.Reader{
			key:             &indexer{Reader: bytes.NewReader(data), index: good},
			key + "-digest": &digestIndexer{indexer: indexer{Reader: bytes.NewReader(data), index: good}, sum: sha(data)},
		}
		for k, r := range readers {
			got, err := st.Put(ctx, remote.Meta{Key: k, Size: 7}, r)
			if err != nil {
				t.Fatalf("%s: Put: %v", k, err)
			}
			if got.Index != good || got.SHA256 != sha(data) || got.ArchiveSize != size {
				t.Errorf("%s: Put recorded index %+v, %s, %d bytes; want %+v", k, got.Index, got.SHA256, got.ArchiveSize, good)
			}
			if m, err := st.Stat(ctx, k); err != nil || m.Index != good || !sameMeta(m, got) {
				t.Errorf("%s: Stat = %+v, %v; want index %+v", k, m, err, good)
			}
			if back, m := mustRead(t, st, k); !bytes.Equal(back, data) || m.Index != good || !sameMeta(m, got) {
				t.Errorf("%s: Open read %d bytes, %+v; want index %+v", k, len(back), m, good)
			}
			ms, err := st.List(ctx, k)
			if err != nil {
				t.Fatalf("%s: List: %v", k, err)
			}
			for _, m := range ms {
				if m.Key == k && (m.Index != good || !sameMeta(m, got)) {
					t.Errorf("%s: List gives %+v; want index %+v", k, m, good)
				}
			}
		}

		// A reader that claims nothing records no index, whatever the
		// Meta argument says.
		plain := key + "-plain"
		if got, err := st.Put(ctx, remote.Meta{Key: plain, Index: good}, onlyReader{bytes.NewReader(data)}); err != nil || got.Index != (remote.IndexInfo{}) {
			t.Errorf("%s: Put = %+v, %v; want no index", plain, got.Index, err)
		}
		if m, err := st.Stat(ctx, plain); err != nil || m.Index != (remote.IndexInfo{}) {
			t.Errorf("%s: Stat = %+v, %v; want no index", plain, m.Index, err)
		}

		before, err := st.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		bkey := key + "-bad"
		for _, bad := range []remote.IndexInfo{
			{Offset: size - tail - 1, Length: tail, SHA256: good.SHA256}, // ends before the archive
			{Offset: size - tail + 1, Length: tail, SHA256: good.SHA256}, // ends after it
			{Offset: size, Length: 0, SHA256: good.SHA256},
			{Offset: -1, Length: size + 1, SHA256: good.SHA256},
			{Offset: 0, Length: size + 1, SHA256: good.SHA256},
			{Offset: size - tail, Length: tail, SHA256: strings.ToUpper(good.SHA256)},
			{Offset: size - tail, Length: tail, SHA256: good.SHA256[1:]},
			{Offset: size - tail, Length: tail},
		} {
			for _, k := range []string{bkey, key} {
				_, err := st.Put(ctx, remote.Meta{Key: k}, &indexer{Reader: bytes.NewReader(data), index: bad})
				if !errors.Is(err, tiercache.ErrInvalidArgument) {
					t.Errorf("%s: Put with index %+v: %v, want ErrInvalidArgument", k, bad, err)
				}
			}
			mustMiss(t, st, bkey)
			if m, err := st.Stat(ctx, key); err != nil || !sameMeta(m, before) {
				t.Errorf("%s: a refused Put left %+v, %v; want the version before it", key, m, err)
			}
		}
	}
}
