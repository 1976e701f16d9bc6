package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/storetest"
)

// newReuser is a storetest.Reuser of data repeating runs of b's archive,
// reading frame bytes at a time.
func newReuser(b remote.Base, data []byte, runs []storetest.Span, frame int) *storetest.Reuser {
	r := storetest.NewReuser(b, data, runs...)
	r.ReadSize = frame
	return r
}

// copied is how many bytes the store reported copying to r.
func copied(r *storetest.Reuser) int64 {
	n, _ := r.Copies()
	return n
}

// digestingReuser is a storetest.Reuser that is also a remote.Digester.
type digestingReuser struct {
	*storetest.Reuser
	sum string
}

func (d digestingReuser) SHA256() string { return d.sum }

// piece is a stretch of a test stream: fresh bytes, or base bytes.
type piece struct {
	fresh   int
	baseOff int64
	n       int64
}

// compose builds a stream of pieces and the runs it repeats of base.
func compose(base []byte, seed uint64, pieces ...piece) ([]byte, []storetest.Span) {
	var data []byte
	var runs []storetest.Span
	for i, p := range pieces {
		if p.fresh > 0 {
			data = append(data, randBytes(seed+uint64(i), p.fresh)...)
			continue
		}
		runs = append(runs, storetest.Span{Off: int64(len(data)), BaseOff: p.baseOff, N: p.n})
		data = append(data, base[p.baseOff:p.baseOff+p.n]...)
	}
	return data, runs
}

// uploadCounter counts the body bytes of requests that upload a data
// object's bytes (PutObject and UploadPart, not UploadPartCopy), and the
// copies.
type uploadCounter struct{ sent, copies atomic.Int64 }

func (c *uploadCounter) watch(rec *recorder) {
	rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/"+dataDir) {
			if req.Header.Get("X-Amz-Copy-Source") != "" {
				c.copies.Add(1)
			} else {
				c.sent.Add(req.ContentLength)
			}
		}
		return nil
	})
}

const mib = 1 << 20

// putBase stores base under key and returns it as a Base.
func putBase(t *testing.T, s *Store, key string, base []byte) remote.Base {
	t.Helper()
	if _, err := s.Put(bg, remote.Meta{Key: key, Size: 1}, bytes.NewReader(base)); err != nil {
		t.Fatal(err)
	}
	b, err := s.OpenBase(bg, key)
	if err != nil {
		t.Fatal(err)
	}
	if b.Meta.Key != key || b.Meta.ArchiveSize != int64(len(base)) || b.Meta.SHA256 != sha(base) || b.Ref == "" {
		t.Fatalf("OpenBase: %+v", b)
	}
	return b
}

// putReusing puts r under key and checks the entry holds exactly r's
// stream.
func putReusing(t *testing.T, s *Store, key string, r remote.Reuser, data []byte) remote.Meta {
	t.Helper()
	m, err := s.Put(bg, remote.Meta{Key: key, Size: 2}, r)
	if err != nil {
		t.Fatal(err)
	}
	if m.ArchiveSize != int64(len(data)) || m.SHA256 != sha(data) {
		t.Errorf("Put committed %d bytes with SHA-256 %s, want %d and %s", m.ArchiveSize, m.SHA256, len(data), sha(data))
	}
	back, err := readAll(t, s, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("read back %d bytes that differ from the %d streamed", len(back), len(data))
	}
	return m
}

// TestReuseCopiesRuns: a stream repeating long runs of the base has them
// copied server-side; only the fresh bytes and the padding of parts to
// the minimum size are sent.
func TestReuseCopiesRuns(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.Concurrency = 2 })
	base := randBytes(10, 40*mib)
	b := putBase(t, s, "ci/base key+1% é?#=&", base)
	data, runs := compose(base, 11, piece{baseOff: 0, n: 20 * mib}, piece{fresh: 3 * mib}, piece{baseOff: 24 * mib, n: 16 * mib})

	var c uploadCounter
	c.watch(e.rec)
	r := newReuser(b, data, runs, mib+12345)
	putReusing(t, s, "ci/next", r, data)
	if f := r.Failures(); len(f) > 0 {
		t.Errorf("CopyFailed: %v", f)
	}
	repeated := int64(36 * mib)
	if got := copied(r); got < repeated*3/4 {
		t.Errorf("Copied %d bytes of %d repeated", got, repeated)
	}
	if sent := c.sent.Load(); sent > 8*mib || sent+copied(r) != int64(len(data)) {
		t.Errorf("sent %d bytes and copied %d of a %d-byte stream with 3 MiB fresh", sent, copied(r), len(data))
	}
	if c.copies.Load() == 0 {
		t.Error("no UploadPartCopy request")
	}
}

// TestReuseBaseGone: a base deleted before the Put (replaced, pruned)
// costs a full upload, not the Put.
func TestReuseBaseGone(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(20, 20*mib)
	b := putBase(t, s, "base", base)
	if _, err := e.raw.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: &b.Ref}); err != nil {
		t.Fatal(err)
	}
	data, runs := compose(base, 21, piece{baseOff: 0, n: 12 * mib}, piece{fresh: mib}, piece{baseOff: 13 * mib, n: 7 * mib})
	r := newReuser(b, data, runs, 2*mib)
	putReusing(t, s, "next", r, data)
	f := r.Failures()
	if len(f) != 1 || !strings.Contains(f[0].Error(), "gone") {
		t.Errorf("CopyFailed calls: %v; want one saying the base is gone", f)
	}
	if got := copied(r); got != 0 {
		t.Errorf("Copied %d bytes from a deleted base", got)
	}
}

// TestReuseRunShapes: short runs, runs across part boundaries, runs
// adjacent in the stream but not in the base, a run ending the stream,
// reads that do not keep to frames, a stream within one part, and a
// Digester, all commit exactly the stream.
func TestReuseRunShapes(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(30, 30*mib)
	b := putBase(t, s, "base", base)
	cases := []struct {
		name     string
		pieces   []piece
		frame    int
		spanRuns bool
		copied   int64 // what the parts' layout lets be copied
	}{
		// Short runs pad upload parts to the minimum; the last part
		// is copied.
		{"short runs", []piece{
			{fresh: mib}, {baseOff: 2 * mib, n: 5*mib/2 + 7}, {fresh: 2 * mib}, {baseOff: 9 * mib, n: 3 * mib},
			{fresh: 100}, {baseOff: 20 * mib, n: 4 * mib},
		}, mib, false, 5*mib/2 + 107},
		// Part 1 is padded with the first run, part 2 copies it; its
		// 1 MiB left is too short for a part, so part 3 uploads it, and
		// the second run (adjacent in the stream, not in the base) up to
		// the minimum; part 4 is what remains of that run and the fresh
		// bytes, padded with the third run, which part 5 copies.
		{"straddling and adjacent", []piece{
			{fresh: 3 * mib}, {baseOff: 10 * mib, n: 8*mib + 333}, {baseOff: 0, n: 6 * mib},
			{fresh: mib / 2}, {baseOff: 20*mib + 1, n: 7*mib + 77},
		}, mib, false, 19*mib/2 + 410},
		{"tiny run at the end", []piece{{fresh: 5 * mib}, {baseOff: 30*mib - 3, n: 3}}, mib, false, 3},
		{"run too short at the end", []piece{{fresh: 6 * mib}, {baseOff: 0, n: 3}}, mib, false, 0},
		{"runs only", []piece{{baseOff: 5 * mib, n: 25 * mib}, {baseOff: 0, n: 5 * mib}}, 3 * mib, false, 30 * mib},
		{"reads across runs", []piece{
			{fresh: 2 * mib}, {baseOff: 0, n: 9 * mib}, {fresh: 5}, {baseOff: 12 * mib, n: 12 * mib},
		}, 1000003, true, -1},
		{"within one part", []piece{{fresh: mib}, {baseOff: 0, n: 3 * mib}}, mib, false, 0},
		{"empty", nil, mib, false, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, runs := compose(base, uint64(100+10*i), tc.pieces...)
			var c uploadCounter
			c.watch(e.rec)
			r := newReuser(b, data, runs, tc.frame)
			r.SpanRuns = tc.spanRuns
			putReusing(t, s, "k", r, data)
			if f := r.Failures(); len(f) > 0 {
				t.Errorf("CopyFailed: %v", f)
			}
			if c.sent.Load()+copied(r) != int64(len(data)) {
				t.Errorf("sent %d and copied %d bytes of a %d-byte stream", c.sent.Load(), copied(r), len(data))
			}
			t.Logf("%d bytes, %d sent, %d copied", len(data), c.sent.Load(), copied(r))
			switch got := copied(r); {
			case tc.copied >= 0 && got != tc.copied:
				t.Errorf("copied %d bytes, want %d", got, tc.copied)
			case tc.copied < 0 && got == 0:
				t.Error("nothing copied")
			}
		})
	}

	t.Run("digester", func(t *testing.T) {
		data, runs := compose(base, 200, piece{fresh: mib}, piece{baseOff: mib, n: 12 * mib})
		sum := sha256.Sum256(data)
		r := newReuser(b, data, runs, mib)
		putReusing(t, s, "d", digestingReuser{r, hex.EncodeToString(sum[:])}, data)
		if copied(r) == 0 {
			t.Error("nothing copied")
		}
	})
}

// TestReuseCopyRefused: a server that does not implement copies (501),
// or answers one with no part, gets the bytes uploaded instead; a 501 is
// remembered, so the next Put tries no copy, and still says why.
func TestReuseCopyRefused(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(40, 20*mib)
	b := putBase(t, s, "base", base)
	data, runs := compose(base, 41, piece{fresh: mib}, piece{baseOff: 0, n: 19 * mib})

	answer := func(status int, body string) func(req *http.Request, _ int) *http.Response {
		return func(req *http.Request, _ int) *http.Response {
			if req.Header.Get("X-Amz-Copy-Source") == "" {
				return nil
			}
			return &http.Response{
				StatusCode: status, Status: http.StatusText(status),
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header:        http.Header{"Content-Type": {"application/xml"}, "X-Amz-Request-Id": {"test"}},
				Body:          io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)),
				Request:       req,
			}
		}
	}
	copies := func() int {
		return len(e.rec.requests(func(r request) bool { return r.header.Get("X-Amz-Copy-Source") != "" }))
	}

	e.rec.setFault(answer(http.StatusOK, ""))
	r := newReuser(b, data, runs, mib)
	putReusing(t, s, "empty-answer", r, data)
	if f := r.Failures(); len(f) != 1 || !errors.Is(f[0], errNoETag) || copied(r) != 0 {
		t.Errorf("copies answered with no part: CopyFailed %v, Copied %d", f, copied(r))
	}

	e.rec.setFault(answer(http.StatusNotImplemented,
		`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>not here</Message></Error>`))
	r = newReuser(b, data, runs, mib)
	putReusing(t, s, "not-implemented", r, data)
	if f := r.Failures(); len(f) != 1 || !strings.Contains(f[0].Error(), "501 NotImplemented") || copied(r) != 0 {
		t.Errorf("copies answered 501: CopyFailed %v, Copied %d", f, copied(r))
	}

	e.rec.setFault(nil)
	e.rec.reset()
	r = newReuser(b, data, runs, mib)
	putReusing(t, s, "after-501", r, data)
	if n := copies(); n != 0 {
		t.Errorf("%d copies tried after a 501", n)
	}
	if f := r.Failures(); len(f) != 1 || !errors.Is(f[0], errNoCopies) {
		t.Errorf("a Put after a 501: CopyFailed %v; want it told once", f)
	}
	// A base is no use now: OpenBase says so without a request.
	e.rec.reset()
	if _, err := s.OpenBase(t.Context(), "base"); !errors.Is(err, remote.ErrNoCopy) {
		t.Errorf("OpenBase after a 501: %v, want ErrNoCopy", err)
	}
	if n := len(e.rec.requests(func(request) bool { return true })); n != 0 {
		t.Errorf("OpenBase after a 501 sent %d requests", n)
	}
	// Ranges are still read: a pull takes the frames it lacks.
	if v, err := s.OpenVersion(t.Context(), "base"); err != nil {
		t.Errorf("OpenVersion after a 501: %v", err)
	} else if p, err := s.ReadBase(t.Context(), v, 10, 100); err != nil || !bytes.Equal(p, base[10:110]) {
		t.Errorf("ReadBase after a 501: %d bytes, %v", len(p), err)
	}
	// Another store of the same server tries again.
	r = newReuser(b, data, runs, mib)
	putReusing(t, e.store(t, nil), "other-store", r, data)
	if copies() == 0 || copied(r) == 0 {
		t.Errorf("a new store did not copy (Copied %d)", copied(r))
	}
}

// TestOpenReadBase: OpenBase and ReadBase find a stored version, refuse
// what is not one, and read exact ranges.
func TestOpenReadBase(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	if _, err := s.OpenBase(bg, "missing"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("OpenBase of a missing key: %v", err)
	}
	base := randBytes(50, 7*mib+3)
	b := putBase(t, s, "base", base)
	for _, r := range [][2]int64{{0, 1}, {0, int64(len(base))}, {6*mib + 11, mib - 8}, {int64(len(base)) - 5, 5}, {100, 0}} {
		got, err := s.ReadBase(bg, b, r[0], r[1])
		if err != nil || !bytes.Equal(got, base[r[0]:r[0]+r[1]]) {
			t.Errorf("ReadBase(%d, %d): %d bytes, %v", r[0], r[1], len(got), err)
		}
	}
	for _, r := range [][2]int64{{-1, 2}, {0, int64(len(base)) + 1}, {int64(len(base)), 1}, {5, -1}} {
		if _, err := s.ReadBase(bg, b, r[0], r[1]); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("ReadBase(%d, %d): %v; want ErrInvalidArgument", r[0], r[1], err)
		}
	}
	bad := b
	bad.Ref = "elsewhere/object"
	if _, err := s.ReadBase(bg, bad, 0, 1); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("ReadBase of a foreign object: %v", err)
	}

	// A data object of another size than its manifest says is corrupt.
	e.putRaw(t, b.Ref, base[:100])
	if _, err := s.OpenBase(bg, "base"); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("OpenBase of a truncated data object: %v", err)
	}
	if _, err := e.raw.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: &b.Ref}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenBase(bg, "base"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("OpenBase with the data object gone: %v", err)
	}
	if _, err := s.ReadBase(bg, b, 0, 10); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("ReadBase with the data object gone: %v", err)
	}
}

// TestReuseFailureAborts: a Put whose stream breaks, or whose parts
// fail, after copies were made leaves no upload or data object behind.
func TestReuseFailureAborts(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(60, 20*mib)
	b := putBase(t, s, "base", base)
	data, runs := compose(base, 61, piece{baseOff: 0, n: 12 * mib}, piece{fresh: 6 * mib}, piece{baseOff: 12 * mib, n: 8 * mib})
	check := func(what string) {
		t.Helper()
		if objs := e.objects(t, "ci/data/"); len(objs) != 1 || objs[0] != b.Ref {
			t.Errorf("%s: data objects %q, want only the base's", what, objs)
		}
		out, err := e.raw.ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: &e.bucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 0 {
			t.Errorf("%s: %d multipart uploads left", what, len(out.Uploads))
		}
	}

	r := newReuser(b, data, runs, mib)
	r.FailAt = 15 * mib
	if _, err := s.Put(bg, remote.Meta{Key: "k", Size: 2}, r); !errors.Is(err, storetest.ErrBroken) {
		t.Errorf("Put of a broken stream: %v", err)
	}
	if copied(r) == 0 {
		t.Error("nothing copied before the stream broke")
	}
	check("broken stream")

	// Every upload of a part fails (copies go through).
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method != http.MethodPut || !strings.Contains(req.URL.RawQuery, "partNumber=") || req.Header.Get("X-Amz-Copy-Source") != "" {
			return nil
		}
		return slowDown(req)
	})
	r = newReuser(b, data, runs, mib)
	if _, err := s.Put(bg, remote.Meta{Key: "k", Size: 2}, r); err == nil {
		t.Error("Put succeeded with every part upload failing")
	}
	e.rec.setFault(nil)
	check("failing parts")
	if _, err := s.Stat(bg, "k"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Stat after failed puts: %v", err)
	}
}

// TestNoCopyServers: copies are off for the servers known not to compose
// objects from copied ranges, and for a Config that says so; on by
// default elsewhere.
func TestNoCopyServers(t *testing.T) {
	cases := []struct {
		cfg  Config
		want bool
	}{
		{Config{Endpoint: "https://0123abcd.r2.cloudflarestorage.com"}, true},
		{Config{Endpoint: "https://0123abcd.EU.R2.cloudflarestorage.com:443"}, true},
		{Config{Endpoint: "https://storage.googleapis.com"}, true},
		{Config{Endpoint: "http://127.0.0.1:9000"}, false},
		{Config{Endpoint: "http://127.0.0.1:9000", NoCopy: true}, true},
		{Config{Endpoint: "https://r2.cloudflarestorage.com.example.org"}, false},
	}
	for _, c := range cases {
		c.cfg.Bucket, c.cfg.Region = "b", "us-east-1"
		s, err := New(t.Context(), c.cfg)
		if err != nil {
			t.Fatalf("%+v: %v", c.cfg, err)
		}
		if s.lacksCopies() != c.want {
			t.Errorf("endpoint %q, NoCopy %v: copies off %v, want %v", c.cfg.Endpoint, c.cfg.NoCopy, s.lacksCopies(), c.want)
		}
	}
}
