package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tiercache/tiercache/internal/miniotest"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// TestNotS3Answers200: a server that answers 200 to every request with
// a body that is no S3 answer (a health check's "OK", JSON, nothing: a
// reverse proxy or another service on the port given) is not S3. Each
// operation must say so, not find an empty bucket, a damaged manifest
// or, worst, report an upload of which nothing was stored.
func TestNotS3Answers200(t *testing.T) {
	answers := map[string]struct {
		answer func(http.ResponseWriter, *http.Request)
		shown  string // what the error quotes of a listing's body
	}{
		"text": {func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, "OK\n")
		}, `HTTP 200 text/plain`},
		"JSON": {func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"healthy"}`)
		}, `HTTP 200 application/json`},
		"empty": {func(http.ResponseWriter, *http.Request) {}, `HTTP 200`},
	}
	big := randBytes(5, MinPartSize+10)
	ops := map[string]func(s *Store) error{
		"List": func(s *Store) error { _, err := s.List(bg, ""); return err },
		"Stat": func(s *Store) error { _, err := s.Stat(bg, "k"); return err },
		"Open": func(s *Store) error {
			rc, _, err := s.Open(bg, "k")
			if err == nil {
				rc.Close()
			}
			return err
		},
		"Put": func(s *Store) error {
			_, err := s.Put(bg, remote.Meta{Key: "k", Size: 5, Files: 1}, strings.NewReader("hello"))
			return err
		},
		"Put multipart": func(s *Store) error {
			_, err := s.Put(bg, remote.Meta{Key: "k", Size: 5, Files: 1}, bytes.NewReader(big))
			return err
		},
		"Prune": func(s *Store) error { _, err := s.Prune(bg, policy.Limits{MaxEntries: 1}); return err },
	}
	for name, a := range answers {
		for opName, op := range ops {
			t.Run(name+"/"+opName, func(t *testing.T) {
				endpoint, reqs := notS3Server(t, a.answer)
				s, err := New(bg, Config{
					Bucket: "b", Region: "us-east-1", Endpoint: endpoint, MaxBackoff: time.Millisecond,
					PartSize:    MinPartSize,
					Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
				})
				if err != nil {
					t.Fatal(err)
				}
				err = op(s)
				if !errors.Is(err, ErrNotS3) || errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, tiercache.ErrNotFound) {
					t.Fatalf("%s: %v, want ErrNotS3", opName, err)
				}
				host := strings.TrimPrefix(endpoint, "http://")
				for _, want := range []string{host + " is not an S3 endpoint (it answered " + a.shown, "check --endpoint"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				// Not retried: one request, or List's two listings.
				if n := reqs.Load(); n < 1 || n > 2 {
					t.Errorf("%d requests, want 1 or 2", n)
				}
			})
		}
	}
}

// TestNotS3Answer200Message: the error names what was missing and quotes
// the start of a document that was not S3's, escaped.
func TestNotS3Answer200Message(t *testing.T) {
	cases := map[string]struct {
		answer func(http.ResponseWriter, *http.Request)
		op     func(s *Store) error
		want   string
	}{
		"listing": {func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "\x1b[31mhealthy\x1b[0m "+strings.Repeat("z", 100))
		}, func(s *Store) error { _, err := s.List(bg, ""); return err },
			// 64 characters, the escape's byte counting as one.
			`(it answered HTTP 200 text/plain, not as S3 does: a ListObjectsV2 answer with no ListBucketResult document, a body starting "\x1b[31mhealthy\x1b[0m ` +
				strings.Repeat("z", 64-17) + `"); check --endpoint`},
		"XML of another kind": {func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<?xml version="1.0"?><health><status>ok</status></health>`)
		}, func(s *Store) error { _, err := s.List(bg, ""); return err },
			`a ListObjectsV2 answer with no ListBucketResult document, a body starting "<?xml`},
		"upload": {func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		}, func(s *Store) error {
			_, err := s.Put(bg, remote.Meta{Key: "k", Size: 5, Files: 1}, strings.NewReader("hello"))
			return err
		}, `(it answered HTTP 200, not as S3 does: a PutObject answer with no ETag header); check --endpoint`},
		"manifest with an ETag only": {func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("ETag", `W/"2-nZ"`)
			fmt.Fprint(w, "ok")
		}, func(s *Store) error { _, err := s.Stat(bg, "k"); return err },
			`a GetObject answer with no Last-Modified header`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			endpoint, _ := notS3Server(t, c.answer)
			s, err := New(bg, Config{
				Bucket: "b", Region: "us-east-1", Endpoint: endpoint, MaxBackoff: time.Millisecond,
				Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
			})
			if err != nil {
				t.Fatal(err)
			}
			err = c.op(s)
			if !errors.Is(err, ErrNotS3) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v; want ErrNotS3 saying %q", err, c.want)
			}
		})
	}
}

// TestS3Answers200WithoutRequestID: an S3-compatible server that sends
// no request ID (as R2 and GCS do not) but answers as S3 does is not
// taken for a wrong endpoint: an empty listing (with a byte order mark,
// a declaration, a comment and a namespace before its root), a Put.
func TestS3Answers200WithoutRequestID(t *testing.T) {
	endpoint, _ := notS3Server(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, "\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- page -->\n"+
				`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`)
		case r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
		case r.Method == http.MethodPut:
			w.Header().Set("ETag", `"5d41402abc4b2a76b9719d911017c592"`)
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	})
	s, err := New(bg, Config{
		Bucket: "b", Region: "us-east-1", Endpoint: endpoint, MaxBackoff: time.Millisecond,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.List(bg, ""); err != nil || len(l) != 0 {
		t.Errorf("List = %v, %v; want an empty listing", l, err)
	}
	if _, err := s.Put(bg, remote.Meta{Key: "k", Size: 5, Files: 1}, strings.NewReader("hello")); err != nil {
		t.Errorf("Put: %v", err)
	}
}

// seenAnswer is a 2xx answer of a real server to an SDK operation.
type seenAnswer struct {
	op       string
	header   http.Header
	body     []byte // the start of a document's (see s3Success)
	hasReqID bool
}

// TestRealServersAnswerAsS3Does: MinIO's and versitygw's 2xx answers to
// every operation that s3Success judges carry what it requires, even
// judged without the request ID that exempts them.
func TestRealServersAnswerAsS3Does(t *testing.T) {
	servers := map[string]func(testing.TB) *miniotest.Server{
		"MinIO":     func(tb testing.TB) *miniotest.Server { return miniotest.Require(tb) },
		"versitygw": requireVersityGW,
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, start(t))
			var (
				mu   sync.Mutex
				seen []seenAnswer
			)
			next := &http.Client{Transport: e.rec}
			s := e.store(t, func(c *Config) {
				c.HTTPClient = clientFunc(func(r *http.Request) (*http.Response, error) {
					resp, err := next.Do(r)
					if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
						return resp, err
					}
					a := seenAnswer{op: awsmiddleware.GetOperationName(r.Context()), header: resp.Header.Clone(), hasReqID: hasS3Headers(resp.Header)}
					if s3Success[a.op].root != "" {
						b, err := io.ReadAll(resp.Body)
						_ = resp.Body.Close()
						if err != nil {
							return nil, err
						}
						a.body = b
						resp.Body = io.NopCloser(bytes.NewReader(b))
					}
					mu.Lock()
					seen = append(seen, a)
					mu.Unlock()
					return resp, nil
				})
			})
			small, big := []byte("small archive"), randBytes(9, 2*MinPartSize+7)
			for k, data := range map[string][]byte{"small": small, "big": big, "empty": nil} {
				if _, err := s.Put(bg, remote.Meta{Key: k, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
					t.Fatalf("Put %s: %v", k, err)
				}
				if got, err := readAll(t, s, k); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("reading %s back: %v", k, err)
				}
			}
			if err := s.Touch(bg, "small"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Stat(bg, "small"); err != nil {
				t.Fatal(err)
			}
			if l, err := s.List(bg, ""); err != nil || len(l) != 3 {
				t.Fatalf("List = %d entries, %v; want 3", len(l), err)
			}
			if _, err := s.Prune(bg, policy.Limits{MaxEntries: 10}); err != nil {
				t.Fatal(err)
			}

			judged := map[string]bool{}
			for _, a := range seen {
				if lacks := notS3Success(a.op, a.header, a.body); lacks != "" {
					t.Errorf("%s answered %s with %s (request ID sent: %t): headers %v, body %.200q", name, a.op, lacks, a.hasReqID, a.header, a.body)
				}
				judged[a.op] = true
			}
			for op := range s3Success {
				if !judged[op] {
					t.Errorf("no 2xx answer to %s seen: the test does not cover it", op)
				}
			}
			reqIDs := slices.ContainsFunc(seen, func(a seenAnswer) bool { return a.hasReqID })
			t.Logf("%s: %d answers judged, request IDs sent: %t", name, len(seen), reqIDs)
		})
	}
}
