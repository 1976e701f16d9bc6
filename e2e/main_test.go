//go:build unix

// Package e2e runs the real tiercache binary against a real MinIO server on
// loopback, with real files.
//
// TestMain builds the binary once into a temporary directory. The MinIO
// server is started on first use by server(t) (internal/miniotest): when
// the binary is missing, tests skip with a message saying to run `make
// minio`, or fail when the CI environment variable is set. The helpers
// here (server, minioClient, bucket, newEnv, runCLI, recordingProxy) are
// shared by every test file of the package.
//
// The package builds on Unix only: MinIO and the fault-injection helpers
// (other users' credentials, signals, tmpfs) need it, and the Windows
// tests run under Wine, where MinIO cannot start.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/miniotest"
)

// binPath is the tiercache binary TestMain built.
var binPath string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	// The test binary re-executed as a child process (see
	// TestTieredOneDownloadForFourProcesses) does its part and exits.
	if os.Getenv(childEnv) == "hydrate" {
		return hydrateChild()
	}
	tmp, err := os.MkdirTemp("", "tiercache-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer fsutil.RemoveAll(tmp)
	binPath = filepath.Join(tmp, "tiercache")
	build := exec.Command("go", "build", "-o", binPath, "-ldflags", "-X main.version=e2e-test", "github.com/tiercache/tiercache/cmd/tiercache")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building tiercache: %v\n%s", err, out)
		return 1
	}
	return miniotest.Run(m)
}

// server returns the MinIO server shared by the package's tests, starting
// it on first use. It skips t when MinIO is not installed, unless CI is
// set, in which case it fails t.
func server(t testing.TB) *miniotest.Server {
	t.Helper()
	return miniotest.Require(t)
}

var (
	clientOnce sync.Once
	client     *minio.Client
	clientErr  error
)

// minioClient returns a minio-go client of the shared server: an
// independent S3 client to create buckets and inspect what tiercache
// really wrote.
func minioClient(t testing.TB) *minio.Client {
	t.Helper()
	srv := server(t)
	clientOnce.Do(func() {
		u, err := url.Parse(srv.Endpoint)
		if err != nil {
			clientErr = err
			return
		}
		client, clientErr = minio.New(u.Host, &minio.Options{
			Creds:  credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
			Secure: u.Scheme == "https",
			Region: srv.Region,
		})
	})
	if clientErr != nil {
		t.Fatalf("minio client: %v", clientErr)
	}
	return client
}

var bucketSeq atomic.Int64

// bucket creates a fresh, empty bucket for t and returns its name.
func bucket(t testing.TB) string {
	t.Helper()
	mc := minioClient(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("e2e-%d-%s", bucketSeq.Add(1), hex.EncodeToString(b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mc.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: server(t).Region}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// objects lists every object name in bucket under prefix, sorted.
func objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names []string
	for o := range minioClient(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s/%s: %v", bucket, prefix, o.Err)
		}
		names = append(names, o.Key)
	}
	slices.Sort(names)
	return names
}

// remotePrefix is the object prefix newEnv configures inside the bucket.
const remotePrefix = "cache/"

// env is the complete environment of a CLI run: the binary sees exactly
// these variables, so nothing of the developer's (AWS profiles, a real
// AWS_REGION) leaks in.
type env map[string]string

// newEnv returns the environment of a fresh machine: an empty local tier
// of its own, the shared MinIO as remote (bucket, prefix remotePrefix),
// and its credentials in the standard AWS variables.
func newEnv(t testing.TB, bucket string) env {
	t.Helper()
	srv := server(t)
	home := t.TempDir()
	return env{
		"HOME":                        home,
		"TIERCACHE_DIR":               filepath.Join(home, "cache"),
		"TIERCACHE_NO_SYNC":           "true",
		"TIERCACHE_REMOTE":            "s3://" + bucket + "/" + remotePrefix,
		"TIERCACHE_S3_ENDPOINT":       srv.Endpoint,
		"TIERCACHE_S3_PATH_STYLE":     "true",
		"AWS_ACCESS_KEY_ID":           srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY":       srv.SecretKey,
		"AWS_REGION":                  srv.Region,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "no-aws-credentials"),
	}
}

// with returns a copy of e with the given key, value pairs set; an empty
// value removes the variable.
func (e env) with(kv ...string) env {
	out := make(env, len(e)+len(kv)/2)
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// freshMachine returns e with a new, empty local tier: the same remote
// seen from another machine.
func (e env) freshMachine(t testing.TB) env {
	t.Helper()
	return e.with("TIERCACHE_DIR", filepath.Join(t.TempDir(), "cache"))
}

// runCLI runs the tiercache binary with args and exactly the environment
// e, and returns what it printed and its exit code. A run is bounded to
// two minutes.
func runCLI(t testing.TB, e env, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	return runCLIIn(t, "", e, args...)
}

// runCLIIn is runCLI in the working directory dir ("" for the test's).
func runCLIIn(t testing.TB, dir string, e env, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = make([]string, 0, len(e))
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
	default:
		t.Fatalf("running tiercache %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// mustRun is runCLI that fails t unless the exit code is 0.
func mustRun(t testing.TB, e env, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, e, args...)
	if code != 0 {
		t.Fatalf("tiercache %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, stderr
}

// requestLog records the requests a recordingProxy forwarded.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD /path?query"
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.RequestURI())
}

// all returns the requests so far.
func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// writes returns the requests so far that are not GET or HEAD.
func (l *requestLog) writes() []string {
	var w []string
	for _, r := range l.all() {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			w = append(w, r)
		}
	}
	return w
}

// recordingProxy starts a reverse proxy to the shared MinIO that records
// every request, and returns its endpoint. Requests keep their Host
// header, so signatures made for the proxy's address verify at MinIO.
func recordingProxy(t testing.TB) (endpoint string, log *requestLog) {
	t.Helper()
	target, err := url.Parse(server(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	log = &requestLog{}
	rp := httputil.NewSingleHostReverseProxy(target)
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	return ps.URL, log
}
