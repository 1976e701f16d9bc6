package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	tiercache "github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/tiered"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain key-1 /a/b", "plain key-1 /a/b"},
		{"ünïcödé 日本 ☃ \ufffd C:\\x", "ünïcödé 日本 ☃ \ufffd C:\\x"},
		{"a\x1b[2Kb", `a\x1b[2Kb`},
		{"tab\there\nnl\rcr\x00nul\x7fdel", `tab\there\nnl\rcr\x00nul\x7fdel`},
		{"csi\u009b2K nel\u0085", `csi\u009b2K nel\u0085`},
		{"bad\xff\x9butf8", `bad\xff\x9butf8`},
	} {
		if got := printable(c.in); got != c.want {
			t.Errorf("printable(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// hasRawControl reports whether s holds a control character other than
// the line feeds that end lines.
func hasRawControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && (r < 0x20 || r >= 0x7f && r <= 0x9f) })
}

// TestServerMessageEscaped: the message of an S3 error, which the server
// chooses, reaches stderr with its control characters escaped, in the
// error a command fails with and in the warning a pull survives with.
func TestServerMessageEscaped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Amz-Request-Id", "req-1")
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		// U+009B is CSI: ESC [ in one character. XML cannot carry ESC.
		fmt.Fprint(w, "<Error><Code>InternalError</Code><Message>hidden\u009b2K\u009b1Aline\x7f</Message></Error>")
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "offlinetestsecretofflinetestsecret0123")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	e := newEnv(t).with(
		"TIERCACHE_REMOTE", "s3://bucket/prefix",
		"TIERCACHE_S3_ENDPOINT", srv.URL,
		"TIERCACHE_S3_PATH_STYLE", "true",
		"TIERCACHE_REGION", "us-east-1",
		"AWS_MAX_ATTEMPTS", "1",
		"GITHUB_ACTIONS", "true",
	)
	const escaped = `hidden\u009b2K\u009b1Aline\x7f`

	r := cli(t, e, "ls", "--tier", "remote")
	if r.code != exitFailure || hasRawControl(r.stderr) || !strings.Contains(r.stderr, escaped) {
		t.Errorf("ls --tier remote: exit %d, stderr %q; want a failure quoting the message escaped", r.code, r.stderr)
	}
	var j struct{ Error string }
	decode(t, cli(t, e, "ls", "--tier", "remote", "--json"), &j)
	if !strings.Contains(j.Error, "hidden\u009b2K\u009b1Aline\x7f") {
		t.Errorf("ls --json: error %q, want the message as the server sent it (JSON escapes it)", j.Error)
	}

	r = mustCLI(t, e, "pull", "k-1", filepath.Join(t.TempDir(), "dst"))
	if hasRawControl(r.stderr) || strings.Count(r.stderr, escaped) != 2 {
		t.Errorf("pull: stderr %q; want the warning and its annotation quoting the message escaped", r.stderr)
	}
}

// TestPathEscaped: a path with control characters (a file name may hold
// any but NUL and '/') is escaped in errors, status lines and verbose
// lines.
func TestPathEscaped(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows file names cannot hold control characters")
	}
	e := newEnv(t)
	esc := "a\x1b[2Kb"
	r := cli(t, e, "push", "k-1", filepath.Join(t.TempDir(), esc))
	if r.code != exitFailure || hasRawControl(r.stderr) || !strings.Contains(r.stderr, `a\x1b[2Kb does not exist`) {
		t.Errorf("push of a missing DIR: exit %d, stderr %q; want its name escaped", r.code, r.stderr)
	}
	mustCLI(t, e, "push", "-q", "k-1", smallTree(t, "p"))
	r = mustCLI(t, e, "pull", "k-1", filepath.Join(t.TempDir(), esc))
	if hasRawControl(r.stderr) || !strings.Contains(r.stderr, `a\x1b[2Kb in `) {
		t.Errorf("pull summary: %q; want DIR escaped", r.stderr)
	}
	r = mustCLI(t, e.with("TIERCACHE_DIR", filepath.Join(t.TempDir(), esc)), "-v", "ls")
	if hasRawControl(r.stderr) || !strings.Contains(r.stderr, `a\x1b[2Kb does not exist yet`) {
		t.Errorf("ls -v: %q; want the cache directory escaped", r.stderr)
	}
}

// TestFsckProblemsEscaped: fsck's problem lines name objects and upload
// IDs the bucket chose; their control characters are escaped.
func TestFsckProblemsEscaped(t *testing.T) {
	var b strings.Builder
	printProblems(&b, tiered.FsckReport{
		Local:  tiercache.CheckReport{Problems: []tiercache.Problem{{Kind: "orphan-version", Path: "data/x\x1b[2K", Detail: "d"}}},
		Remote: &tiercache.CheckReport{Problems: []tiercache.Problem{{Kind: "stale-upload", Object: "o upload \u009b2K", Detail: "left\x07"}}},
	})
	if hasRawControl(b.String()) {
		t.Fatalf("printProblems printed raw control characters: %q", b.String())
	}
	if !strings.Contains(b.String(), `x\x1b[2K`) || !strings.Contains(b.String(), `\u009b2K`) {
		t.Errorf("printProblems = %q, want the escapes", b.String())
	}
}
