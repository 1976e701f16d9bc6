package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

var bg = context.Background()

func TestPutOpenMultipart(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.Concurrency = 3 })
	data := randBytes(1, 40<<20+12345) // 9 parts of 5 MiB, the last short
	in := remote.Meta{Key: "go/mod", Description: "module cache", Size: 123, Files: 7}
	// Part 1 is held until part 2 arrives: this proves parts upload
	// concurrently, and that r is read while earlier parts are in flight.
	overlapUp := holdUntil(e.rec, func(r *http.Request) bool { return query(r, "partNumber") == "1" },
		func(r *http.Request) bool { return query(r, "partNumber") == "2" })
	got, err := s.Put(bg, in, onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if !overlapUp() {
		t.Error("part 2 was not sent while part 1 was in flight")
	}
	if got.Key != in.Key || got.Description != in.Description || got.Size != 123 || got.Files != 7 ||
		got.ArchiveSize != int64(len(data)) || got.SHA256 != sha(data) || got.Created.IsZero() {
		t.Fatalf("Put returned %+v", got)
	}
	parts := e.rec.requests(func(r request) bool { return strings.Contains(r.query, "partNumber=") })
	if len(parts) != 9 {
		t.Errorf("%d UploadPart requests, want 9", len(parts))
	}
	if m := e.rec.maxParts.Load(); m > 3 {
		t.Errorf("%d parts in flight at once, want at most Concurrency = 3", m)
	}
	// Uploads never send the newer checksum headers S3-compatible servers
	// may reject.
	for _, r := range e.rec.requests(nil) {
		for h := range r.header {
			if strings.HasPrefix(strings.ToLower(h), "x-amz-checksum-") || strings.EqualFold(h, "x-amz-sdk-checksum-algorithm") {
				t.Errorf("%s %s sent checksum header %s", r.method, r.path, h)
			}
		}
	}

	e.rec.reset()
	rangeFrom := func(off int) func(r *http.Request) bool {
		return func(r *http.Request) bool {
			return strings.HasPrefix(r.Header.Get("Range"), fmt.Sprintf("bytes=%d-", off))
		}
	}
	overlapDown := holdUntil(e.rec, rangeFrom(MinPartSize), rangeFrom(2*MinPartSize))
	rc, meta, err := s.Open(bg, in.Key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("read back %d bytes that differ from the %d put", len(back), len(data))
	}
	if meta.ArchiveSize != got.ArchiveSize || meta.SHA256 != got.SHA256 || meta.Description != in.Description {
		t.Errorf("Open meta %+v, want %+v", meta, got)
	}
	gets := e.rec.requests(func(r request) bool { return r.method == "GET" && r.isData() })
	if len(gets) != 9 {
		t.Errorf("%d ranged GETs, want 9", len(gets))
	}
	for _, r := range gets[1:] {
		if r.header.Get("If-Match") == "" || r.header.Get("Range") == "" {
			t.Errorf("ranged GET without If-Match or Range: %v", r.header)
		}
	}
	if !overlapDown() {
		t.Error("range 3 was not requested while range 2 was in flight")
	}
	if m := e.rec.maxGets.Load(); m > 4 {
		t.Errorf("%d data GETs in flight, want at most Concurrency+1 = 4", m)
	}
	// The data object is a plain copy of the archive (interoperability).
	objs := e.objects(t, "ci/data/")
	if len(objs) != 1 || !strings.HasSuffix(objs[0], ".tar.zst") {
		t.Fatalf("data objects %q", objs)
	}
	out, err := e.raw.GetObject(bg, &s3.GetObjectInput{Bucket: &e.bucket, Key: &objs[0]})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if !bytes.Equal(raw, data) {
		t.Error("the data object is not the archive's bytes")
	}
}

// holdUntil makes the recorder hold the first request matching held until
// one matching awaited arrives (or 10 s pass). The returned function
// clears the fault and reports whether the awaited request came while the
// held one waited.
func holdUntil(rec *recorder, held, awaited func(*http.Request) bool) func() bool {
	arrived := make(chan struct{})
	var once, holdOnce sync.Once
	var overlapped bool
	rec.setFault(func(r *http.Request, _ int) *http.Response {
		if awaited(r) {
			once.Do(func() { close(arrived) })
		}
		if held(r) {
			holdOnce.Do(func() {
				select {
				case <-arrived:
					overlapped = true
				case <-time.After(10 * time.Second):
				}
			})
		}
		return nil
	})
	return func() bool {
		rec.setFault(nil)
		return overlapped
	}
}

func query(r *http.Request, name string) string { return r.URL.Query().Get(name) }

func TestPutOpenSmall(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	for _, size := range []int{0, 1, 1000, MinPartSize} {
		key := fmt.Sprintf("small-%d", size)
		data := randBytes(uint64(size), size)
		e.rec.reset()
		m, err := s.Put(bg, remote.Meta{Key: key}, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if m.ArchiveSize != int64(size) || m.SHA256 != sha(data) {
			t.Errorf("%s: meta %+v", key, m)
		}
		multipart := len(e.rec.requests(func(r request) bool { return r.method == "POST" })) > 0
		if want := size >= MinPartSize; multipart != want {
			t.Errorf("%s: multipart = %v, want %v", key, multipart, want)
		}
		back, err := readAll(t, s, key)
		if err != nil || !bytes.Equal(back, data) {
			t.Errorf("%s: read back %d bytes, err %v", key, len(back), err)
		}
	}
}

// TestMissIsOneRequest: NoSuchKey is not retried, and Open of a missing
// key never asks for data. (Misses themselves are in the conformance
// suite.)
func TestMissIsOneRequest(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	if _, _, err := s.Open(bg, "nope"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Open missing: %v", err)
	}
	if _, err := s.Stat(bg, "nope"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Stat missing: %v", err)
	}
	if n := len(e.rec.requests(nil)); n != 2 {
		t.Errorf("%d requests for two misses, want 2: %v", n, e.rec.requests(nil))
	}
}

// TestDataMissing: a data object deleted with its entry while Open read
// it (a concurrent delete or replace) is a miss; one missing while the
// manifest that names it stays is a damaged entry, reported with its
// Meta so that the caller can remove that version.
func TestDataMissing(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	data := e.objects(t, "ci/data/")
	for _, name := range data {
		if _, err := e.raw.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: &name}); err != nil {
			t.Fatal(err)
		}
	}
	rc, m, err := s.Open(bg, "k")
	if rc != nil || !errors.Is(err, tiercache.ErrIntegrity) || m.Key != "k" || len(data) != 1 || !strings.Contains(err.Error(), data[0]) {
		t.Fatalf("Open with the data gone, the manifest there: %v, %+v, %v; want ErrIntegrity naming %q, and the Meta", rc, m, err, data)
	}
	if gone, err := s.DeleteVersion(bg, "k", m); !gone || err != nil {
		t.Fatalf("DeleteVersion of the damaged entry: %v, %v", gone, err)
	}

	// Deleted under the reader: the manifest goes between its read and
	// the data's.
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	manifest := "ci/manifests/k.json"
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/data/") {
			return nil
		}
		if _, err := e.raw.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: &manifest}); err != nil {
			t.Error(err)
		}
		return answer(req, http.StatusNotFound, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
	})
	defer e.rec.setFault(nil)
	if _, _, err := s.Open(bg, "k"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Fatalf("Open with the entry deleted under it: %v, want ErrNotFound", err)
	}
}

func TestCorruptManifest(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	e.putRaw(t, "ci/manifests/k.json", []byte("{not json"))
	if _, _, err := s.Open(bg, "k"); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("Open corrupt: %v", err)
	}
	metas, err := s.List(bg, "")
	if err != nil || len(metas) != 0 {
		t.Errorf("List with a corrupt manifest: %v, %v", metas, err)
	}
	if err := s.Delete(bg, "k"); err != nil {
		t.Fatal(err)
	}
	if objs := e.objects(t, ""); len(objs) != 0 {
		t.Errorf("left after Delete: %q", objs)
	}
}

// TestReplaceKeepsOldDataForReaders: a replace leaves the old data
// object for its readers, and the manifest says since when.
func TestReplaceKeepsOldDataForReaders(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(randBytes(1, 6<<20))); err != nil {
		t.Fatal(err)
	}
	id1 := readManifestOf(t, s, "k").Data
	m2, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader([]byte("version two")))
	if err != nil {
		t.Fatal(err)
	}
	if back, err := readAll(t, s, "k"); err != nil || string(back) != "version two" {
		t.Errorf("after replace: %q, %v", back, err)
	}
	if objs := e.objects(t, "ci/data/"); len(objs) != 2 {
		t.Errorf("data objects after replace: %q", objs)
	}
	if m := readManifestOf(t, s, "k"); len(m.Replaced) != 1 || m.Replaced[0].Data != id1 || !m.Replaced[0].At.Equal(m2.Created) {
		t.Errorf("history after replace: %+v, want %s replaced at %v", m.Replaced, id1, m2.Created)
	}
}

// TestDeleteRemovesEveryObject: Delete removes the manifest, the data
// object and the access marker, and a Delete of a missing key writes
// nothing.
func TestDeleteRemovesEveryObject(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	if _, err := s.Put(bg, remote.Meta{Key: "a/b"}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(bg, "a/b"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.objects(t, "ci/")); n != 3 {
		t.Fatalf("%d objects for one touched entry, want 3", n)
	}
	if err := s.Delete(bg, "a/b"); err != nil {
		t.Fatal(err)
	}
	if objs := e.objects(t, ""); len(objs) != 0 {
		t.Errorf("left after Delete: %q", objs)
	}
	e.rec.reset()
	if err := s.Delete(bg, "a/b"); err != nil {
		t.Errorf("Delete missing: %v", err)
	}
	if w := e.rec.requests(func(r request) bool { return r.method != "GET" && r.method != "HEAD" }); len(w) != 0 {
		t.Errorf("Delete of a missing key wrote: %v", w)
	}
}

// TestInvalidKeySendsNothing: an invalid key is refused before any
// request. (Awkward keys and listing by prefix are in the conformance
// suite.)
func TestInvalidKeySendsNothing(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	if _, err := s.Put(bg, remote.Meta{Key: strings.Repeat("/", 513)}, strings.NewReader("x")); !errors.Is(err, tiercache.ErrInvalidKey) {
		t.Errorf("Put of an over-long key: %v", err)
	}
	if _, _, err := s.Open(bg, "a\nb"); !errors.Is(err, tiercache.ErrInvalidKey) {
		t.Errorf("Open of a key with a newline: %v", err)
	}
	if n := len(e.rec.requests(nil)); n != 0 {
		t.Errorf("%d requests for invalid keys", n)
	}
}

// TestConcurrentPutsLeaveOneDataObject: the losers of concurrent
// multipart puts of one key may leave data objects, which Prune collects.
// (That one complete version wins is in the conformance suite.)
func TestConcurrentPutsLeaveOneDataObject(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	var wg sync.WaitGroup
	for i := range 4 {
		d := randBytes(uint64(10+i), 6<<20+i) // two parts each
		wg.Go(func() {
			if _, err := s.Put(bg, remote.Meta{Key: "shared"}, onlyReader{bytes.NewReader(d)}); err != nil {
				t.Errorf("Put: %v", err)
			}
		})
	}
	wg.Wait()
	back, err := readAll(t, s, "shared")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	if n, err := s.Prune(bg, policy.Limits{}); err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if objs := e.objects(t, "ci/data/"); len(objs) != 1 {
		t.Fatalf("data objects after prune: %q", objs)
	}
	if again, err := readAll(t, s, "shared"); err != nil || !bytes.Equal(again, back) {
		t.Fatalf("after prune: %v", err)
	}
}

// TestTouchWritesMarker: every Touch writes the access marker (how often
// is the caller's choice), and nothing else.
func TestTouchWritesMarker(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	created, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	e.rec.reset()
	for range 3 {
		if err := s.Touch(bg, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if all, puts := e.rec.requests(nil), e.rec.requests(func(r request) bool { return r.method == "PUT" && strings.Contains(r.path, "/access/") }); len(puts) != 3 || len(all) != 3 {
		t.Errorf("3 touches sent %d marker writes of %d requests, want 3 of 3", len(puts), len(all))
	}
	if st, err := s.Stat(bg, "k"); err != nil || st.LastAccess.Before(created.Created.Truncate(time.Second)) {
		t.Errorf("Stat after touches: %+v, %v; want LastAccess from %v on", st, err, created.Created)
	}
}

// TestPruneRequests: Prune works from listings and batch deletes, with no
// per-entry reads, and an evicted entry leaves no object behind. (LRU
// order and limits are in the conformance suite.)
func TestPruneRequests(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	for _, k := range []string{"k1", "k2", "k3"} {
		if _, err := s.Put(bg, remote.Meta{Key: k, Size: 100}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
		if err := s.Touch(bg, k); err != nil {
			t.Fatal(err)
		}
	}
	e.rec.reset()
	n, err := s.Prune(bg, policy.Limits{MaxEntries: 1})
	if err != nil || n != 2 {
		t.Fatalf("Prune(1 entry) = %d, %v", n, err)
	}
	for _, r := range e.rec.requests(nil) {
		if !(r.method == "GET" && r.isList()) && !(r.method == "POST" && strings.Contains(r.query, "delete")) {
			t.Errorf("Prune sent %s %s?%s", r.method, r.path, r.query)
		}
	}
	// The one entry left: its manifest, data object and access marker.
	if objs := e.objects(t, "ci/"); len(objs) != 3 {
		t.Errorf("%d objects for one touched entry, want 3: %q", len(objs), objs)
	}
}

func assertKeys(t *testing.T, s *Store, want ...string) {
	t.Helper()
	metas, err := s.List(bg, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range metas {
		got = append(got, m.Key)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
}

func TestPruneOrphans(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	lazy := e.store(t, nil) // default grace: 1h
	committed := randBytes(3, 1000)
	if _, err := s.Put(bg, remote.Meta{Key: "live"}, bytes.NewReader(committed)); err != nil {
		t.Fatal(err)
	}
	const id = "0000000000000001-0000000000000001-0000000000000005.tar.zst"
	long := stemFor(strings.Repeat("/", 512)) // a fallback stem
	strays := []string{
		"ci/data/live/" + id,         // superseded data of a live key
		"ci/data/nokey/" + id,        // an interrupted put of a new key
		"ci/access/gone",             // an access marker of a missing key
		"ci/data/" + long + "/" + id, // an interrupted put of a long key
		"ci/access/" + long,          // an access marker of a missing long key
		"ci/manifests/x.json~",       // not ours: never touched
		"ci/access/foreign",          // not ours (not empty)
		"ci/data/x/y.tar.zst",        // not ours (not a data id)
		"ci/data/x/0000000000000001-0000000000000001.tar.zst", // not ours (no tree size)
		"ci/data/" + long[:len(long)-1] + "/" + id,            // not ours (not a stem)
		"ci/access/" + long + "0",                             // not ours (not a stem)
		"other/data/x/" + id,                                  // outside the prefix
	}
	const ours = 5
	for _, name := range strays {
		body := []byte("stray")
		if strings.HasPrefix(name, "ci/access/") {
			body = nil
		}
		if name == "ci/access/foreign" {
			body = []byte("stray")
		}
		e.putRaw(t, name, body)
	}
	// A young orphan survives the default grace period.
	if _, err := lazy.Prune(bg, policy.Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := len(e.objects(t, "")); got != 2+len(strays) {
		t.Fatalf("default-grace prune removed young objects: %q", e.objects(t, ""))
	}
	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	if n, err := s.Prune(bg, policy.Limits{}); err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	left := e.objects(t, "")
	for _, name := range strays[:ours] {
		if slices.Contains(left, name) {
			t.Errorf("orphan %q not collected", name)
		}
	}
	for _, name := range strays[ours:] {
		if !slices.Contains(left, name) {
			t.Errorf("foreign object %q deleted", name)
		}
	}
	if back, err := readAll(t, s, "live"); err != nil || !bytes.Equal(back, committed) {
		t.Fatalf("committed entry damaged by prune: %v", err)
	}
}

func TestFailedUploadIsAborted(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.Concurrency = 2 })
	boom := errors.New("compressor failed")
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	// The failure comes once two parts are stored, so only the abort can
	// remove them.
	after2 := func(fail func() error) io.Reader {
		return io.MultiReader(bytes.NewReader(randBytes(1, 2*MinPartSize+100)), gateReader{e.rec, fail})
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
		ctx  context.Context
		want error
	}{
		{"reader error", after2(func() error { return boom }), bg, boom},
		{"cancelled", after2(func() error { cancel(); return context.Canceled }), ctx, context.Canceled},
	} {
		e.rec.reset()
		e.rec.partsDone.Store(0)
		_, err := s.Put(tc.ctx, remote.Meta{Key: "k"}, tc.r)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: Put: %v, want %v", tc.name, err, tc.want)
		}
		if n := e.rec.partsDone.Load(); n < 2 {
			t.Fatalf("%s: only %d parts stored before the failure", tc.name, n)
		}
		// MinIO lists uploads for an exact object name or, without a
		// prefix, for the whole bucket (this test's own).
		ups, err := e.raw.ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: &e.bucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 0 {
			t.Errorf("%s: uploads left: %v", tc.name, ups.Uploads)
		}
		if objs := e.objects(t, ""); len(objs) != 0 {
			t.Errorf("%s: objects left: %q", tc.name, objs)
		}
	}
}

// gateReader waits until the recorder has seen two parts stored, then
// fails with fail().
type gateReader struct {
	rec  *recorder
	fail func() error
}

func (g gateReader) Read([]byte) (int, error) {
	for deadline := time.Now().Add(10 * time.Second); g.rec.partsDone.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return 0, g.fail()
}

// TestReadOnlySendsNoWrites: a store wrapped with remote.ReadOnly
// refuses writes before any request, and reads with GET and HEAD only.
// (What it refuses and serves is in the conformance suite.)
func TestReadOnlySendsNoWrites(t *testing.T) {
	e := newEnv(t)
	rw := e.store(t, nil)
	if _, err := rw.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	ro := remote.ReadOnly(e.store(t, nil))
	e.rec.reset()
	_, _ = ro.Put(bg, remote.Meta{Key: "k2"}, strings.NewReader("x"))
	_ = ro.Delete(bg, "k")
	_ = ro.Touch(bg, "k")
	_, _ = ro.Prune(bg, policy.Limits{MaxEntries: 1})
	if n := len(e.rec.requests(nil)); n != 0 {
		t.Errorf("refused writes sent %d requests", n)
	}
	if back, err := readAll(t, ro, "k"); err != nil || string(back) != "data" {
		t.Errorf("Open: %q, %v", back, err)
	}
	if _, err := ro.Stat(bg, "k"); err != nil {
		t.Error(err)
	}
	if _, err := ro.List(bg, ""); err != nil {
		t.Error(err)
	}
	reads := e.rec.requests(nil)
	if len(reads) == 0 {
		t.Error("no requests recorded for the reads")
	}
	for _, r := range reads {
		if r.method != "GET" && r.method != "HEAD" {
			t.Errorf("read-only store sent %s %s", r.method, r.path)
		}
	}
}

// cutBody fails with a connection reset after n bytes.
type cutBody struct {
	io.ReadCloser
	n int
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, fmt.Errorf("read tcp: %w", errConnReset)
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	n, err := c.ReadCloser.Read(p)
	c.n -= n
	return n, err
}

var errConnReset = errors.New("connection reset by peer")

func TestResumeMidBody(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	data := randBytes(7, 2*MinPartSize+777)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	const cut = 1 << 20
	var cuts sync.Map // range start -> cut once
	e.rec.setBody(func(req *http.Request, n int, body io.ReadCloser) io.ReadCloser {
		if req.Method != "GET" || !strings.Contains(req.URL.Path, "/data/") {
			return body
		}
		// Cut the first response of every range once, mid-body.
		if _, done := cuts.LoadOrStore(req.Header.Get("Range"), true); done {
			return body
		}
		return &cutBody{ReadCloser: body, n: cut}
	})
	defer e.rec.setBody(nil)
	e.rec.reset()
	back, err := readAll(t, s, "k")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("resumed read differs (%d bytes, want %d)", len(back), len(data))
	}
	gets := e.rec.requests(func(r request) bool { return r.method == "GET" && r.isData() })
	resumed := 0
	for _, r := range gets {
		if strings.HasPrefix(r.header.Get("Range"), fmt.Sprintf("bytes=%d-", cut)) {
			resumed++
			if r.header.Get("If-Match") == "" {
				t.Error("resumed GET without If-Match")
			}
		}
	}
	if resumed != 1 || len(gets) < 6 {
		t.Errorf("%d GETs, %d resumed at byte %d: %v", len(gets), resumed, cut, gets)
	}

	// A body that keeps failing gives up after MaxAttempts resumes.
	e.rec.setBody(func(req *http.Request, n int, body io.ReadCloser) io.ReadCloser {
		if req.Method == "GET" && strings.Contains(req.URL.Path, "/data/") {
			return &cutBody{ReadCloser: body, n: 1000}
		}
		return body
	})
	if _, err := readAll(t, s, "k"); !errors.Is(err, errConnReset) {
		t.Errorf("endless resets: %v", err)
	}
}

// slowDown answers like S3 under load.
func slowDown(req *http.Request) *http.Response {
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`
	return &http.Response{
		StatusCode:    http.StatusServiceUnavailable,
		Status:        "503 Service Unavailable",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

func TestRetries(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	// Every first attempt of a request fails with 503 SlowDown.
	var seen sync.Map
	e.rec.setFault(func(req *http.Request, n int) *http.Response {
		id := req.Method + " " + req.URL.String()
		if _, again := seen.LoadOrStore(id, true); again {
			return nil
		}
		return slowDown(req)
	})
	data := randBytes(5, MinPartSize+10)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put with transient faults: %v", err)
	}
	if back, err := readAll(t, s, "k"); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("Open with transient faults: %v", err)
	}
	e.rec.setFault(nil)
	parts := e.rec.requests(func(r request) bool {
		q, _ := url.ParseQuery(r.query)
		return q.Get("partNumber") == "1"
	})
	if len(parts) != 2 {
		t.Errorf("part 1 sent %d times, want 2 (503 then success)", len(parts))
	}

	// Permanent errors are not retried: a missing key...
	e.rec.reset()
	if _, err := s.Stat(bg, "missing"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Fatal(err)
	}
	if n := len(e.rec.requests(nil)); n != 1 {
		t.Errorf("NoSuchKey: %d attempts", n)
	}
	// ... and refused credentials.
	bad := e.store(t, func(c *Config) {
		c.Credentials = credentials.NewStaticCredentialsProvider(e.srv.AccessKey, "wrong-secret-0123456789", "")
	})
	e.rec.reset()
	_, err := bad.Stat(bg, "k")
	if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), e.bucket) {
		t.Errorf("wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), e.srv.SecretKey) {
		t.Errorf("error leaks the secret: %v", err)
	}
	if n := len(e.rec.requests(nil)); n != 1 {
		t.Errorf("access denied: %d attempts", n)
	}
	// ... and a missing bucket.
	nob := e.store(t, func(c *Config) { c.Bucket = "no-such-bucket-" + e.bucket })
	if _, err := nob.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("x")); !errors.Is(err, ErrNoSuchBucket) {
		t.Errorf("missing bucket: %v", err)
	}
}

// clearAWSEnv leaves no region or endpoint in the environment or a
// profile for the rest of the test.
func clearAWSEnv(t *testing.T) {
	for _, name := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		t.Setenv(name, "") // restores the old value after the test
		os.Unsetenv(name)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
}

func TestNewValidates(t *testing.T) {
	clearAWSEnv(t)
	creds := credentials.NewStaticCredentialsProvider("AKID", "SECRET-VALUE", "")
	base := Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", Credentials: creds}
	for name, edit := range map[string]func(*Config){
		"no bucket":      func(c *Config) { c.Bucket = "" },
		"small parts":    func(c *Config) { c.PartSize = MinPartSize - 1 },
		"huge parts":     func(c *Config) { c.PartSize = MaxPartSize + 1 },
		"concurrency":    func(c *Config) { c.Concurrency = -1 },
		"grace":          func(c *Config) { c.OrphanGrace = -time.Second },
		"attempts":       func(c *Config) { c.MaxAttempts = -1 },
		"backoff":        func(c *Config) { c.MaxBackoff = -1 },
		"prefix":         func(c *Config) { c.Prefix = "../x" },
		"absolute":       func(c *Config) { c.Prefix = "/x" },
		"huge prefix":    func(c *Config) { c.Prefix = strings.Repeat("p/", 129) }, // no room left for long keys
		"no region, AWS": func(c *Config) { c.Endpoint = "" },
		"no scheme":      func(c *Config) { c.Endpoint = "127.0.0.1:9000" },
		"other scheme":   func(c *Config) { c.Endpoint = "s3://127.0.0.1:9000" },
	} {
		cfg := base
		edit(&cfg)
		_, err := New(bg, cfg)
		if !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		} else if strings.Contains(err.Error(), "SECRET-VALUE") {
			t.Errorf("%s: error leaks the secret: %v", name, err)
		}
	}
	s, err := New(bg, base)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.cfg; c.PartSize != DefaultPartSize || c.Concurrency != DefaultConcurrency || c.OrphanGrace != DefaultOrphanGrace ||
		c.MaxAttempts != DefaultMaxAttempts || c.MaxBackoff != DefaultMaxBackoff || s.prefix != "" {
		t.Errorf("defaults not applied: %+v", s)
	}
	o := s.client.Options()
	if o.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired ||
		o.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired {
		t.Error("checksums are not 'when required'")
	}
	// A request to an unreachable endpoint fails without the secret.
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if _, err := s.Stat(ctx, "k"); err == nil || strings.Contains(err.Error(), "SECRET-VALUE") {
		t.Errorf("unreachable endpoint: %v", err)
	}
}

// TestPruneScale checks that Prune's cost grows with listing pages, not
// with entries, at a scaled-down size: 250 entries, 60 per listing page
// and per batch delete (S3 allows 1000 of each), pruned to 40.
func TestPruneScale(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.Prefix = "" })
	s.pageSize, s.deleteBatch = 60, 60
	const total, keep = 250, 40
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range total {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := fmt.Sprintf("entry/%05d", i)
			if _, err := s.Put(bg, remote.Meta{Key: key}, strings.NewReader(key)); err != nil {
				t.Errorf("Put %s: %v", key, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	e.rec.reset()
	n, err := s.Prune(bg, policy.Limits{MaxEntries: keep})
	if err != nil || n != total-keep {
		t.Fatalf("Prune = %d, %v; want %d", n, err, total-keep)
	}
	var lists, deletes int
	for _, r := range e.rec.requests(nil) {
		switch {
		case r.method == "GET" && r.isList():
			lists++
		case r.method == "POST" && strings.Contains(r.query, "delete"):
			deletes++
		default:
			t.Errorf("Prune sent %s %s?%s", r.method, r.path, r.query)
		}
	}
	// 5 pages of data objects, 5 of manifests, 1 of (no) markers, 1 of
	// (no) uploads; 4 batches of manifests (210), then 4 of data objects.
	if lists != 12 || deletes != 8 {
		t.Errorf("Prune sent %d listings and %d batch deletes, want 12 and 8", lists, deletes)
	}
	metas, err := s.List(bg, "entry/")
	if err != nil || len(metas) != keep {
		t.Fatalf("List after prune: %d entries, %v", len(metas), err)
	}
	if objs := e.objects(t, dataDir); len(objs) != keep {
		t.Errorf("%d data objects left, want %d", len(objs), keep)
	}
}

func TestOpenCloseEarlyAndCancel(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.Concurrency = 2 })
	data := randBytes(9, 6*MinPartSize)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	e.rec.reset()
	rc, _, err := s.Open(bg, "k")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[:10]) {
		t.Fatalf("first bytes: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for every fetch, and every response body is closed.
	if n := e.rec.inflightGets.Load(); n != 0 {
		t.Errorf("%d data responses still open after Close", n)
	}
	sent := len(e.rec.requests(nil))
	if sent > 1+3+1 { // manifest + the first range + at most Concurrency+1 others
		t.Errorf("%d requests for a stream closed after 10 bytes", sent)
	}
	if _, err := rc.Read(buf); err == nil {
		t.Error("Read after Close succeeded")
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(e.rec.requests(nil)); n != sent {
		t.Errorf("%d requests sent after Close", n-sent)
	}

	// Cancelling Open's context fails the stream.
	ctx, cancel := context.WithCancel(bg)
	rc, _, err = s.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v", err)
	}
}

func TestTruncatedDataIsIntegrityError(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	data := randBytes(4, 2*MinPartSize)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	objs := e.objects(t, "ci/data/")
	if len(objs) != 1 {
		t.Fatalf("data objects %q", objs)
	}
	// Data objects are never rewritten by tiercache; simulate damage.
	for _, short := range []int{len(data) - 1, 100} {
		e.putRaw(t, objs[0], data[:short])
		_, err := readAll(t, s, "k")
		if !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("data cut to %d bytes: %v, want ErrIntegrity", short, err)
		}
	}
}

func TestLastAccess(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	created, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // Created is client time, LastModified server time
	if err := s.Touch(bg, "k"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(bg, "k")
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastAccess.After(created.Created) || !st.Created.Equal(created.Created) {
		t.Errorf("Stat: created %v, last access %v", st.Created, st.LastAccess)
	}
	metas, err := s.List(bg, "k")
	// HEAD reports whole seconds, LIST milliseconds.
	if err != nil || len(metas) != 1 || metas[0].LastAccess.Truncate(time.Second) != st.LastAccess.Truncate(time.Second) {
		t.Errorf("List: %+v, %v; want last access %v", metas, err, st.LastAccess)
	}
}
