// Package miniotest runs a throwaway MinIO server on loopback for tests.
//
// The server binary is looked up in $TIERCACHE_MINIO_BIN, then in
// <repo root>/bin/minio (the repo root is the nearest directory above the
// working directory holding go.mod; `make minio` installs it there), then
// in $PATH. When it is missing, Start returns ErrNoMinIO; Require turns
// that into a skip on a developer machine and a failure when the CI
// environment variable is set, so CI can never pass by skipping.
package miniotest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// ErrNoMinIO is returned by Start when no MinIO server binary is found.
var ErrNoMinIO = errors.New("miniotest: minio binary not found (set TIERCACHE_MINIO_BIN or run `make minio`)")

// Region is the region the server reports; clients must sign for it.
const Region = "us-east-1"

// startTimeout bounds how long Start waits for the server to answer its
// liveness probe. MinIO normally needs well under a second; a loaded CI
// machine may need more.
const startTimeout = 60 * time.Second

// dirPattern names the temporary directories Start creates, so a later
// Start can find and remove those a killed test binary left behind.
const dirPattern = "tiercache-minio-"

// Server is a running MinIO server. Its fields are read-only.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT, or
	// https:// for a server from StartTLS.
	Endpoint string
	// AccessKey and SecretKey are the server's random root credentials.
	AccessKey, SecretKey string
	// Region is the region to sign requests for.
	Region string
	// DataDir is the directory the server stores objects in.
	DataDir string

	root     string         // temporary directory holding DataDir and the certs dir
	roots    *x509.CertPool // the certificate a TLS server presents; nil for plain HTTP
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	output   *limitedBuffer
	stopOnce sync.Once
	stopErr  error
}

// Start starts a MinIO server on a free loopback port with random
// credentials and a temporary data directory, waits until it is live and
// returns it. The caller must call Stop. If the test binary dies without
// calling Stop, the kernel kills the server (Linux) and the next Start
// removes the directory left behind.
func Start() (*Server, error) { return startRetrying(false) }

// StartTLS is Start for a server that speaks HTTPS only, with a fresh
// self-signed certificate for 127.0.0.1 that Transport trusts.
func StartTLS() (*Server, error) { return startRetrying(true) }

// TLSHost is a host name a TLS server's certificate also holds, which
// resolves nowhere (.test is reserved): a client reaches the server by
// it only through a proxy, since Go never proxies loopback addresses.
const TLSHost = "minio.tiercache.test"

// CertFile returns the PEM file of a TLS server's certificate, to trust
// it (AWS_CA_BUNDLE); "" for a plain HTTP server.
func (s *Server) CertFile() string {
	if s.roots == nil {
		return ""
	}
	return filepath.Join(s.root, "certs", "public.crt")
}

// Transport returns a new HTTP transport that trusts the server's
// certificate (any transport will do for a plain HTTP server).
func (s *Server) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if s.roots != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}
	}
	return t
}

func startRetrying(useTLS bool) (*Server, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	removeStaleDirs()
	// The port is picked by binding and releasing it, so another process
	// may grab it before MinIO binds; a server that dies at start is
	// retried on a new port.
	var lastErr error
	for range 3 {
		s, err := start(bin, useTLS)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(bin string, useTLS bool) (*Server, error) {
	root, err := os.MkdirTemp("", dirPattern+"*")
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	// The owner file lets removeStaleDirs tell live servers' dirs from
	// leftovers.
	if err := os.WriteFile(filepath.Join(root, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		_ = fsutil.RemoveAll(root)
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	dataDir := filepath.Join(root, "data")
	certsDir := filepath.Join(root, "certs")
	for _, d := range []string{dataDir, certsDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			_ = fsutil.RemoveAll(root)
			return nil, fmt.Errorf("miniotest: %w", err)
		}
	}
	ports, err := freePorts(2)
	if err != nil {
		_ = fsutil.RemoveAll(root)
		return nil, err
	}
	scheme := "http"
	var roots *x509.CertPool
	if useTLS {
		scheme = "https"
		if roots, err = writeCert(certsDir); err != nil {
			_ = fsutil.RemoveAll(root)
			return nil, err
		}
	}
	s := &Server{
		Endpoint:  scheme + "://127.0.0.1:" + strconv.Itoa(ports[0]),
		roots:     roots,
		AccessKey: "test" + randomHex(8),
		SecretKey: randomHex(20),
		Region:    Region,
		DataDir:   dataDir,
		root:      root,
		done:      make(chan struct{}),
		output:    &limitedBuffer{max: 64 << 10},
	}
	cmd := exec.Command(bin, "server",
		"--address", "127.0.0.1:"+strconv.Itoa(ports[0]),
		"--console-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"--certs-dir", certsDir,
		"--quiet",
		dataDir)
	cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = s.output
	cmd.Stderr = s.output
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = fsutil.RemoveAll(root)
		return nil, fmt.Errorf("miniotest: starting %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitLive(); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitLive polls the health endpoints until the server is live and its
// cluster check passes (liveness alone comes before the object layer is
// initialised, when requests still fail with XMinioServerNotInitialized),
// the process exits or startTimeout passes.
func (s *Server) waitLive() error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: s.Transport()}
	deadline := time.Now().Add(startTimeout)
	for {
		if s.healthy(client, "/minio/health/live") && s.healthy(client, "/minio/health/cluster") {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("miniotest: minio exited at start: %s", s.output.String())
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("miniotest: minio not live after %v: %s", startTimeout, s.output.String())
		}
	}
}

func (s *Server) healthy(client *http.Client, path string) bool {
	resp, err := client.Get(s.Endpoint + path)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop kills the server, waits for it to exit and removes its data
// directory. It may be called more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			// A killed process may already be gone; Wait (in the
			// goroutine started by start) reaps it either way.
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		s.stopErr = fsutil.RemoveAll(s.root)
	})
	return s.stopErr
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// where MinIO's --certs-dir expects them, and returns a pool trusting it.
func writeCert(dir string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "miniotest"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		// A name only a proxy can reach (see TLSHost).
		DNSNames:              []string{TLSHost},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(dir, "public.crt"), certPEM, 0o600); err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "private.key"), keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	return roots, nil
}

// Output returns what the server printed so far (bounded), for debugging
// a failing test.
func (s *Server) Output() string { return s.output.String() }

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Require returns a server shared by every caller in the test binary,
// starting it on first use. When the binary is missing it skips tb with a
// message saying how to install it, unless the CI environment variable is
// set, in which case it fails tb; any other start error fails tb.
//
// The shared server is stopped by Run when the package's TestMain uses it;
// otherwise it dies with the test binary and the next Start removes its
// directory.
func Require(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	requireStarted(tb, shared.err)
	return shared.srv
}

// RequireTLS starts a server of tb's own with StartTLS, stopped when tb
// ends; a missing binary skips or fails tb as with Require.
func RequireTLS(tb testing.TB) *Server {
	tb.Helper()
	srv, err := StartTLS()
	requireStarted(tb, err)
	tb.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// requireStarted skips tb when the MinIO binary is missing, unless CI is
// set, and fails it on any other start error.
func requireStarted(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrNoMinIO) && os.Getenv("CI") == "" {
		tb.Skip("MinIO is not installed; run `make minio` to run this test (set CI to make this a failure)")
	}
	tb.Fatalf("starting MinIO: %v", err)
}

// Run runs the package's tests and then stops the server Require shared,
// if one was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(miniotest.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil && code == 0 {
			fmt.Fprintf(os.Stderr, "miniotest: stopping MinIO: %v\n", err)
			code = 1
		}
	}
	return code
}

// findBinary applies the lookup order of the package documentation.
func findBinary() (string, error) {
	if p := os.Getenv("TIERCACHE_MINIO_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: TIERCACHE_MINIO_BIN=%s is not an executable file", ErrNoMinIO, p)
	}
	if root, ok := repoRoot(); ok {
		p := filepath.Join(root, "bin", "minio")
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", ErrNoMinIO
}

// repoRoot walks up from the working directory (a test runs in its
// package's directory) to the nearest directory holding go.mod.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("miniotest: finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// environWithout returns the environment minus variables starting with
// prefix, so a developer's MINIO_* settings cannot change the server.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// removeStaleDirs removes the directories of servers whose test binary is
// gone. Errors are ignored: this is housekeeping.
func removeStaleDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern+"*"))
	for _, dir := range matches {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if processGone(pid) {
			_ = fsutil.RemoveAll(dir)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// limitedBuffer keeps the first max bytes written to it; MinIO runs with
// --quiet, so this holds little more than start-up errors.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
