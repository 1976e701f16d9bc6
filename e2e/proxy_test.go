//go:build unix

package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
)

// TestCLIThroughProxy: a runner that reaches its bucket only through an
// HTTP proxy (HTTP_PROXY, HTTPS_PROXY) pushes and pulls through it, and
// NO_PROXY exempts a host. The endpoint's host name resolves nowhere
// (.test is reserved), so only the proxy can reach it; a loopback
// address would not do, as Go never proxies loopback.
func TestCLIThroughProxy(t *testing.T) {
	b := bucket(t)
	target, err := url.Parse(server(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	const host = "s3.proxied.test:9000"
	var proxied, elsewhere atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(target) // keeps Host: the signature holds
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy is sent the absolute URL.
		if r.URL.Host != host {
			elsewhere.Add(1)
			http.Error(w, "not this proxy's", http.StatusBadGateway)
			return
		}
		proxied.Add(1)
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	e := newEnv(t, b).with("TIERCACHE_S3_ENDPOINT", "http://"+host, "HTTP_PROXY", proxy.URL)

	src := smallTree(t, "proxy")
	mustRun(t, e, "push", "-q", "px", src)
	if proxied.Load() == 0 {
		t.Fatal("push sent nothing through HTTP_PROXY")
	}
	dst := filepath.Join(t.TempDir(), "d")
	before := proxied.Load()
	mustRun(t, e.freshMachine(t), "pull", "--strict", "--fail-on-miss", "px", dst)
	if proxied.Load() == before {
		t.Error("pull read nothing through HTTP_PROXY")
	}
	treetest.AssertEqual(t, src, dst)
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d requests for other hosts reached the proxy", n)
	}

	// NO_PROXY exempts the host: the pull goes to it directly, which
	// fails, naming the host.
	before = proxied.Load()
	_, stderr, code := runCLI(t, e.freshMachine(t).with("NO_PROXY", "s3.proxied.test"), "pull", "--strict", "px", filepath.Join(t.TempDir(), "d"))
	if code != 1 || !strings.Contains(stderr, "s3.proxied.test") {
		t.Errorf("pull with the host in NO_PROXY: exit %d, stderr %q; want 1 and the host named", code, stderr)
	}
	if proxied.Load() != before {
		t.Error("pull with the host in NO_PROXY went through the proxy")
	}

	// The instance metadata service is the machine's own: a proxy would
	// ask its own machine's. Without keys, the role is looked up
	// directly (and here found nowhere), never through the proxy.
	noKeys := e.freshMachine(t).with("AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", "",
		"AWS_EC2_METADATA_DISABLED", "", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://imds.proxied.test")
	before = elsewhere.Load()
	_, stderr, code = runCLI(t, noKeys, "pull", "--strict", "px", filepath.Join(t.TempDir(), "d"))
	if code != 1 || !strings.Contains(stderr, "no AWS credentials found") {
		t.Errorf("pull without keys: exit %d, stderr %q; want 1 and no credentials", code, stderr)
	}
	if n := elsewhere.Load() - before; n != 0 {
		t.Errorf("%d metadata requests went through the proxy", n)
	}
}
