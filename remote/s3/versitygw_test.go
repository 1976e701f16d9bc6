package s3

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/miniotest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/storetest"
)

// TestVersityGW runs the remote.BaseStore suite against versitygw's
// posix backend, a second real S3 server beside MinIO: a fresh bucket
// per subtest on one server of the test's own, in the smallest parts S3
// allows, as TestBaseConformance runs it on MinIO. versitygw implements
// UploadPartCopy with ranges, so its puts copy; where a copy cannot work
// (the base deleted) the put must fall back and still commit exactly its
// stream. Each put logs which happened.
//
// The remote.Store suite is not run here: versitygw lists LastModified
// in whole seconds, so the uses that the suite's prune cases space 20 ms
// apart are ties there, which Prune breaks by stem order.
func TestVersityGW(t *testing.T) {
	srv := requireVersityGW(t)
	storetest.RunBase(t, func(t *testing.T) remote.BaseStore {
		return newEnvOn(t, srv).store(t, func(c *Config) { c.PartSize = MinPartSize })
	})
}

// errNoVersityGW: no versitygw binary was found.
var errNoVersityGW = errors.New("versitygw binary not found (set TIERCACHE_VERSITYGW_BIN or run `make versitygw`)")

// versityGWProcAttr, when set, gives the server's process attributes
// (on Linux: killed with the test binary).
var versityGWProcAttr func() *syscall.SysProcAttr

// requireVersityGW starts versitygw with its posix backend on a free
// loopback port, random root credentials and a temporary directory, and
// stops it when tb ends. The binary is looked up as MinIO's is: in
// $TIERCACHE_VERSITYGW_BIN, then <repo root>/bin/versitygw, then $PATH.
// When it is missing tb is skipped, or failed if the CI environment
// variable is set. The server is described by a miniotest.Server with
// no process of its own, the type newEnvOn takes.
func requireVersityGW(tb testing.TB) *miniotest.Server {
	tb.Helper()
	bin, err := findVersityGW()
	if errors.Is(err, errNoVersityGW) && os.Getenv("CI") == "" {
		tb.Skip("versitygw is not installed; run `make versitygw` to run this test (set CI to make this a failure)")
	}
	if err != nil {
		tb.Fatal(err)
	}
	var lastErr error
	for range 3 { // the free port may be taken before the server binds it
		srv, err := startVersityGW(tb, bin)
		if err == nil {
			return srv
		}
		lastErr = err
	}
	tb.Fatalf("starting versitygw: %v", lastErr)
	return nil
}

func startVersityGW(tb testing.TB, bin string) (*miniotest.Server, error) {
	dir := filepath.Join(tb.TempDir(), "gw")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	srv := &miniotest.Server{
		Endpoint:  "http://" + addr,
		AccessKey: "test" + randHex(8),
		SecretKey: randHex(20),
		Region:    miniotest.Region,
		DataDir:   dir,
	}
	const health = "/tiercache-health"
	cmd := exec.Command(bin,
		"--port", addr,
		"--region", srv.Region,
		"--health", health,
		"--quiet",
		"posix", dir)
	// The credentials go by environment, out of the process list; a
	// developer's settings of versitygw's variables must not change the
	// server.
	cmd.Env = append(environWithout("VGW_", "ROOT_ACCESS_KEY", "ROOT_SECRET", "LOGFILE=", "WEBHOOK="),
		"ROOT_ACCESS_KEY="+srv.AccessKey,
		"ROOT_SECRET_KEY="+srv.SecretKey,
	)
	out := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if versityGWProcAttr != nil {
		cmd.SysProcAttr = versityGWProcAttr()
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := client.Get(srv.Endpoint + health); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			return nil, fmt.Errorf("versitygw exited at start: %s", out.String())
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw not live after a minute: %s", out.String())
		}
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() {
			tb.Logf("versitygw's output: %s", out.String())
		}
	})
	return srv, nil
}

func findVersityGW() (string, error) {
	if p := os.Getenv("TIERCACHE_VERSITYGW_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: TIERCACHE_VERSITYGW_BIN=%s is not an executable file", errNoVersityGW, p)
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if p := filepath.Join(dir, "bin", "versitygw"); isExecutable(p) {
					return p, nil
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errNoVersityGW
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// environWithout returns the environment minus the variables starting
// with any of prefixes.
func environWithout(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - 64<<10; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
