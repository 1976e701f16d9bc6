//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// A cache never breaks the build: these tests run the binary against
// remotes that fail in each way a CI job meets (down, refusing, missing
// bucket, not S3, failing every request, never answering, serving a
// corrupt entry), and check that pull is a miss with a warning and push a
// local-only save, both exiting 0, and that --strict makes each a failure.

// softCase is a remote that fails in one way.
type softCase struct {
	name string
	// env is the machine's environment with the failing remote.
	env env
	// cause is what the warning must say about it.
	cause string
}

// deadEndpoint returns a loopback URL nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// softCases builds the failing remotes. The good environment e has
// "soft-k" stored remotely.
func softCases(t *testing.T, e env, b string) []softCase {
	t.Helper()
	// A web server that is not S3: every request gets a 404 page.
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html><body>Not Found</body></html>")
	}))
	t.Cleanup(web.Close)
	// Every request fails with a 500, as a broken server's would.
	broken := newFaultProxy(t)
	broken.add(faultRule{times: -1, fault: faultInternal()})

	// Every request is accepted and never answered.
	stalled := newFaultProxy(t)
	stalled.add(faultRule{times: -1, fault: faultSpec{kind: fStall}})

	// Few attempts keep the failing cases fast; the retries themselves
	// are proved by the fault tests.
	fast := e.with("AWS_MAX_ATTEMPTS", "2")
	return []softCase{
		{name: "endpoint down", env: fast.with("TIERCACHE_S3_ENDPOINT", deadEndpoint(t)), cause: "connection refused"},
		{name: "access denied", env: fast.with("AWS_SECRET_ACCESS_KEY", "WRONGsecret"+strings.Repeat("z", 29)), cause: "access denied"},
		{name: "missing bucket", env: fast.with("TIERCACHE_REMOTE", "s3://"+b+"-missing/"+remotePrefix), cause: "bucket does not exist"},
		{name: "not S3", env: fast.with("TIERCACHE_S3_ENDPOINT", web.URL), cause: "not an s3 endpoint"},
		{name: "server errors", env: fast.with("TIERCACHE_S3_ENDPOINT", broken.URL), cause: "500"},
		{name: "timeout", env: fast.with("TIERCACHE_S3_ENDPOINT", stalled.URL, "TIERCACHE_S3_IDLE_TIMEOUT", "1s"), cause: "idle timeout"},
	}
}

// softDir makes a DIR with content of its own, and returns it and its
// parent's snapshot.
func softDir(t *testing.T) (dir string, snap func() map[string]string) {
	t.Helper()
	parent := t.TempDir()
	dir = filepath.Join(parent, "dir")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "keep.txt"), []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// DIR itself: a --no-local pull stages beside it, in its parent.
	return dir, func() map[string]string { return hostileSnapshot(t, dir, "") }
}

// warnings returns the warning lines of stderr.
func warnings(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "tiercache: warning: ") {
			out = append(out, l)
		}
	}
	return out
}

func TestSoftFailurePull(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "soft-k", smallTree(t, "soft"))
	for _, c := range softCases(t, e, b) {
		t.Run(c.name, func(t *testing.T) {
			m := c.env.freshMachine(t)
			ghOut := filepath.Join(t.TempDir(), "github_output")
			dir, snap := softDir(t)
			before := snap()
			stdout, stderr, code := runCLI(t, m.with("GITHUB_OUTPUT", ghOut, "GITHUB_ACTIONS", "true"),
				"pull", "--json", "--restore-key", "soft-", "soft-k", dir)
			if code != 0 {
				t.Fatalf("pull: exit %d, want 0 (a miss)\nstderr: %s", code, stderr)
			}
			w := warnings(stderr)
			if len(w) != 1 || !strings.Contains(w[0], `pull "soft-k": treated as a miss`) || !strings.Contains(strings.ToLower(w[0]), c.cause) {
				t.Errorf("warnings %q, want one naming the miss and %q\nstderr: %s", w, c.cause, stderr)
			}
			if !strings.Contains(stderr, "::warning title=tiercache::pull") {
				t.Errorf("no GitHub Actions annotation under GITHUB_ACTIONS=true:\n%s", stderr)
			}
			var out pullJSON
			decodeJSON(t, stdout, &out)
			var raw map[string]any
			if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
				t.Fatal(err)
			}
			if out.Hit || raw["error"] == nil || !strings.Contains(strings.ToLower(raw["error"].(string)), c.cause) {
				t.Errorf("--json: %s, want a miss with an error naming %q", stdout, c.cause)
			}
			if gh, _ := os.ReadFile(ghOut); !strings.Contains(string(gh), "cache-hit=false\n") {
				t.Errorf("GITHUB_OUTPUT: %q, want cache-hit=false", gh)
			}
			if after := snap(); !maps.Equal(before, after) {
				t.Errorf("DIR changed by a failed pull:\nbefore %v\nafter  %v", before, after)
			}
			// A DIR that did not exist is not created either.
			absent := filepath.Join(t.TempDir(), "absent")
			if _, stderr, code := runCLI(t, m, "pull", "soft-k", absent); code != 0 {
				t.Errorf("pull into an absent DIR: exit %d\n%s", code, stderr)
			}
			if _, err := os.Lstat(absent); !os.IsNotExist(err) {
				t.Errorf("a failed pull created DIR: %v", err)
			}
			// --no-local fails the same soft way.
			if _, stderr, code := runCLI(t, m, "pull", "--no-local", "soft-k", dir); code != 0 || len(warnings(stderr)) != 1 {
				t.Errorf("pull --no-local: exit %d, stderr %q; want 0 and one warning", code, stderr)
			}
			// --fail-on-miss counts it as a miss.
			if _, stderr, code := runCLI(t, m, "pull", "--fail-on-miss", "soft-k", dir); code != exitMissCode {
				t.Errorf("pull --fail-on-miss: exit %d, want %d\n%s", code, exitMissCode, stderr)
			}
			// --strict makes it a failure, with one error line.
			for _, strict := range []env{m.with("TIERCACHE_STRICT", "true"), m} {
				args := []string{"pull", "soft-k", dir}
				if _, ok := strict["TIERCACHE_STRICT"]; !ok {
					args = append([]string{"--strict"}, args...)
				}
				_, stderr, code := runCLI(t, strict, args...)
				if code != 1 || len(warnings(stderr)) != 0 || !strings.HasPrefix(stderr, `tiercache: pull "soft-k": `) || !strings.Contains(strings.ToLower(stderr), c.cause) {
					t.Errorf("strict pull: exit %d, stderr %q; want exit 1 and an error naming %q", code, stderr, c.cause)
				}
			}
			if after := snap(); !maps.Equal(before, after) {
				t.Errorf("DIR changed by failed pulls:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestSoftFailurePullFindsLocal: with the remote down, what the local
// tier holds is still restored, exact key or restore key, with a warning
// only where the remote was needed.
func TestSoftFailurePullFindsLocal(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	src := smallTree(t, "local")
	mustRun(t, e, "push", "-q", "local-1", src)
	down := e.with("TIERCACHE_S3_ENDPOINT", deadEndpoint(t), "AWS_MAX_ATTEMPTS", "1")
	dst := filepath.Join(t.TempDir(), "d")
	_, stderr := mustRun(t, down, "pull", "--fail-on-miss", "local-1", dst)
	if w := warnings(stderr); len(w) != 0 {
		t.Errorf("a local hit warned about the remote: %q", w)
	}
	assertTag(t, dst, "local")
	dst2 := filepath.Join(t.TempDir(), "d")
	_, stderr = mustRun(t, down, "pull", "--fail-on-miss", "--restore-key", "local-", "local-2", dst2)
	if w := warnings(stderr); len(w) != 1 || !strings.Contains(w[0], "restoring from the local tier only") {
		t.Errorf("warnings %q, want one saying the local tier was used alone", w)
	}
	assertTag(t, dst2, "local")
}

func TestSoftFailurePush(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "soft-k", smallTree(t, "soft"))
	before := objects(t, b, "")
	for _, c := range softCases(t, e, b) {
		t.Run(c.name, func(t *testing.T) {
			m := c.env.freshMachine(t)
			src := smallTree(t, "pushed")
			stdout, stderr, code := runCLI(t, m.with("GITHUB_ACTIONS", "true"), "push", "--json", "soft-new", src)
			if code != 0 {
				t.Fatalf("push: exit %d, want 0\nstderr: %s", code, stderr)
			}
			w := warnings(stderr)
			if len(w) != 1 || !strings.Contains(w[0], `push "soft-new": nothing was saved remotely`) || !strings.Contains(strings.ToLower(w[0]), c.cause) {
				t.Errorf("warnings %q, want one saying nothing was saved remotely, naming %q", w, c.cause)
			}
			if !strings.Contains(stderr, "::warning title=tiercache::push") || !strings.Contains(stderr, "saved locally only") {
				t.Errorf("stderr %q, want an annotation and a summary saying the tree was saved locally only", stderr)
			}
			var raw map[string]any
			if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
				t.Fatalf("--json: %v\n%s", err, stdout)
			}
			if raw["uploaded"] != false || raw["error"] == nil {
				t.Errorf("--json: %s, want uploaded false and an error", stdout)
			}
			// Saved locally: this machine restores it with the remote
			// still failing.
			dst := filepath.Join(t.TempDir(), "d")
			mustRun(t, m, "pull", "--fail-on-miss", "soft-new", dst)
			assertTag(t, dst, "pushed")

			// --no-local saves nothing, and says so.
			_, stderr, code = runCLI(t, m, "push", "--no-local", "soft-new2", src)
			if code != 0 || len(warnings(stderr)) != 1 || !strings.Contains(stderr, "nothing saved") {
				t.Errorf("push --no-local: exit %d, stderr %q; want 0, a warning and 'nothing saved'", code, stderr)
			}
			// --strict: a failure.
			_, stderr, code = runCLI(t, m, "--strict", "push", "soft-new3", src)
			if code != 1 || !strings.HasPrefix(stderr, `tiercache: push "soft-new3": `) || !strings.Contains(strings.ToLower(stderr), c.cause) {
				t.Errorf("strict push: exit %d, stderr %q; want exit 1 naming %q", code, stderr, c.cause)
			}
		})
	}
	if after := objects(t, b, ""); !slices.Equal(before, after) {
		t.Errorf("failed pushes changed the bucket:\nbefore %v\nafter  %v", before, after)
	}
}

// TestSoftFailureCorruptEntry: an entry whose archive fails verification
// is a miss with a warning (DIR as it was), and an error with --strict.
// The pulls are read-only, so the entry stays for the next one (a
// writable pull removes it: see TestRefusedEntryRepairedByNextJob).
func TestSoftFailureCorruptEntry(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "bad", smallTree(t, "bad"))
	plantedKey{t, b, "bad"}.damageData(flipByte)
	for _, noLocal := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-local=%v", noLocal), func(t *testing.T) {
			fresh := e.freshMachine(t).with("TIERCACHE_NO_LOCAL", fmt.Sprint(noLocal), "TIERCACHE_READ_ONLY", "true")
			dir, snap := softDir(t)
			before := snap()
			_, stderr, code := runCLI(t, fresh, "pull", "bad", dir)
			w := warnings(stderr)
			if code != 0 || len(w) != 1 || !strings.Contains(w[0], "integrity") || !strings.Contains(w[0], "tiercache rm") {
				t.Errorf("pull of a corrupt entry: exit %d, warnings %q; want 0 and one integrity warning with its fix", code, w)
			}
			if _, stderr, code := runCLI(t, fresh, "--strict", "pull", "bad", dir); code != 1 || !strings.Contains(stderr, "integrity") {
				t.Errorf("strict pull of a corrupt entry: exit %d, stderr %q", code, stderr)
			}
			if after := snap(); !maps.Equal(before, after) {
				t.Errorf("DIR changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// One bad entry is not a down remote: a restore key's older entry
	// is still found there.
	mustRun(t, e, "push", "-q", "bad-older", smallTree(t, "older"))
	for _, noLocal := range []bool{false, true} {
		fresh := e.freshMachine(t).with("TIERCACHE_NO_LOCAL", fmt.Sprint(noLocal), "TIERCACHE_READ_ONLY", "true")
		dir := filepath.Join(t.TempDir(), "d")
		_, stderr, code := runCLI(t, fresh, "pull", "bad", "-r", "bad-", dir)
		if w := warnings(stderr); code != 0 || len(w) != 1 || !strings.Contains(w[0], "integrity") {
			t.Errorf("no-local=%v: pull of a corrupt entry with a restore key: exit %d, warnings %q; want 0 and one integrity warning", noLocal, code, w)
		}
		assertTag(t, dir, "older")
	}
}

// assertTag checks that dir holds the treetest.Small tree tagged tag.
func assertTag(t *testing.T, dir, tag string) {
	t.Helper()
	if got, err := treetest.CheckSmall(dir); err != nil || got != tag {
		t.Errorf("%s: tree %q, %v; want %q", dir, got, err, tag)
	}
}

// TestPullKeepsDirMeta: a pull into an existing DIR, from the remote or
// from the local tier, leaves DIR's own mode and mtime as they were (the
// archive has no root member to say otherwise), as tar -x does.
func TestPullKeepsDirMeta(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "meta", smallTree(t, "meta"))
	m := e.freshMachine(t)
	for _, round := range []string{"from the remote", "from the local tier"} {
		dir := filepath.Join(t.TempDir(), "dir")
		if err := os.Mkdir(dir, 0o751); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o751); err != nil { // whatever the umask
			t.Fatal(err)
		}
		old := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		mustRun(t, m, "pull", "--fail-on-miss", "meta", dir)
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o751 || !fi.ModTime().Equal(old) {
			t.Errorf("%s: DIR is %v, mtime %v; want 0751 and %v as before", round, fi.Mode().Perm(), fi.ModTime(), old)
		}
		assertTag(t, dir, "meta")
	}
}
