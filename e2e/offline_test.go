//go:build unix

package e2e

import (
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// countingEndpoint listens on loopback and closes every connection it
// accepts, after counting it: a remote that fails every request, and a
// witness of whether a command contacted it at all (a command that saw
// the failure had its connection counted first).
func countingEndpoint(t *testing.T) (endpoint string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	return "http://" + l.Addr().String(), conns
}

// TestLsStatsRemoteDown: the local tier never needs the remote. With the
// remote gone, ls --tier local lists the local entries without a single
// connection (so without waiting on retries either); ls and stats show
// the local tier with one warning each and exit 0; --strict, and ls
// --tier remote, exit 1.
func TestLsStatsRemoteDown(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "--description", "kept", "off-1", smallTree(t, "off"))

	// The SDK's default retries stay on here: ls --tier local must not
	// even try.
	watched, conns := countingEndpoint(t)
	stdout, stderr := mustRun(t, e.with("TIERCACHE_S3_ENDPOINT", watched), "ls", "--tier", "local")
	if !strings.Contains(stdout, "off-1") || stderr != "" {
		t.Errorf("ls --tier local: stdout %q stderr %q, want off-1 and a quiet stderr", stdout, stderr)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("ls --tier local made %d connections to the remote, want none", n)
	}

	down := e.with("TIERCACHE_S3_ENDPOINT", deadEndpoint(t), "AWS_MAX_ATTEMPTS", "1")
	stdout, stderr = mustRun(t, down.with("GITHUB_ACTIONS", "true"), "ls")
	if !strings.Contains(stdout, "off-1") || strings.Contains(stdout, "remote") {
		t.Errorf("ls with the remote down:\n%s\nwant the local entry only", stdout)
	}
	if w := warnings(stderr); len(w) != 1 || !strings.Contains(w[0], "ls: only the local tier is listed") || !strings.Contains(w[0], "connection refused") ||
		!strings.Contains(stderr, "::warning title=tiercache::ls: only the local tier is listed") {
		t.Errorf("ls with the remote down: stderr %q, want one warning naming the cause, and its annotation", stderr)
	}

	stdout, stderr = mustRun(t, down, "stats", "--json")
	var st struct {
		Local       *struct{ Entries int } `json:"local"`
		Remote      json.RawMessage        `json:"remote"`
		RemoteError string                 `json:"remote_error"`
	}
	decodeJSON(t, stdout, &st)
	if st.Local == nil || st.Local.Entries != 1 || st.Remote != nil || !strings.Contains(st.RemoteError, "connection refused") {
		t.Errorf("stats --json with the remote down: %s\nwant the local tier and remote_error", stdout)
	}
	if w := warnings(stderr); len(w) != 1 || !strings.Contains(w[0], "stats: the remote tier is left out") {
		t.Errorf("stats with the remote down: stderr %q, want one warning", stderr)
	}

	for _, args := range [][]string{{"ls", "--strict"}, {"stats", "--strict"}, {"ls", "--tier", "remote"}} {
		_, stderr, code := runCLI(t, down, args...)
		if code != 1 || len(warnings(stderr)) != 0 || !strings.Contains(stderr, "connection refused") {
			t.Errorf("tiercache %s with the remote down: exit %d, stderr %q; want exit 1 and the error", strings.Join(args, " "), code, stderr)
		}
	}
	// The secret never shows, warnings included.
	for _, args := range [][]string{{"ls", "-v"}, {"stats", "--json"}, {"stats", "--strict"}} {
		stdout, stderr, _ := runCLI(t, down, args...)
		if secret := down["AWS_SECRET_ACCESS_KEY"]; strings.Contains(stdout+stderr, secret) {
			t.Errorf("tiercache %s printed the secret key", strings.Join(args, " "))
		}
	}
}
