//go:build unix

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote/s3"
	"github.com/tiercache/tiercache/tiered"
)

// The fault tests drive push and pull through a faultProxy. Every case
// either succeeds by retrying or resuming, or fails with an error naming
// the key within faultBound; then no tier holds a torn entry, no multipart
// upload is left, and a clean push or pull works.
const (
	// faultBound is how long a faulted push or pull may take: generous,
	// since the point is that it ends, not how fast.
	faultBound = 60 * time.Second
	// faultIdle is the stores' IdleTimeout: short, so stalls cost little,
	// yet far above anything loopback MinIO takes to answer.
	faultIdle     = 1500 * time.Millisecond
	faultAttempts = 3
	faultPartSize = 5 << 20
	// faultBlobSize makes a "big" tree's archive two parts and two ranges.
	faultBlobSize = faultPartSize + 1<<20
)

// faultStore returns an S3 store of bucket reached at endpoint (the
// proxy, or MinIO itself), with small parts, few attempts and short
// backoffs and timeouts.
func faultStore(t testing.TB, bucket, endpoint string) *s3.Store {
	t.Helper()
	srv := server(t)
	store, err := s3.New(t.Context(), s3.Config{
		Bucket:         bucket,
		Prefix:         remotePrefix,
		Region:         srv.Region,
		Endpoint:       endpoint,
		PathStyle:      true,
		PartSize:       faultPartSize,
		Concurrency:    2,
		MaxAttempts:    faultAttempts,
		MaxBackoff:     50 * time.Millisecond,
		IdleTimeout:    faultIdle,
		RequestTimeout: 30 * time.Second,
		Credentials:    credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// faultMachine is a machine with a fresh local tier whose remote is
// bucket at endpoint.
func faultMachine(t testing.TB, bucket, endpoint string) *tiered.Cache {
	t.Helper()
	l, err := local.Open(filepath.Join(t.TempDir(), "cache"), local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tiered.New(l, tiered.Options{Remote: faultStore(t, bucket, endpoint)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// faultTree builds a tagged tree. A big one holds an incompressible
// file, so its archive is a two-part upload and a two-range download.
func faultTree(t testing.TB, tag string, big bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src-"+tag)
	treetest.Small(t, dir, 20, tag)
	if big {
		var seed [32]byte
		copy(seed[:], tag)
		blob := make([]byte, faultBlobSize)
		_, _ = rand.NewChaCha8(seed).Read(blob)
		if err := os.WriteFile(filepath.Join(dir, "blob.bin"), blob, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// faultSameTree fails t unless the trees at want and got are equal.
func faultSameTree(t testing.TB, what, want, got string) {
	t.Helper()
	diffs, err := treetest.Diff(want, got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(diffs) > 0 {
		t.Fatalf("%s: torn or wrong tree, %d differences: %q", what, len(diffs), diffs[:min(len(diffs), 5)])
	}
}

// faultCheckLocal fails t unless l holds no entry for key or one equal to src
// (a push stores locally before it uploads).
func faultCheckLocal(t testing.TB, l *local.Cache, key, src string) {
	t.Helper()
	p, ok, err := l.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("local tier: get %q: %v", key, err)
	}
	if ok {
		faultSameTree(t, "local entry", src, p)
	}
}

// faultCheckRemote pulls key straight from MinIO on a fresh machine. With
// want "", the remote must miss; otherwise its tree must equal want.
func faultCheckRemote(t testing.TB, bucket, key, want string) {
	t.Helper()
	c := faultMachine(t, bucket, server(t).Endpoint)
	p, ok, err := c.Get(t.Context(), key)
	switch {
	case err != nil:
		t.Fatalf("remote: fresh pull of %q: %v", key, err)
	case want == "" && ok:
		t.Fatalf("remote: %q committed by a push that failed", key)
	case want != "" && !ok:
		t.Fatalf("remote: %q missing", key)
	case ok:
		faultSameTree(t, "remote entry", want, p)
	}
}

// faultCheckUploads fails t if bucket holds unfinished multipart uploads.
func faultCheckUploads(t testing.TB, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for u := range minioClient(t).ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("listing uploads: %v", u.Err)
		}
		t.Errorf("multipart upload left: %s (%s)", u.Key, u.UploadID)
	}
}

// faultCase is one fault scenario.
type faultCase struct {
	name  string
	big   bool        // a multipart tree rather than a one-request one
	rules []faultRule // installed on the proxy for the faulted operation
	// fail says the operation must fail; else it must succeed.
	fail bool
	// errHas are substrings a failure's error must contain besides the
	// quoted key; errIs, if set, must match it.
	errHas []string
	errIs  error
	// sent, if set, counts requests after the faulted operation: for
	// each entry, the requests faultCount matches with the entry's key
	// must number exactly its value (proving a retry, or its absence).
	sent map[string]int
}

// faultCount returns how many requests p saw, faulted ones included,
// whose "METHOD /object/name?query" contains sub (the path without the
// bucket, so faultDataPath and faultManifestPath can follow the method).
func faultCount(p *faultProxy, sub string) int {
	n := 0
	for _, r := range p.requests() {
		_, object, _ := strings.Cut(strings.TrimPrefix(r.path, "/"), "/")
		if strings.Contains(r.method+" /"+object+"?"+r.query, sub) {
			n++
		}
	}
	return n
}

// install adds tc's rules to p and returns them, for their counts.
func (tc faultCase) install(p *faultProxy) []*faultRule {
	rs := make([]*faultRule, len(tc.rules))
	for i, r := range tc.rules {
		rs[i] = p.add(r)
	}
	return rs
}

// checkOutcome checks the faulted operation's result, duration, fired
// rules and request counts.
func (tc faultCase) checkOutcome(t *testing.T, p *faultProxy, rs []*faultRule, key string, err error, took time.Duration) {
	t.Helper()
	if took > faultBound {
		t.Errorf("took %v, want under %v", took, faultBound)
	}
	for i, r := range rs {
		if p.firedCount(r) == 0 {
			t.Errorf("rule %d (%+v) never fired: the fault was not exercised; requests: %v", i, tc.rules[i], p.requests())
		}
	}
	switch {
	case !tc.fail && err != nil:
		t.Fatalf("want success by retrying, got %v\nrequests: %v", err, p.requests())
	case tc.fail && err == nil:
		t.Fatalf("want an error; requests: %v", p.requests())
	case tc.fail:
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("%q", key)) {
			t.Errorf("error does not name key %q: %v", key, err)
		}
		for _, s := range tc.errHas {
			if !strings.Contains(msg, s) {
				t.Errorf("error does not say %q: %v", s, err)
			}
		}
		if tc.errIs != nil && !errors.Is(err, tc.errIs) {
			t.Errorf("error is not %v: %v", tc.errIs, err)
		}
	}
	for sub, want := range tc.sent {
		if n := faultCount(p, sub); n != want {
			t.Errorf("%d requests %q, want %d; requests: %v", n, sub, want, p.requests())
		}
	}
}

// Path substrings the rules and counts match: data objects (the archive,
// uploaded whole or in parts, and its ranges) and manifests.
const (
	faultDataPath     = "/" + remotePrefix + "data/"
	faultManifestPath = "/" + remotePrefix + "manifests/"
)

func TestFaultsPush(t *testing.T) {
	cases := []faultCase{
		{
			name:  "reset mid upload part",
			big:   true,
			rules: []faultRule{{method: "PUT", path: faultDataPath, query: "partNumber=2", times: 1, fault: faultSpec{kind: fResetRequest, n: 256 << 10}}},
			sent:  map[string]int{"partNumber=2": 2},
		},
		{
			name:  "reset mid single-request upload",
			rules: []faultRule{{method: "PUT", path: faultDataPath, query: "x-id=PutObject", times: 1, fault: faultSpec{kind: fResetRequest, n: 100}}},
		},
		{
			name:  "503 SlowDown on upload part",
			big:   true,
			rules: []faultRule{{method: "PUT", path: faultDataPath, query: "partNumber=1", times: 2, fault: faultSlowDown()}},
			sent:  map[string]int{"partNumber=1": 3},
		},
		{
			name:  "500 on manifest put",
			rules: []faultRule{{method: "PUT", path: faultManifestPath, times: 2, fault: faultInternal()}},
			sent:  map[string]int{"PUT " + faultManifestPath: 3},
		},
		{
			name:  "503 SlowDown on manifest get",
			rules: []faultRule{{method: "GET", path: faultManifestPath, times: 2, fault: faultSlowDown()}},
		},
		{
			name:  "lost answer to create upload",
			big:   true,
			rules: []faultRule{{method: "POST", path: faultDataPath, query: "uploads", times: 1, fault: faultSpec{kind: fResetResponse}}},
		},
		{
			name:  "lost answer to complete upload",
			big:   true,
			rules: []faultRule{{method: "POST", path: faultDataPath, query: "uploadId=", times: 1, fault: faultSpec{kind: fResetResponse}}},
		},
		{
			name:  "latency",
			big:   true,
			rules: []faultRule{{times: -1, fault: faultSpec{kind: fLatency, delay: 200 * time.Millisecond}}},
		},
		{
			name:  "stall on upload part",
			big:   true,
			rules: []faultRule{{method: "PUT", path: faultDataPath, query: "partNumber=2", times: 1, fault: faultSpec{kind: fStall}}},
			sent:  map[string]int{"partNumber=2": 2},
		},
		{
			name:   "stall on every upload of a part",
			big:    true,
			rules:  []faultRule{{method: "PUT", path: faultDataPath, query: "partNumber=2", times: -1, fault: faultSpec{kind: fStall}}},
			fail:   true,
			errHas: []string{"stalled", "not retried"},
			// Two silent attempts in a row end it (a dead server).
			sent: map[string]int{"partNumber=2": 2},
		},
		{
			name:   "403 on upload part is not retried",
			big:    true,
			rules:  []faultRule{{method: "PUT", path: faultDataPath, query: "partNumber=1", times: -1, fault: faultDenied()}},
			fail:   true,
			errIs:  s3.ErrAccessDenied,
			errHas: []string{"access denied"},
			sent:   map[string]int{"partNumber=1": 1},
		},
		{
			name:   "every attempt of the manifest put fails",
			rules:  []faultRule{{method: "PUT", path: faultManifestPath, times: -1, fault: faultSlowDown()}},
			fail:   true,
			errHas: []string{"SlowDown"},
			sent:   map[string]int{"PUT " + faultManifestPath: faultAttempts},
		},
		{
			name:  "every attempt of a part is reset",
			big:   true,
			rules: []faultRule{{method: "PUT", path: faultDataPath, query: "partNumber=1", times: -1, fault: faultSpec{kind: fResetRequest, n: 64 << 10}}},
			fail:  true,
			sent:  map[string]int{"partNumber=1": faultAttempts},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const key = "push-key"
			b := bucket(t)
			p := newFaultProxy(t)
			m := faultMachine(t, b, p.URL)
			src := faultTree(t, "v1", tc.big)

			rs := tc.install(p)
			start := time.Now()
			res, err := m.PutResult(t.Context(), key, src, "faulted push")
			if err == nil && res.RemoteErr != nil {
				// The push survived the remote: it is the failure to check.
				err = res.RemoteErr
			}
			tc.checkOutcome(t, p, rs, key, err, time.Since(start))
			p.clear()

			if tc.fail && !tiered.IsRemote(err) {
				t.Errorf("the upload's failure is not a RemoteError: %v", err)
			}
			if _, ok, err := m.Local().Get(t.Context(), key); tc.fail && (err != nil || !ok) {
				t.Errorf("a push whose upload failed kept no local copy: %v %v", ok, err)
			}
			faultCheckLocal(t, m.Local(), key, src)
			faultCheckUploads(t, b)
			if tc.fail {
				faultCheckRemote(t, b, key, "")
				if objs := dataObjects(t, b); len(objs) != 0 {
					t.Errorf("data objects left by the failed push: %q", objs)
				}
			} else {
				faultCheckRemote(t, b, key, src)
			}

			// A clean push of a new version works, and is what a fresh
			// machine pulls.
			src2 := faultTree(t, "v2", tc.big)
			if _, err := m.Put(t.Context(), key, src2, "clean push"); err != nil {
				t.Fatalf("clean push after the fault: %v", err)
			}
			faultCheckRemote(t, b, key, src2)
			faultCheckUploads(t, b)
		})
	}
}

func TestFaultsPull(t *testing.T) {
	cases := []faultCase{
		{
			name:  "reset mid download body",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 1, fault: faultSpec{kind: fResetResponse, n: 1 << 20}}},
			sent:  map[string]int{"GET " + faultDataPath: 3}, // two ranges, one resumed
		},
		{
			name:  "truncated download body",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 1, fault: faultSpec{kind: fTruncate, n: 512 << 10}}},
			sent:  map[string]int{"GET " + faultDataPath: 3},
		},
		{
			name:  "503 SlowDown on download",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 2, fault: faultSlowDown()}},
		},
		{
			name:  "500 on manifest get",
			rules: []faultRule{{method: "GET", path: faultManifestPath, times: 2, fault: faultInternal()}},
			sent:  map[string]int{"GET " + faultManifestPath: 3},
		},
		{
			name:  "reset mid manifest body",
			rules: []faultRule{{method: "GET", path: faultManifestPath, times: 1, fault: faultSpec{kind: fResetResponse, n: 20}}},
			sent:  map[string]int{"GET " + faultManifestPath: 2},
		},
		{
			name:  "truncated manifest body",
			rules: []faultRule{{method: "GET", path: faultManifestPath, times: 1, fault: faultSpec{kind: fTruncate, n: 20}}},
			sent:  map[string]int{"GET " + faultManifestPath: 2},
		},
		{
			name:  "latency",
			big:   true,
			rules: []faultRule{{times: -1, fault: faultSpec{kind: fLatency, delay: 200 * time.Millisecond}}},
		},
		{
			name:  "stall before the download answers",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 1, fault: faultSpec{kind: fStall}}},
		},
		{
			name:  "stall mid download body",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 1, fault: faultSpec{kind: fStallBody, n: 1 << 20}}},
			sent:  map[string]int{"GET " + faultDataPath: 3},
		},
		{
			name:   "stall on every download",
			rules:  []faultRule{{method: "GET", path: faultDataPath, times: -1, fault: faultSpec{kind: fStall}}},
			fail:   true,
			errHas: []string{"stalled", "not retried"},
			sent:   map[string]int{"GET " + faultDataPath: 2},
		},
		{
			name:   "stall mid every download body",
			big:    true,
			rules:  []faultRule{{method: "GET", path: faultDataPath, times: -1, fault: faultSpec{kind: fStallBody, n: 64 << 10}}},
			fail:   true,
			errHas: []string{"stalled"},
		},
		{
			name:   "truncated every download body",
			big:    true,
			rules:  []faultRule{{method: "GET", path: faultDataPath, times: -1, fault: faultSpec{kind: fTruncate, n: 64 << 10}}},
			fail:   true,
			errHas: []string{"interrupted"},
		},
		{
			name:   "403 on download is not retried",
			rules:  []faultRule{{method: "GET", path: faultDataPath, times: -1, fault: faultDenied()}},
			fail:   true,
			errIs:  s3.ErrAccessDenied,
			errHas: []string{"access denied"},
			sent:   map[string]int{"GET " + faultDataPath: 1},
		},
		{
			name:   "every attempt of the download fails",
			big:    true,
			rules:  []faultRule{{method: "GET", path: faultDataPath, times: -1, fault: faultInternal()}},
			fail:   true,
			errHas: []string{"InternalError"},
			sent:   map[string]int{"GET " + faultDataPath: faultAttempts},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const key = "pull-key"
			b := bucket(t)
			src := faultTree(t, "v1", tc.big)
			if _, err := faultMachine(t, b, server(t).Endpoint).Put(t.Context(), key, src, "clean push"); err != nil {
				t.Fatal(err)
			}
			p := newFaultProxy(t)
			m := faultMachine(t, b, p.URL)

			rs := tc.install(p)
			start := time.Now()
			got, ok, err := m.Get(t.Context(), key)
			tc.checkOutcome(t, p, rs, key, err, time.Since(start))
			p.clear()
			switch {
			case !tc.fail && !ok:
				t.Fatal("a miss, want a hit")
			case !tc.fail:
				faultSameTree(t, "pulled tree", src, got)
			case ok:
				t.Fatal("a failed pull reported a hit")
			}
			if tc.fail {
				if es, err := m.Local().List(t.Context()); err != nil || len(es) != 0 {
					t.Errorf("local entries after a failed pull: %v, %v", es, err)
				}
			}
			faultCheckLocal(t, m.Local(), key, src)
			faultCheckRemote(t, b, key, src)

			// A clean pull through the proxy works, on this machine and
			// on a fresh one.
			for _, c := range []*tiered.Cache{m, faultMachine(t, b, p.URL)} {
				got, ok, err := c.Get(t.Context(), key)
				if err != nil || !ok {
					t.Fatalf("clean pull after the fault: ok=%v err=%v", ok, err)
				}
				faultSameTree(t, "clean pull", src, got)
			}
		})
	}
}

// faultCLIEnv is env e with its S3 endpoint the proxy and the idle
// timeout of the library tests. The CLI has no setting for attempts or
// backoff (the store's own retryer ignores AWS_MAX_ATTEMPTS), so the
// cases below fail with errors whose backoff is short (not SlowDown).
func faultCLIEnv(e env, p *faultProxy) env {
	return e.with(
		"TIERCACHE_S3_ENDPOINT", p.URL,
		"TIERCACHE_S3_IDLE_TIMEOUT", faultIdle.String(),
		// Failures exit 1 instead of warning, so each is checked
		// like the library's error; the soft default has its own tests.
		"TIERCACHE_STRICT", "true",
	)
}

// TestFaultsCLI runs a representative subset through the real binary.
func TestFaultsCLI(t *testing.T) {
	cases := []faultCase{
		{
			name:  "push: reset mid upload",
			rules: []faultRule{{method: "PUT", path: faultDataPath, times: 1, fault: faultSpec{kind: fResetRequest, n: 100}}},
			sent:  map[string]int{"PUT " + faultDataPath: 2},
		},
		{
			name:  "push: 503 SlowDown on manifest put",
			rules: []faultRule{{method: "PUT", path: faultManifestPath, times: 1, fault: faultSlowDown()}},
			sent:  map[string]int{"PUT " + faultManifestPath: 2},
		},
		{
			name:  "push: lost answer to manifest put",
			rules: []faultRule{{method: "PUT", path: faultManifestPath, times: 1, fault: faultSpec{kind: fResetResponse}}},
		},
		{
			name:   "push: every attempt fails",
			rules:  []faultRule{{method: "PUT", path: faultDataPath, times: -1, fault: faultInternal()}},
			fail:   true,
			errHas: []string{"InternalError"},
			sent:   map[string]int{"PUT " + faultDataPath: s3.DefaultMaxAttempts},
		},
		{
			name:  "pull: reset mid download body",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 1, fault: faultSpec{kind: fResetResponse, n: 1 << 20}}},
			sent:  map[string]int{"GET " + faultDataPath: 2},
		},
		{
			name:  "pull: truncated download body",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 1, fault: faultSpec{kind: fTruncate, n: 1 << 20}}},
			sent:  map[string]int{"GET " + faultDataPath: 2},
		},
		{
			name:  "pull: stall mid download body",
			big:   true,
			rules: []faultRule{{method: "GET", path: faultDataPath, times: 1, fault: faultSpec{kind: fStallBody, n: 1 << 20}}},
			sent:  map[string]int{"GET " + faultDataPath: 2},
		},
		{
			name:   "pull: stall on every download",
			rules:  []faultRule{{method: "GET", path: faultDataPath, times: -1, fault: faultSpec{kind: fStall}}},
			fail:   true,
			errHas: []string{"stalled", "not retried"},
			sent:   map[string]int{"GET " + faultDataPath: 2},
		},
		{
			name:   "pull: 403 on manifest is not retried",
			rules:  []faultRule{{method: "GET", path: faultManifestPath, times: -1, fault: faultDenied()}},
			fail:   true,
			errHas: []string{"access denied"},
			sent:   map[string]int{"GET " + faultManifestPath: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const key = "cli-key"
			push := strings.HasPrefix(tc.name, "push:")
			b := bucket(t)
			p := newFaultProxy(t)
			e := newEnv(t, b)
			src := faultTree(t, "v1", tc.big)
			if !push {
				mustRun(t, e, "push", "-q", key, src)
			}
			fe := faultCLIEnv(e.freshMachine(t), p)
			dst := filepath.Join(t.TempDir(), "dst")

			rs := tc.install(p)
			args := []string{"push", "-q", key, src}
			if !push {
				args = []string{"pull", "-q", key, dst}
			}
			start := time.Now()
			_, stderr, code := runCLI(t, fe, args...)
			took := time.Since(start)
			var err error
			if code != 0 {
				err = fmt.Errorf("exit %d: %s", code, stderr)
				if code != 1 {
					t.Errorf("exit code %d, want 1 for a failure", code)
				}
			}
			tc.checkOutcome(t, p, rs, key, err, took)
			p.clear()
			if code == 0 && stderr != "" {
				// -q prints errors only: a retried fault is not one, and
				// nothing (the AWS SDK's logger, say) may print about it.
				t.Errorf("quiet run that succeeded printed on stderr: %q", stderr)
			}

			l, lerr := local.Open(fe["TIERCACHE_DIR"], local.Options{NoSync: true})
			if lerr != nil {
				t.Fatal(lerr)
			}
			faultCheckLocal(t, l, key, src)
			faultCheckUploads(t, b)
			switch {
			case push && tc.fail:
				faultCheckRemote(t, b, key, "")
			default:
				faultCheckRemote(t, b, key, src)
			}
			if !push && !tc.fail {
				faultSameTree(t, "pulled tree", src, dst)
			}

			// The next clean run through the proxy works.
			if push {
				mustRun(t, fe, "push", "-q", key, src)
				faultCheckRemote(t, b, key, src)
			} else {
				dst2 := filepath.Join(t.TempDir(), "dst2")
				mustRun(t, fe, "pull", "-q", key, dst2)
				faultSameTree(t, "clean pull", src, dst2)
			}
		})
	}
}

// TestFaultProxyPassesThrough checks the proxy itself: without rules it
// forwards every request unchanged (signatures verify, bodies arrive
// whole) and records them.
func TestFaultProxyPassesThrough(t *testing.T) {
	b := bucket(t)
	p := newFaultProxy(t)
	m := faultMachine(t, b, p.URL)
	src := faultTree(t, "v1", true)
	if _, err := m.Put(t.Context(), "k", src, ""); err != nil {
		t.Fatal(err)
	}
	got, ok, err := faultMachine(t, b, p.URL).Get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("pull through the proxy: ok=%v err=%v", ok, err)
	}
	faultSameTree(t, "pulled tree", src, got)
	if n := faultCount(p, "partNumber="); n != 2 {
		t.Errorf("%d part uploads recorded, want 2: %v", n, p.requests())
	}
	if n := p.count("GET", faultDataPath); n != 2 {
		t.Errorf("%d range GETs recorded, want 2: %v", n, p.requests())
	}
	for _, r := range p.requests() {
		if r.fault != "" {
			t.Errorf("fault applied without a rule: %v", r)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := minioClient(t).StatObject(ctx, b, remotePrefix+"manifests/k.json", minio.StatObjectOptions{}); err != nil {
		t.Errorf("manifest not where the layout says: %v", err)
	}
}
