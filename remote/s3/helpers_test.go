package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache/internal/miniotest"
	"github.com/tiercache/tiercache/remote"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Run(m)) }

// request is what the recorder saw of one request.
type request struct {
	method string
	path   string // URL path: /bucket/object (path style)
	query  string // raw query
	header http.Header
}

// isData reports whether r addresses a data object.
func (r request) isData() bool { return strings.Contains(r.path, "/"+dataDir) }

// isList reports whether r is a listing: ListObjectsV2, or
// ListMultipartUploads (which Prune sends to find stale uploads).
func (r request) isList() bool {
	q, _ := url.ParseQuery(r.query)
	return q.Get("list-type") == "2" || q.Has("uploads")
}

// recorder is an http.RoundTripper that records requests and lets a test
// inject faults: fault, if set, may answer a request itself (return a
// non-nil response) or alter the real response.
type recorder struct {
	base http.RoundTripper

	mu    sync.Mutex
	reqs  []request
	fault func(req *http.Request, n int) *http.Response // n: index of req
	body  func(req *http.Request, n int, body io.ReadCloser) io.ReadCloser

	inflightParts, maxParts atomic.Int64 // UploadPart requests in flight
	partsDone               atomic.Int64 // UploadPart requests answered 200
	inflightGets, maxGets   atomic.Int64 // data GETs with an open body
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec.mu.Lock()
	n := len(rec.reqs)
	rec.reqs = append(rec.reqs, request{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone()})
	fault, wrap := rec.fault, rec.body
	rec.mu.Unlock()
	if fault != nil {
		if resp := fault(req, n); resp != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return resp, nil
		}
	}
	isPart := req.Method == http.MethodPut && strings.Contains(req.URL.RawQuery, "partNumber=")
	if isPart {
		bumpMax(&rec.maxParts, rec.inflightParts.Add(1))
		defer rec.inflightParts.Add(-1)
	}
	resp, err := rec.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if isPart && resp.StatusCode == http.StatusOK {
		rec.partsDone.Add(1)
	}
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/"+dataDir) {
		bumpMax(&rec.maxGets, rec.inflightGets.Add(1))
		resp.Body = &onClose{ReadCloser: resp.Body, fn: func() { rec.inflightGets.Add(-1) }}
	}
	if wrap != nil {
		resp.Body = wrap(req, n, resp.Body)
	}
	return resp, nil
}

func bumpMax(max *atomic.Int64, v int64) {
	for {
		m := max.Load()
		if v <= m || max.CompareAndSwap(m, v) {
			return
		}
	}
}

type onClose struct {
	io.ReadCloser
	once sync.Once
	fn   func()
}

func (c *onClose) Close() error {
	c.once.Do(c.fn)
	return c.ReadCloser.Close()
}

// requests returns the requests recorded so far that match keep.
func (rec *recorder) requests(keep func(request) bool) []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []request
	for _, r := range rec.reqs {
		if keep == nil || keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = nil
}

func (rec *recorder) setFault(f func(req *http.Request, n int) *http.Response) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.fault = f
}

func (rec *recorder) setBody(f func(req *http.Request, n int, body io.ReadCloser) io.ReadCloser) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.body = f
}

// env is one test's bucket on the shared MinIO server.
type env struct {
	srv    *miniotest.Server
	bucket string
	raw    *s3.Client // an independent client for inspecting the bucket
	rec    *recorder
}

var bucketSeq atomic.Int64

func newEnv(tb testing.TB) *env {
	tb.Helper()
	return newEnvOn(tb, miniotest.Require(tb))
}

// newEnvOn is newEnv on a server of the test's own.
func newEnvOn(tb testing.TB, srv *miniotest.Server) *env {
	tb.Helper()
	e := &env{
		srv:    srv,
		bucket: fmt.Sprintf("t%d-%x", bucketSeq.Add(1), rand.Uint32()),
		rec:    &recorder{base: srv.Transport()},
	}
	e.raw = s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: srv.Transport()},
	})
	if _, err := e.raw.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &e.bucket}); err != nil {
		tb.Fatalf("CreateBucket: %v", err)
	}
	return e
}

// config returns a Config for the env's bucket: 5 MiB parts, short
// backoffs, every request through the recorder.
func (e *env) config() Config {
	return Config{
		Bucket:      e.bucket,
		Prefix:      "ci/",
		Endpoint:    e.srv.Endpoint,
		Region:      e.srv.Region,
		PathStyle:   true,
		PartSize:    MinPartSize,
		Credentials: credentials.NewStaticCredentialsProvider(e.srv.AccessKey, e.srv.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: e.rec},
		MaxBackoff:  10 * time.Millisecond,
	}
}

func (e *env) store(tb testing.TB, edit func(*Config)) *Store {
	tb.Helper()
	cfg := e.config()
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

// objects lists the names under prefix with the independent client.
func (e *env) objects(tb testing.TB, prefix string) []string {
	tb.Helper()
	var names []string
	p := s3.NewListObjectsV2Paginator(e.raw, &s3.ListObjectsV2Input{Bucket: &e.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			tb.Fatalf("listing %q: %v", prefix, err)
		}
		for _, o := range page.Contents {
			names = append(names, *o.Key)
		}
	}
	return names
}

func (e *env) putRaw(tb testing.TB, name string, body []byte) {
	tb.Helper()
	_, err := e.raw.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &e.bucket, Key: &name, Body: bytes.NewReader(body),
	})
	if err != nil {
		tb.Fatalf("PutObject %q: %v", name, err)
	}
}

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
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

// readAll opens key and returns its bytes and Meta.
func readAll(tb testing.TB, s remote.Store, key string) ([]byte, error) {
	tb.Helper()
	rc, _, err := s.Open(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
