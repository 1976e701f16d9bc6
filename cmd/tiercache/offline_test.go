package main

import (
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// closingServer listens on loopback and closes every connection it
// accepts, counting them: a remote that fails every request, and a
// witness of whether a command contacted it at all. A command that got
// its failure has had its connection counted, since the count comes
// before the close.
func closingServer(t *testing.T) (endpoint string, conns *atomic.Int64) {
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

// TestLsStatsRemoteDown: the local tier never needs the remote. ls
// --tier local does not contact it; ls and stats list the local tier and
// warn about the remote, unless --strict; ls --tier remote fails.
func TestLsStatsRemoteDown(t *testing.T) {
	// The SDK reads its credentials from the process environment: give it
	// some, and keep it away from the instance metadata service.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "offlinetestsecretofflinetestsecret0123")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	local := newEnv(t)
	mustCLI(t, local, "push", "-q", "-d", "kept", "k-1", smallTree(t, "a"))
	endpoint, conns := closingServer(t)
	e := local.with(
		"TIERCACHE_REMOTE", "s3://bucket/prefix",
		"TIERCACHE_S3_ENDPOINT", endpoint,
		"TIERCACHE_S3_PATH_STYLE", "true",
		"TIERCACHE_REGION", "us-east-1",
		"AWS_MAX_ATTEMPTS", "1",
	)

	r := mustCLI(t, e, "ls", "--tier", "local")
	if !strings.Contains(r.stdout, "k-1") || r.stderr != "" {
		t.Errorf("ls --tier local: stdout %q stderr %q, want k-1 and nothing on stderr", r.stdout, r.stderr)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("ls --tier local opened %d connections to the remote, want none", n)
	}

	r = mustCLI(t, e.with("GITHUB_ACTIONS", "true"), "ls")
	if !strings.Contains(r.stdout, "k-1") {
		t.Errorf("ls with the remote down does not list the local entry:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "tiercache: warning: ls: only the local tier is listed, the remote failed: ") ||
		!strings.Contains(r.stderr, "::warning title=tiercache::ls: only the local tier is listed") {
		t.Errorf("ls with the remote down: stderr %q, want a warning and its annotation", r.stderr)
	}
	if conns.Load() == 0 {
		t.Fatal("ls did not try the remote")
	}
	var entries []map[string]any
	decode(t, mustCLI(t, e, "ls", "--json"), &entries)
	if len(entries) != 1 || entries[0]["key"] != "k-1" {
		t.Errorf("ls --json with the remote down: %v, want the local entry", entries)
	}

	r = mustCLI(t, e, "stats", "-q")
	if !strings.Contains(r.stdout, "local") || strings.Contains(r.stdout, "remote") {
		t.Errorf("stats with the remote down:\n%s\nwant the local line only", r.stdout)
	}
	if w := strings.Count(r.stderr, "tiercache: warning: stats: the remote tier is left out, it failed: "); w != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stats with the remote down, --quiet: stderr %q, want one warning line", r.stderr)
	}
	var st struct {
		Local       map[string]any `json:"local"`
		Remote      map[string]any `json:"remote"`
		RemoteError string         `json:"remote_error"`
	}
	decode(t, mustCLI(t, e, "stats", "--json"), &st)
	if st.Local["entries"] != float64(1) || st.Remote != nil || st.RemoteError == "" || strings.Contains(st.RemoteError, "\n") {
		t.Errorf("stats --json with the remote down: %+v, want the local tier and a one-line remote_error", st)
	}

	for _, args := range [][]string{{"ls", "--strict"}, {"stats", "--strict"}, {"ls", "--tier", "remote"}} {
		r := cli(t, e, args...)
		if r.code != exitFailure || !strings.HasPrefix(r.stderr, "tiercache: "+args[0]+": ") || strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "warning") {
			t.Errorf("tiercache %s with the remote down: exit %d, stderr %q; want exit 1 and one error line", strings.Join(args, " "), r.code, r.stderr)
		}
	}

	// Nothing of the credentials shows in any of it.
	for _, args := range [][]string{{"ls"}, {"stats", "--json"}, {"ls", "--strict"}} {
		r := cli(t, e.with("TIERCACHE_VERBOSE", "true"), args...)
		if strings.Contains(r.stdout+r.stderr, "offlinetestsecret") {
			t.Errorf("tiercache %s printed the secret key", strings.Join(args, " "))
		}
	}
}
