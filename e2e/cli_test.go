//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache/internal/treetest"
)

// decodeJSON unmarshals stdout into v.
func decodeJSON(t *testing.T, stdout string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("stdout is not JSON (%v):\n%s", err, stdout)
	}
}

// smallTree makes a quick tagged tree and returns its path.
func smallTree(t *testing.T, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	treetest.Small(t, dir, 30, tag)
	return dir
}

// pullJSON is the subset of `pull --json` the tests read.
type pullJSON struct {
	Hit             bool     `json:"hit"`
	Key             string   `json:"key"`
	Tier            string   `json:"tier"`
	Bytes           int64    `json:"bytes"`
	Seconds         float64  `json:"seconds"`
	DownloadedBytes int64    `json:"downloaded_bytes"`
	Paths           []string `json:"paths"`
	Skipped         []string `json:"skipped"`
}

// TestCLIRoundTripFidelity pushes the fidelity tree (big files included),
// drops the local tier, pulls it back through MinIO and finds zero
// differences; then pulls again as a local hit.
func TestCLIRoundTripFidelity(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 500})

	out, stderr := mustRun(t, e, "push", "--json", "fidelity-1", src)
	var push map[string]any
	decodeJSON(t, out, &push)
	if push["uploaded"] != true || push["archive_bytes"].(float64) <= 0 || push["key"] != "fidelity-1" {
		t.Errorf("push JSON: %v", push)
	}
	if !strings.Contains(stderr, `pushed "fidelity-1"`) || !strings.Contains(stderr, "uploaded") {
		t.Errorf("push summary: %q", stderr)
	}
	if objs := objects(t, b, remotePrefix); len(objs) == 0 {
		t.Fatal("nothing in the bucket after push")
	}

	// Another machine: same remote, empty local tier.
	e2 := e.freshMachine(t)
	dst := filepath.Join(t.TempDir(), "dst")
	out, stderr = mustRun(t, e2, "pull", "--json", "fidelity-1", dst)
	var hit pullJSON
	decodeJSON(t, out, &hit)
	if !hit.Hit || hit.Key != "fidelity-1" || hit.Tier != "remote" || hit.DownloadedBytes <= 0 || hit.Bytes < 2*treetest.BigFileSize {
		t.Errorf("remote pull JSON: %+v", hit)
	}
	if !strings.Contains(stderr, `hit "fidelity-1" from the remote tier`) {
		t.Errorf("remote pull summary: %q", stderr)
	}
	treetest.AssertEqual(t, src, dst)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, treetest.FidelityReadOnlyDir), 0o755) })

	// Again on the same machine: a local hit, same tree.
	dst2 := filepath.Join(t.TempDir(), "dst2")
	out, _ = mustRun(t, e2, "pull", "--json", "fidelity-1", dst2)
	decodeJSON(t, out, &hit)
	if !hit.Hit || hit.Tier != "local" || hit.DownloadedBytes != 0 {
		t.Errorf("local pull JSON: %+v", hit)
	}
	treetest.AssertEqual(t, src, dst2)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst2, treetest.FidelityReadOnlyDir), 0o755) })
}

// TestCLIRestoreKeyNewest checks that a restore key picks the newest
// matching entry of the remote, and that restore keys go in order.
func TestCLIRestoreKeyNewest(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	for _, k := range []string{"deps-1", "deps-2", "other-1"} {
		mustRun(t, e, "push", "-q", k, smallTree(t, k))
		time.Sleep(20 * time.Millisecond) // distinct creation times
	}
	e2 := e.freshMachine(t)
	dst := filepath.Join(t.TempDir(), "dst")
	out, _ := mustRun(t, e2, "pull", "--json", "--restore-key", "nope-", "--restore-key", "deps-", "--restore-key", "other-", "deps-3", dst)
	var hit pullJSON
	decodeJSON(t, out, &hit)
	if !hit.Hit || hit.Key != "deps-2" || hit.Tier != "remote" {
		t.Errorf("restore-key pull: %+v, want deps-2 from remote", hit)
	}
	if tag, err := treetest.CheckSmall(dst); err != nil || tag != "deps-2" {
		t.Errorf("restored tree: tag %q, %v; want deps-2", tag, err)
	}
}

// TestCLIFailOnMissAndGitHubOutput covers the miss exit codes and the
// GitHub Actions outputs against a real remote.
func TestCLIFailOnMissAndGitHubOutput(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "gh-1", smallTree(t, "gh-1"))
	ghOut := filepath.Join(t.TempDir(), "github_output")
	e2 := e.freshMachine(t).with("GITHUB_OUTPUT", ghOut)

	_, stderr, code := runCLI(t, e2, "pull", "--fail-on-miss", "gh-2", filepath.Join(t.TempDir(), "d"))
	if code != 3 || !strings.Contains(stderr, `tiercache: pull "gh-2": cache miss (--fail-on-miss)`) {
		t.Errorf("--fail-on-miss: exit %d, stderr %q", code, stderr)
	}
	if _, _, code := runCLI(t, e2, "pull", "gh-2", filepath.Join(t.TempDir(), "d")); code != 0 {
		t.Errorf("plain miss: exit %d, want 0", code)
	}
	mustRun(t, e2, "pull", "--fail-on-miss", "-r", "gh-", "gh-2", filepath.Join(t.TempDir(), "d"))
	mustRun(t, e2, "pull", "gh-1", filepath.Join(t.TempDir(), "d"))

	b2, err := os.ReadFile(ghOut)
	if err != nil {
		t.Fatal(err)
	}
	want := "cache-hit=false\ncache-matched-key=\ncache-primary-key=gh-2\n" +
		"cache-hit=false\ncache-matched-key=\ncache-primary-key=gh-2\n" +
		"cache-hit=false\ncache-matched-key=gh-1\ncache-primary-key=gh-2\n" +
		"cache-hit=true\ncache-matched-key=gh-1\ncache-primary-key=gh-1\n"
	if string(b2) != want {
		t.Errorf("GITHUB_OUTPUT:\n%s\nwant:\n%s", b2, want)
	}
}

// TestCLIReadOnly proves a read-only push is refused with no request at
// all, and a read-only pull sends only reads.
func TestCLIReadOnly(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "ro-existing", smallTree(t, "ro"))
	before := objects(t, b, "")

	endpoint, log := recordingProxy(t)
	ro := e.freshMachine(t).with("TIERCACHE_S3_ENDPOINT", endpoint)
	for _, args := range [][]string{
		{"--read-only", "push", "ro-new", smallTree(t, "new")},
		{"--read-only", "push", "ro-existing", smallTree(t, "overwrite")},
		{"--read-only", "rm", "ro-existing"},
		{"--read-only", "prune", "--remote-max-entries", "0", "--max-entries", "1"},
	} {
		_, stderr, code := runCLI(t, ro, args...)
		if code != 1 || !strings.Contains(stderr, "read-only") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and one read-only error line", args, code, stderr)
		}
	}
	_, stderr, code := runCLI(t, ro.with("TIERCACHE_READ_ONLY", "1"), "push", "ro-new", smallTree(t, "new"))
	if code != 1 || !strings.HasPrefix(stderr, `tiercache: push "ro-new": cache is read-only`) {
		t.Errorf("TIERCACHE_READ_ONLY push: exit %d, stderr %q", code, stderr)
	}
	if w := log.writes(); len(w) != 0 {
		t.Errorf("read-only commands sent write requests: %v", w)
	}

	// A read-only pull works and only reads.
	dst := filepath.Join(t.TempDir(), "dst")
	mustRun(t, ro, "--read-only", "pull", "--fail-on-miss", "ro-existing", dst)
	if tag, err := treetest.CheckSmall(dst); err != nil || tag != "ro" {
		t.Errorf("read-only pull: tag %q, %v", tag, err)
	}
	if len(log.all()) == 0 {
		t.Error("the proxy saw no request: the test does not observe the CLI")
	}
	if w := log.writes(); len(w) != 0 {
		t.Errorf("read-only pull sent write requests: %v", w)
	}
	if after := objects(t, b, ""); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("bucket changed under read-only commands:\nbefore %v\nafter  %v", before, after)
	}
}

// TestCLIJSONShapes decodes the --json output of every command with a
// remote configured.
func TestCLIJSONShapes(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	src := smallTree(t, "json")
	out, _ := mustRun(t, e, "push", "--json", "json-1", src)
	var push map[string]any
	decodeJSON(t, out, &push)
	for k, v := range map[string]any{"key": "json-1", "remote": true, "uploaded": true, "upload_skipped": false} {
		if push[k] != v {
			t.Errorf("push %s = %v, want %v", k, push[k], v)
		}
	}
	// The same tree again: the remote already holds it.
	out, _ = mustRun(t, e, "push", "--json", "json-1", src)
	decodeJSON(t, out, &push)
	if push["uploaded"] != false || push["upload_skipped"] != true {
		t.Errorf("second push: %v, want upload skipped", push)
	}

	out, _ = mustRun(t, e, "ls", "--json")
	var entries []map[string]any
	decodeJSON(t, out, &entries)
	tiers := map[string]bool{}
	for _, en := range entries {
		if en["key"] != "json-1" {
			t.Errorf("ls entry: %v", en)
		}
		tiers[en["tier"].(string)] = true
		for _, f := range []string{"size", "files", "created", "last_access"} {
			if _, ok := en[f]; !ok {
				t.Errorf("ls entry lacks %s: %v", f, en)
			}
		}
	}
	if len(entries) != 2 || !tiers["local"] || !tiers["remote"] {
		t.Errorf("ls --json: %v, want json-1 in both tiers", entries)
	}

	out, _ = mustRun(t, e, "stats", "--json")
	var st map[string]map[string]any
	decodeJSON(t, out, &st)
	for _, tier := range []string{"local", "remote"} {
		if st[tier]["entries"] != float64(1) || st[tier]["bytes"].(float64) <= 0 {
			t.Errorf("stats %s: %v", tier, st[tier])
		}
	}

	out, _ = mustRun(t, e.freshMachine(t), "pull", "--json", "json-1", filepath.Join(t.TempDir(), "d"))
	var pull map[string]any
	decodeJSON(t, out, &pull)
	for _, f := range []string{"hit", "key", "tier", "bytes", "seconds"} {
		if _, ok := pull[f]; !ok {
			t.Errorf("pull JSON lacks %s: %v", f, pull)
		}
	}
	if pull["tier"] != "remote" {
		t.Errorf("pull tier = %v", pull["tier"])
	}

	out, _ = mustRun(t, e, "prune", "--json", "--remote-max-entries", "1")
	var pr struct{ Local, Remote int }
	decodeJSON(t, out, &pr)
	if pr.Local != 0 || pr.Remote != 0 {
		t.Errorf("prune JSON: %v", pr)
	}
	out, _ = mustRun(t, e, "rm", "--json", "json-1")
	var rm map[string][]string
	decodeJSON(t, out, &rm)
	if len(rm["removed"]) != 1 {
		t.Errorf("rm JSON: %v", rm)
	}
	if objs := objects(t, b, remotePrefix+"manifests/"); len(objs) != 0 {
		t.Errorf("manifests left after rm: %v", objs)
	}
}

// TestCLIEndpointPrecedence checks the endpoint's sources: the flag over
// TIERCACHE_S3_ENDPOINT over AWS_ENDPOINT_URL_S3, which the AWS SDK reads
// by itself when neither is set.
func TestCLIEndpointPrecedence(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	good := e["TIERCACHE_S3_ENDPOINT"]
	// Nothing listens on port 1: a wrong choice fails (after retries).
	dead := "http://127.0.0.1:1"

	awsOnly := e.with("TIERCACHE_S3_ENDPOINT", "", "AWS_ENDPOINT_URL_S3", good)
	mustRun(t, awsOnly, "push", "-q", "ep-1", smallTree(t, "ep"))
	mustRun(t, awsOnly.freshMachine(t), "pull", "--fail-on-miss", "ep-1", filepath.Join(t.TempDir(), "d"))

	mustRun(t, e.with("AWS_ENDPOINT_URL_S3", dead).freshMachine(t), "pull", "--fail-on-miss", "ep-1", filepath.Join(t.TempDir(), "d"))
	mustRun(t, e.with("TIERCACHE_S3_ENDPOINT", dead).freshMachine(t), "--endpoint", good, "pull", "--fail-on-miss", "ep-1", filepath.Join(t.TempDir(), "d"))
}

// TestCLISecretsNeverPrinted plants the secret key and a fake session
// token and checks that no output of any command, failures and --verbose
// included, ever contains them.
func TestCLISecretsNeverPrinted(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	secret := e["AWS_SECRET_ACCESS_KEY"]
	token := "FAKEsessionTOKEN" + strings.Repeat("x", 24)
	wrongSecret := "WRONGsecret" + strings.Repeat("y", 29)
	src := smallTree(t, "secret")
	check := func(label, stdout, stderr string) {
		t.Helper()
		for _, s := range []string{secret, token, wrongSecret} {
			if strings.Contains(stdout, s) || strings.Contains(stderr, s) {
				t.Errorf("%s: a secret appears in the output:\nstdout %s\nstderr %s", label, stdout, stderr)
			}
		}
	}
	run := func(label string, e env, wantOK bool, args ...string) string {
		t.Helper()
		stdout, stderr, code := runCLI(t, e, args...)
		check(label, stdout, stderr)
		if wantOK && code != 0 {
			t.Errorf("%s: exit %d, stderr %q", label, code, stderr)
		}
		if !wantOK {
			if code != 1 {
				t.Errorf("%s: exit %d, want 1; stderr %q", label, code, stderr)
			}
			if lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); !strings.HasPrefix(lines[len(lines)-1], "tiercache: ") {
				t.Errorf("%s: last stderr line is not an error line: %q", label, stderr)
			}
		}
		return stderr
	}
	v := []string{"--verbose"}
	dst := filepath.Join(t.TempDir(), "d")
	run("push", e, true, append(v, "push", "s-1", src)...)
	run("pull", e.freshMachine(t), true, append(v, "pull", "s-1", dst)...)
	run("ls", e, true, append(v, "ls")...)
	run("stats", e, true, append(v, "stats", "--json")...)
	run("prune", e, true, append(v, "prune", "--remote-max-entries", "5")...)
	run("help", e, true, "--help")
	run("version", e, true, append(v, "version")...)

	// Push and pull survive a refused remote with a warning (exit 0), or
	// fail with --strict: neither prints a secret.
	soft := func(label string, e env, args ...string) {
		t.Helper()
		if stderr := run(label, e, true, args...); !strings.Contains(stderr, "tiercache: warning: ") {
			t.Errorf("%s: no warning: %q", label, stderr)
		}
		run(label+" --strict", e, false, append([]string{"--strict"}, args...)...)
	}
	withToken := e.with("AWS_SESSION_TOKEN", token, "GITHUB_ACTIONS", "true")
	soft("push with a bad token", withToken, append(v, "push", "s-2", src)...)
	soft("pull with a bad token", withToken.freshMachine(t), append(v, "pull", "s-1", dst)...)

	wrong := e.with("AWS_SECRET_ACCESS_KEY", wrongSecret)
	// ls lists the local tier and warns about the remote; --strict fails.
	stderr := run("ls with a wrong secret", wrong, true, append(v, "ls")...)
	run("ls with a wrong secret --strict", wrong, false, append(v, "--strict", "ls")...)
	if !strings.Contains(stderr, "access denied") || !strings.Contains(stderr, b) {
		t.Errorf("wrong secret: error does not name the cause and bucket: %q", stderr)
	}
	soft("pull with a wrong secret", wrong.freshMachine(t), "pull", "s-1", dst)
	run("rm with a wrong secret", wrong, false, append(v, "rm", "s-1")...)

	soft("dead endpoint", e.with("TIERCACHE_S3_ENDPOINT", "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS", "1").freshMachine(t), append(v, "pull", "s-1", dst)...)
}

// TestCLIInteroperable checks that another S3 client can read what
// tiercache wrote, and that `zstd -d | tar -x` restores it.
func TestCLIInteroperable(t *testing.T) {
	for _, tool := range []string{"zstd", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed; install it to run this test (set CI to make this a failure)", tool)
		}
	}
	b := bucket(t)
	e := newEnv(t, b)
	src := smallTree(t, "interop")
	if err := os.Symlink("MARKER", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "push", "-q", "interop-1", src)

	var archive string
	for _, o := range objects(t, b, remotePrefix) {
		if strings.HasSuffix(o, ".tar.zst") {
			if archive != "" {
				t.Fatalf("more than one archive: %s and %s", archive, o)
			}
			archive = o
		}
	}
	if archive == "" {
		t.Fatalf("no .tar.zst object in the bucket: %v", objects(t, b, ""))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	obj, err := minioClient(t).GetObject(ctx, b, archive, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("minio-go reading %s: %v", archive, err)
	}

	dst := t.TempDir()
	cmd := exec.CommandContext(ctx, "sh", "-c", `zstd -d -c | tar -x -p -f - -C "$1"`, "sh", dst)
	cmd.Stdin = strings.NewReader(string(data))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zstd -d | tar -x: %v\n%s", err, out)
	}
	treetest.AssertEqual(t, src, dst)
}
