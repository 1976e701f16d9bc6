//go:build unix

package main

// MinIO cannot be started from inside Wine, so this runs on Unix only.

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/miniotest"
)

// outageDeadline bounds one CLI run against a failing remote: a run that
// takes longer hangs, which the promise of a slow build (never a stuck
// one) rules out.
const outageDeadline = 60 * time.Second

// boundedCLI runs tiercache as cli does, failing the test if the run
// does not end within outageDeadline.
func boundedCLI(t *testing.T, e env, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() {
		var stdout, stderr strings.Builder
		code := run(context.Background(), args, &stdout, &stderr, func(k string) string { return e[k] })
		done <- result{stdout.String(), stderr.String(), code}
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(outageDeadline):
		t.Fatalf("tiercache %s did not end within %v", strings.Join(args, " "), outageDeadline)
		return result{}
	}
}

// isolateAWSEnv gives the SDK, which reads the process environment, an
// AWS environment of the test's own: no instance metadata service, no
// profile, no CA bundle or endpoint of the machine, and the static
// credentials given (none if empty).
func isolateAWSEnv(t *testing.T, accessKey, secretKey string) {
	t.Helper()
	for _, k := range []string{
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_CA_BUNDLE",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// refusedEndpoint is a loopback address nothing listens on.
func refusedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// silentEndpoint accepts connections and never answers nor closes them
// until the test ends.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				c.Close()
			}
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return "http://" + l.Addr().String()
}

// answering is a web server answering every request with answer.
func answering(t *testing.T, answer http.HandlerFunc) string {
	t.Helper()
	return quietServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		answer(w, r)
	}).URL
}

// quietServer starts h over HTTP, or HTTPS with a certificate of its
// own, logging nothing (a refused handshake is the point of some tests).
func quietServer(t *testing.T, useTLS bool, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// faultProxy forwards to target the requests fault leaves alone, and
// lets fault fail the others: it returns true when it answered r.
func faultProxy(t *testing.T, target string, fault func(w http.ResponseWriter, r *http.Request, proxy http.Handler) bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	return quietServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		if !fault(w, r, proxy) {
			proxy.ServeHTTP(w, r)
		}
	}).URL
}

// isData tells a request for an archive (a data object) of method.
func isData(r *http.Request, method string) bool {
	return r.Method == method && strings.Contains(r.URL.Path, "/data/")
}

// resetUpload resets the connection of an archive's upload once a
// little of its body has arrived.
func resetUpload(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
	if !isData(r, http.MethodPut) && !isData(r, http.MethodPost) {
		return false
	}
	_, _ = io.CopyN(io.Discard, r.Body, 100)
	reset(w)
	return true
}

// resetDownload passes on the headers and the first bytes of an
// archive's download, then resets the connection.
func resetDownload(w http.ResponseWriter, r *http.Request, proxy http.Handler) bool {
	if !isData(r, http.MethodGet) {
		return false
	}
	proxy.ServeHTTP(&cutWriter{ResponseWriter: w, then: func() { reset(w) }}, r)
	return true
}

// stallDownload passes on the headers and the first bytes of an
// archive's download, then sends nothing more until the client leaves.
func stallDownload(w http.ResponseWriter, r *http.Request, proxy http.Handler) bool {
	if !isData(r, http.MethodGet) {
		return false
	}
	proxy.ServeHTTP(&cutWriter{ResponseWriter: w, then: func() { <-r.Context().Done() }}, r)
	return true
}

// trickleDownload passes on an archive's download 8 bytes every 100ms.
func trickleDownload(w http.ResponseWriter, r *http.Request, proxy http.Handler) bool {
	if !isData(r, http.MethodGet) {
		return false
	}
	proxy.ServeHTTP(&trickleWriter{ResponseWriter: w, ctx: r.Context()}, r)
	return true
}

// trickleUpload takes an archive's upload 8 bytes every 100ms, and
// answers nothing until the client leaves.
func trickleUpload(_ http.ResponseWriter, r *http.Request, _ http.Handler) bool {
	if !isData(r, http.MethodPut) && !isData(r, http.MethodPost) {
		return false
	}
	for r.Context().Err() == nil {
		if _, err := io.CopyN(io.Discard, r.Body, 8); err != nil {
			<-r.Context().Done()
		}
		trickleWait(r.Context())
	}
	return true
}

func trickleWait(ctx context.Context) {
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
	}
}

// trickleWriter writes a body 8 bytes every 100ms.
type trickleWriter struct {
	http.ResponseWriter
	ctx context.Context
}

func (c *trickleWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if err := c.ctx.Err(); err != nil {
			return n, err
		}
		m, err := c.ResponseWriter.Write(p[n:min(n+8, len(p))])
		n += m
		if err != nil {
			return n, err
		}
		_ = http.NewResponseController(c.ResponseWriter).Flush()
		trickleWait(c.ctx)
	}
	return n, nil
}

// cutWriter writes the first 100 bytes of a body, flushes them, and
// then calls then and fails every write.
type cutWriter struct {
	http.ResponseWriter
	n    int
	then func()
	cut  bool
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, errors.New("cut")
	}
	if room := 100 - c.n; len(p) > room {
		_, _ = c.ResponseWriter.Write(p[:room])
		_ = http.NewResponseController(c.ResponseWriter).Flush()
		c.cut = true
		c.then()
		return 0, errors.New("cut")
	}
	c.n += len(p)
	return c.ResponseWriter.Write(p)
}

// reset closes w's connection with a TCP reset.
func reset(w http.ResponseWriter) {
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err) // a test server's writer always hijacks
	}
	_ = buf.Flush()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// outageCase is a remote that fails in one way.
type outageCase struct {
	name string
	// setup returns the environment of a fresh local tier pointed at
	// the remote; "k-1" is stored in it when it can be.
	setup func(t *testing.T) env
	// cause is what the warning says of the failure.
	cause string
	// only, if set, lists the commands the fault is checked with
	// ("pull", "push", "ls"); all of them if empty.
	only string
	// refused tells a remote whose answer reads as a damaged entry, not
	// as a failure of the remote: the pull skips it as a miss (listed in
	// "refused").
	refused bool
}

// fakeRemote points a fresh local tier at the server endpoint makes,
// with credentials; extra adds to the environment.
func fakeRemote(endpoint func(t *testing.T) string, extra ...string) func(t *testing.T) env {
	return func(t *testing.T) env {
		isolateAWSEnv(t, "AKIATESTTESTTEST", "outagetestsecretoutagetestsecret0123")
		return newEnv(t).with(append([]string{
			"TIERCACHE_REMOTE", "s3://bucket/prefix",
			"TIERCACHE_S3_ENDPOINT", endpoint(t),
			"TIERCACHE_S3_PATH_STYLE", "true",
			"TIERCACHE_REGION", "us-east-1",
			"AWS_MAX_ATTEMPTS", "2", // a retry, but few of them
		}, extra...)...)
	}
}

// minioThrough returns the environment of a fresh local tier reaching a
// fresh MinIO bucket, which holds "k-1", through faultProxy with fault.
func minioThrough(fault func(http.ResponseWriter, *http.Request, http.Handler) bool, extra ...string) func(t *testing.T) env {
	return func(t *testing.T) env {
		direct := minioEnvIsolated(t)
		mustCLI(t, direct, "push", "-q", "k-1", smallTree(t, "stored"))
		return newEnv(t).with(append([]string{
			"TIERCACHE_REMOTE", direct["TIERCACHE_REMOTE"],
			"TIERCACHE_S3_ENDPOINT", faultProxy(t, direct["TIERCACHE_S3_ENDPOINT"], fault),
			"TIERCACHE_S3_PATH_STYLE", "true",
			"TIERCACHE_REGION", direct["TIERCACHE_REGION"],
			"AWS_MAX_ATTEMPTS", "2",
		}, extra...)...)
	}
}

// minioEnvIsolated is minioEnv in an AWS environment of the test's own.
func minioEnvIsolated(t *testing.T) env {
	t.Helper()
	e := minioEnv(t)
	srv := miniotest.Require(t)
	isolateAWSEnv(t, srv.AccessKey, srv.SecretKey)
	return e
}

// s3Error answers as S3 does with an error document.
func s3Error(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", "req-1")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, http.StatusText(status))
	}
}

func outageCases() []outageCase {
	return []outageCase{
		{name: "host does not resolve", setup: fakeRemote(func(*testing.T) string { return "http://tiercache-outage.invalid:9000" }),
			cause: "no such host"},
		{name: "nothing listening", setup: fakeRemote(refusedEndpoint), cause: "connection refused"},
		{name: "accepts, never answers", setup: fakeRemote(silentEndpoint, "TIERCACHE_S3_IDLE_TIMEOUT", "100ms"),
			cause: "idle timeout"},
		{name: "HTML 200", setup: fakeRemote(func(t *testing.T) string {
			return answering(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, "<html><body>sign in</body></html>")
			})
		}), cause: "not an S3 endpoint"},
		// Told by what S3 always sends: an ETag on an object, a
		// listing's XML.
		{name: "text 200", setup: fakeRemote(func(t *testing.T) string {
			return answering(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello, world") })
		}), cause: "not an S3 endpoint"},
		{name: "untrusted certificate", setup: fakeRemote(func(t *testing.T) string {
			return quietServer(t, true, s3Error(http.StatusNotFound, "NoSuchKey")).URL
		}), cause: "certificate signed by unknown authority"},
		{name: "500", setup: fakeRemote(func(t *testing.T) string {
			return answering(t, s3Error(http.StatusInternalServerError, "InternalError"))
		}), cause: "StatusCode: 500"},
		{name: "403", setup: fakeRemote(func(t *testing.T) string {
			return answering(t, s3Error(http.StatusForbidden, "InvalidAccessKeyId"))
		}), cause: "access denied"},
		{name: "no credentials", setup: func(t *testing.T) env {
			e := fakeRemote(func(t *testing.T) string { return answering(t, s3Error(http.StatusNotFound, "NoSuchKey")) })(t)
			isolateAWSEnv(t, "", "")
			return e
		}, cause: "no AWS credentials found"},
		// The remote cannot even be set up: its failure comes before any
		// request.
		{name: "no region", setup: func(t *testing.T) env {
			isolateAWSEnv(t, "AKIATESTTESTTEST", "outagetestsecretoutagetestsecret0123")
			return newEnv(t).with("TIERCACHE_REMOTE", "s3://bucket/prefix")
		}, cause: "no region configured"},
		{name: "no such bucket", setup: func(t *testing.T) env {
			e := minioEnvIsolated(t)
			return e.with("TIERCACHE_REMOTE", fmt.Sprintf("s3://outage-absent-%x/ci", rand.Uint32()))
		}, cause: "bucket does not exist"},
		{name: "reset mid-download", setup: minioThrough(resetDownload), only: "pull", cause: `"k-1"`},
		{name: "stall mid-download", setup: minioThrough(stallDownload, "TIERCACHE_S3_IDLE_TIMEOUT", "200ms"), only: "pull", cause: "idle timeout"},
		{name: "reset mid-upload", setup: minioThrough(resetUpload), only: "push", cause: `"k-new"`},
		// Progress all along: neither the idle nor the request timeout
		// ends these, only --timeout.
		{name: "trickling download past --timeout", setup: minioThrough(trickleDownload, "TIERCACHE_TIMEOUT", "1s"), only: "pull", cause: "deadline passed"},
		{name: "trickling upload past --timeout", setup: minioThrough(trickleUpload, "TIERCACHE_TIMEOUT", "1s"), only: "push", cause: "deadline passed"},
	}
}

// warningLines returns stderr's warning lines.
func warningLines(stderr string) []string {
	var w []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "tiercache: warning: ") {
			w = append(w, l)
		}
	}
	return w
}

// TestOutageMatrix: whichever way the remote fails, a pull of a key the
// local tier lacks is a miss with one warning naming the cause, DIR
// not created and cache-hit=false; a push saves locally only (with
// --no-local nowhere) with one warning; ls and stats show the local tier
// with a warning; with --strict each fails with one error line; and
// none of it hangs.
func TestOutageMatrix(t *testing.T) {
	for _, c := range outageCases() {
		t.Run(c.name, func(t *testing.T) {
			e := c.setup(t)
			checks := func(cmd string) bool { return c.only == "" || slices.Contains(strings.Fields(c.only), cmd) }
			if checks("pull") {
				checkPullOutage(t, e, c)
			}
			if checks("push") {
				checkPushOutage(t, e, c)
			}
			if checks("ls") {
				checkListOutage(t, e, c)
			}
		})
	}
}

func checkPullOutage(t *testing.T, e env, c outageCase) {
	t.Helper()
	absent := func(what, dir string) {
		t.Helper()
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s made DIR, or it cannot be told: %v", what, err)
		}
	}
	for _, noLocal := range []bool{false, true} {
		what := fmt.Sprintf("pull --no-local=%t", noLocal)
		dir := filepath.Join(t.TempDir(), "dir")
		ghOut := filepath.Join(t.TempDir(), "github_output")
		r := boundedCLI(t, e.with("GITHUB_OUTPUT", ghOut, "GITHUB_ACTIONS", "true"),
			"pull", "--json", fmt.Sprintf("--no-local=%t", noLocal), "k-1", dir)
		if r.code != 0 {
			t.Errorf("%s: exit %d, stderr %q; want 0", what, r.code, r.stderr)
			continue
		}
		var out pullJSON
		decode(t, r, &out)
		if w := warningLines(r.stderr); len(w) != 1 || !strings.HasPrefix(w[0], `tiercache: warning: pull "k-1": `) || !strings.Contains(w[0], c.cause) ||
			strings.Count(r.stderr, "::warning title=tiercache::") != 1 {
			t.Errorf("%s: stderr %q; want one warning naming %q, and its annotation", what, r.stderr, c.cause)
		}
		got := out.Error
		if c.refused {
			got = strings.Join(out.Refused, "; ")
		}
		if out.Hit || !strings.Contains(got, c.cause) {
			t.Errorf("%s --json: %+v; want a miss naming %q", what, out, c.cause)
		}
		if !c.refused {
			absent(what, dir)
		}
		if b, err := os.ReadFile(ghOut); err != nil || !strings.Contains(string(b), "cache-hit=false\n") {
			t.Errorf("%s: GITHUB_OUTPUT %q, %v; want cache-hit=false", what, b, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "dir")
	r := boundedCLI(t, e, "pull", "--strict", "k-1", dir)
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, `tiercache: pull "k-1": `) || !strings.Contains(r.stderr, c.cause) ||
		strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("pull --strict: exit %d, stderr %q; want exit 1 and one error line naming %q", r.code, r.stderr, c.cause)
	}
	absent("pull --strict", dir)
}

func checkPushOutage(t *testing.T, e env, c outageCase) {
	t.Helper()
	r := boundedCLI(t, e, "push", "--json", "k-new", smallTree(t, "new"))
	var out pushJSON
	if r.code != 0 {
		t.Errorf("push: exit %d, stderr %q; want 0", r.code, r.stderr)
	} else {
		decode(t, r, &out)
	}
	if w := warningLines(r.stderr); len(w) != 1 || !strings.HasPrefix(w[0], `tiercache: warning: push "k-new": nothing was saved remotely: `) {
		t.Errorf("push: stderr %q; want one warning that nothing was saved remotely", r.stderr)
	}
	if out.Uploaded || out.Error == "" || !strings.Contains(r.stderr, "saved locally only") {
		t.Errorf("push: %+v, stderr %q; want a local-only save, with an error", out, r.stderr)
	}

	r = boundedCLI(t, e, "push", "--json", "--no-local", "k-nowhere", smallTree(t, "nowhere"))
	out = pushJSON{}
	if r.code != 0 {
		t.Errorf("push --no-local: exit %d, stderr %q; want 0", r.code, r.stderr)
	} else {
		decode(t, r, &out)
	}
	if w := warningLines(r.stderr); len(w) != 1 || out.Uploaded || out.Error == "" || !strings.Contains(r.stderr, "nothing saved") {
		t.Errorf("push --no-local: %+v, stderr %q; want one warning, nothing saved", out, r.stderr)
	}

	var local []struct{ Key string }
	decode(t, boundedCLI(t, e, "ls", "--json", "--tier", "local"), &local)
	if len(local) != 1 || local[0].Key != "k-new" {
		t.Errorf("after the pushes, the local tier holds %+v; want k-new alone", local)
	}

	r = boundedCLI(t, e, "push", "--strict", "k-strict", smallTree(t, "strict"))
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, `tiercache: push "k-strict": `) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("push --strict: exit %d, stderr %q; want exit 1 and one error line", r.code, r.stderr)
	}
}

func checkListOutage(t *testing.T, e env, c outageCase) {
	t.Helper()
	r := boundedCLI(t, e, "ls")
	if w := warningLines(r.stderr); r.code != 0 || len(w) != 1 || !strings.Contains(w[0], "ls: only the local tier is listed, the remote failed: ") {
		t.Errorf("ls: exit %d, stderr %q; want 0 and one warning", r.code, r.stderr)
	}
	var st struct {
		Remote      map[string]any `json:"remote"`
		RemoteError string         `json:"remote_error"`
	}
	r = boundedCLI(t, e, "stats", "--json")
	if r.code != 0 {
		t.Errorf("stats: exit %d, stderr %q; want 0", r.code, r.stderr)
	} else if decode(t, r, &st); st.Remote != nil || st.RemoteError == "" {
		t.Errorf("stats --json: %+v; want a remote_error in place of remote", st)
	}
	for _, args := range [][]string{{"ls", "--tier", "remote"}, {"stats", "--strict"}} {
		r := boundedCLI(t, e, args...)
		if r.code != exitFailure || strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "warning") {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and one error line", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestOutageUsageErrorsStillFail: a malformed remote configuration is a
// usage error (exit 2), not an outage to survive, and DIR is left alone.
func TestOutageUsageErrorsStillFail(t *testing.T) {
	isolateAWSEnv(t, "AKIATESTTESTTEST", "outagetestsecretoutagetestsecret0123")
	base := newEnv(t).with("TIERCACHE_REMOTE", "s3://bucket/prefix", "TIERCACHE_REGION", "us-east-1")
	for _, e := range []env{
		base.with("TIERCACHE_S3_ENDPOINT", "127.0.0.1:9000"),
		base.with("TIERCACHE_S3_ENDPOINT", "ftp://127.0.0.1:9000"),
		base.with("TIERCACHE_S3_IDLE_TIMEOUT", "-1s"),
		base.with("AWS_MAX_ATTEMPTS", "0"),
	} {
		dir := filepath.Join(t.TempDir(), "dir")
		for _, args := range [][]string{{"pull", "k-1", dir}, {"push", "k-1", smallTree(t, "u")}, {"ls"}, {"stats"}} {
			r := boundedCLI(t, e, args...)
			if r.code != exitUsage || strings.Contains(r.stderr, "warning") {
				t.Errorf("%s with %v: exit %d, stderr %q; want a usage error", args[0], e, r.code, r.stderr)
			}
		}
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("pull with a usage error made DIR, or it cannot be told: %v", err)
		}
	}
}

// TestOutageInterrupted: a command interrupted while it waits on a
// silent remote fails (exit 1, "interrupted"), without --strict, instead
// of going on as if the remote had failed.
func TestOutageInterrupted(t *testing.T) {
	e := fakeRemote(silentEndpoint)(t) // the default idle timeout: only the interruption ends the wait
	dir := filepath.Join(t.TempDir(), "dir")
	for _, args := range [][]string{{"pull", "k-1", dir}, {"push", "k-1", smallTree(t, "i")}} {
		// As the signal handler cancels it.
		ctx, cancel := context.WithCancel(context.Background())
		stop := time.AfterFunc(300*time.Millisecond, cancel)
		var stdout, stderr strings.Builder
		code := run(ctx, args, &stdout, &stderr, func(k string) string { return e[k] })
		stop.Stop()
		cancel()
		if code != exitFailure || !strings.HasPrefix(stderr.String(), "tiercache: interrupted: "+args[0]) || strings.Contains(stderr.String(), "warning") {
			t.Errorf("%s interrupted: exit %d, stderr %q; want exit 1, interrupted", args[0], code, stderr.String())
		}
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an interrupted pull made DIR, or it cannot be told: %v", err)
	}
}

// TestOutageUntrustedCertificate: the warning for an endpoint whose
// certificate is not trusted names the fix, and the fix works.
func TestOutageUntrustedCertificate(t *testing.T) {
	srv := quietServer(t, true, s3Error(http.StatusNotFound, "NoSuchKey"))
	e := fakeRemote(func(*testing.T) string { return srv.URL })(t)
	r := boundedCLI(t, e, "pull", "k-1", filepath.Join(t.TempDir(), "dir"))
	if w := warningLines(r.stderr); r.code != 0 || len(w) != 1 || !strings.Contains(w[0], "AWS_CA_BUNDLE") {
		t.Fatalf("pull from an untrusted endpoint: exit %d, stderr %q; want one warning naming AWS_CA_BUNDLE", r.code, r.stderr)
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	r = boundedCLI(t, e, "pull", "k-1", filepath.Join(t.TempDir(), "dir"))
	if r.code != 0 || r.stderr != "tiercache: miss: nothing stored under \"k-1\"\n" {
		t.Errorf("pull with AWS_CA_BUNDLE naming the endpoint's certificate: exit %d, stderr %q; want a plain miss", r.code, r.stderr)
	}
}
