//go:build unix

package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tiercache/tiercache/internal/miniotest"
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

// TestCLIThroughHTTPSProxy: an https endpoint is reached through
// HTTPS_PROXY with CONNECT, the server's certificate trusted through
// AWS_CA_BUNDLE, as behind a corporate proxy.
func TestCLIThroughHTTPSProxy(t *testing.T) {
	srv := miniotest.RequireTLS(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Secure: true, Transport: srv.Transport(), Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := mc.MakeBucket(ctx, "proxied", minio.MakeBucketOptions{Region: srv.Region}); err != nil {
		t.Fatal(err)
	}
	host := net.JoinHostPort(miniotest.TLSHost, u.Port())
	var tunnels, refused atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != host {
			refused.Add(1)
			http.Error(w, "not this proxy's", http.StatusBadGateway)
			return
		}
		tunnels.Add(1)
		up, err := net.Dial("tcp", u.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			_ = up.Close()
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, conn); _ = up.Close() }()
		_, _ = io.Copy(conn, up)
		_ = conn.Close()
	}))
	defer proxy.Close()
	e := newEnv(t, "proxied").with(
		"TIERCACHE_S3_ENDPOINT", "https://"+host,
		"AWS_ACCESS_KEY_ID", srv.AccessKey, "AWS_SECRET_ACCESS_KEY", srv.SecretKey, "AWS_REGION", srv.Region,
		"AWS_CA_BUNDLE", srv.CertFile(), "HTTPS_PROXY", proxy.URL)

	src := smallTree(t, "tls-proxy")
	mustRun(t, e, "push", "-q", "--strict", "px", src)
	dst := filepath.Join(t.TempDir(), "d")
	mustRun(t, e.freshMachine(t), "pull", "--strict", "--fail-on-miss", "px", dst)
	treetest.AssertEqual(t, src, dst)
	if tunnels.Load() == 0 || refused.Load() != 0 {
		t.Errorf("%d tunnels to %s and %d other requests at the proxy; want tunnels only", tunnels.Load(), host, refused.Load())
	}
}
