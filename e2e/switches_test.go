//go:build unix

package e2e

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// requestPath is the path of a logged request ("METHOD /path?query").
func requestPath(req string) string {
	_, uri, _ := strings.Cut(req, " ")
	p, _, _ := strings.Cut(uri, "?")
	return p
}

// TestLookupOnlySendsNoArchiveGet: pull --lookup-only finds an exact key,
// a restore key's newest match and a miss as a pull does, with manifest
// reads and listings only, counted at the transport: no archive GET, no
// write, nothing in the local tier, and DIR never created.
func TestLookupOnlySendsNoArchiveGet(t *testing.T) {
	b := bucket(t)
	pusher := newEnv(t, b)
	for _, k := range []string{"lo-a-1", "lo-b-1", "lo-b-2"} {
		mustRun(t, pusher, "push", k, smallTree(t, k))
	}
	endpoint, log := recordingProxy(t)
	e := newEnv(t, b).with("TIERCACHE_S3_ENDPOINT", endpoint)
	out := filepath.Join(t.TempDir(), "github_output")
	e = e.with("GITHUB_OUTPUT", out)
	dir := filepath.Join(t.TempDir(), "dir")

	cases := []struct {
		name    string
		args    []string
		exit    int
		wantKey string
	}{
		{"exact hit", []string{"lo-a-1"}, 0, "lo-a-1"},
		{"restore-key hit", []string{"-r", "lo-b-", "lo-b-9"}, 0, "lo-b-2"},
		{"miss", []string{"--fail-on-miss", "-r", "lo-c-", "lo-c-9"}, 3, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := len(log.all())
			args := append([]string{"pull", "--json", "--lookup-only"}, tc.args...)
			stdout, stderr, code := runCLI(t, e, append(args, dir)...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tc.exit, stderr)
			}
			var got pullJSON
			decodeJSON(t, stdout, &got)
			if got.Hit != (tc.wantKey != "") || got.Key != tc.wantKey || got.DownloadedBytes != 0 {
				t.Fatalf("lookup = %+v, want %q found, nothing downloaded", got, tc.wantKey)
			}
			if tc.wantKey != "" && (got.Tier != "remote" || got.Bytes <= 0) {
				t.Fatalf("lookup = %+v, want the remote entry's tier and size", got)
			}
			if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("DIR exists after a lookup (%v)", err)
			}
			reqs := log.all()[from:]
			if len(reqs) == 0 {
				t.Fatal("the lookup sent no request")
			}
			for _, r := range reqs {
				p := requestPath(r)
				read := strings.HasPrefix(r, "GET ") || strings.HasPrefix(r, "HEAD ")
				if !read || strings.Contains(p, "/"+remotePrefix+"data/") {
					t.Errorf("lookup sent %s; want manifest reads and listings only", r)
				}
			}
			// A real pull on another machine restores the same key.
			if tc.wantKey != "" {
				stdout, _ := mustRun(t, pusher.freshMachine(t), append([]string{"pull", "--json"}, append(tc.args, filepath.Join(t.TempDir(), "d"))...)...)
				var real pullJSON
				decodeJSON(t, stdout, &real)
				if real.Key != got.Key || real.Tier != "remote" {
					t.Fatalf("a real pull restored %+v, the lookup found %q", real, got.Key)
				}
			}
		})
	}
	want := "cache-hit=true\ncache-matched-key=lo-a-1\ncache-primary-key=lo-a-1\n" +
		"cache-hit=false\ncache-matched-key=lo-b-2\ncache-primary-key=lo-b-9\n" +
		"cache-hit=false\ncache-matched-key=\ncache-primary-key=lo-c-9\n"
	if b, err := os.ReadFile(out); err != nil || string(b) != want {
		t.Errorf("GITHUB_OUTPUT:\n%s (%v)\nwant:\n%s", b, err, want)
	}
	if stdout, _ := mustRun(t, e, "ls", "--tier", "local", "--json"); strings.TrimSpace(stdout) != "[]" {
		t.Errorf("the local tier after lookups: %s, want nothing", stdout)
	}
}

// ageLocalEntry makes key's local entry look stored, and last used, d
// ago: its meta.json's creation time and its version directory's mtime,
// the local tier's record of the last access, go back by d.
func ageLocalEntry(t *testing.T, e env, key string, d time.Duration) {
	t.Helper()
	v := versionPath(t, e, key)
	p := filepath.Join(v, "meta.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	created, err := time.Parse(time.RFC3339Nano, m["created"].(string))
	if err != nil {
		t.Fatal(err)
	}
	created = created.Add(-d)
	m["created"] = created
	if raw, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(v, created, created); err != nil {
		t.Fatal(err)
	}
}

// objectsOf returns the bucket's objects whose names contain key.
func objectsOf(t *testing.T, bucket, key string) []string {
	t.Helper()
	var out []string
	for _, o := range objects(t, bucket, remotePrefix) {
		if strings.Contains(o, key) {
			out = append(out, o)
		}
	}
	return out
}

// entryKeys returns the keys of an `ls --json` listing.
func entryKeys(t *testing.T, stdout string) []string {
	t.Helper()
	var es []struct {
		Key string `json:"key"`
	}
	decodeJSON(t, stdout, &es)
	var keys []string
	for _, e := range es {
		keys = append(keys, e.Key)
	}
	return keys
}

// TestPruneMaxAge: prune --max-age and --remote-max-age evict exactly the
// entries unused for that long, each tier by its own record of use: the
// local tier's version mtimes (set back here), the remote's manifests and
// access markers (aged by waiting, since S3 sets their times itself).
func TestPruneMaxAge(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	for _, k := range []string{"age-old", "age-used"} {
		mustRun(t, e, "push", k, smallTree(t, k))
	}
	if len(objectsOf(t, b, "age-old")) == 0 {
		t.Fatal("no object of age-old in the bucket")
	}
	start := time.Now()
	// Locally: both stored ten days ago, age-used used since.
	ageLocalEntry(t, e, "age-old", 10*24*time.Hour)
	ageLocalEntry(t, e, "age-used", 10*24*time.Hour)
	mustRun(t, e, "pull", "age-used", filepath.Join(t.TempDir(), "d"))
	// Remotely: wait, then use age-used (a download records its access)
	// and store age-new.
	const remoteAge = 3 * time.Second
	time.Sleep(remoteAge + 2*time.Second - time.Since(start))
	other := e.freshMachine(t)
	mustRun(t, other, "pull", "age-used", filepath.Join(t.TempDir(), "d"))
	mustRun(t, other, "push", "age-new", smallTree(t, "age-new"))

	var st map[string]map[string]any
	stdout, _ := mustRun(t, e, "stats", "--json")
	decodeJSON(t, stdout, &st)
	for tier, min := range map[string]time.Duration{"local": 10 * 24 * time.Hour, "remote": remoteAge} {
		at, err := time.Parse(time.RFC3339Nano, st[tier]["oldest_access"].(string))
		if err != nil || time.Since(at) < min {
			t.Errorf("stats: %s oldest_access %v (%v), want at least %s ago", tier, st[tier]["oldest_access"], err, min)
		}
	}

	stdout, _ = mustRun(t, e, "prune", "--json", "--max-age", "7d", "--remote-max-age", remoteAge.String())
	var res struct{ Local, Remote int }
	decodeJSON(t, stdout, &res)
	if res.Local != 1 || res.Remote != 1 {
		t.Fatalf("prune by age = %v, want one eviction in each tier", res)
	}
	stdout, _ = mustRun(t, e, "ls", "--json", "--tier", "local")
	if got := entryKeys(t, stdout); strings.Join(got, ",") != "age-used" {
		t.Errorf("local tier after the prune: %v, want age-used", got)
	}
	stdout, _ = mustRun(t, e, "ls", "--json", "--tier", "remote")
	if got := entryKeys(t, stdout); strings.Join(got, ",") != "age-new,age-used" {
		t.Errorf("remote tier after the prune: %v, want age-new and age-used", got)
	}
	if left := objectsOf(t, b, "age-old"); len(left) != 0 {
		t.Errorf("objects of the evicted age-old left in the bucket: %v", left)
	}
}

// TestPushIfAbsent: push --if-absent uploads a key the remote lacks, and
// sends no write at all, nor stores anything locally, for a key it holds,
// counted at the transport.
func TestPushIfAbsent(t *testing.T) {
	b := bucket(t)
	endpoint, log := recordingProxy(t)
	e := newEnv(t, b).with("TIERCACHE_S3_ENDPOINT", endpoint)
	puts := func(from int) int {
		n := 0
		for _, r := range log.all()[from:] {
			if strings.HasPrefix(r, "PUT ") {
				n++
			}
		}
		return n
	}
	push := func(e env, key, tag string) (res map[string]any, writes []string) {
		t.Helper()
		from := len(log.all())
		stdout, _ := mustRun(t, e, "push", "--json", "--if-absent", key, smallTree(t, tag))
		decodeJSON(t, stdout, &res)
		if puts(from) == 0 && res["uploaded"] == true {
			t.Fatalf("push %s: uploaded with no PUT seen", key)
		}
		for _, r := range log.all()[from:] {
			if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
				writes = append(writes, r)
			}
		}
		return res, writes
	}

	res, writes := push(e, "ia-1", "first")
	if res["uploaded"] != true || res["already_stored"] != false || len(writes) == 0 {
		t.Fatalf("push --if-absent of a new key: %v, writes %v; want an upload", res, writes)
	}
	before, _ := mustRun(t, e, "ls", "--json")
	res, writes = push(e, "ia-1", "second")
	if res["already_stored"] != true || res["already_in"] != "remote" || res["uploaded"] != false || len(writes) != 0 {
		t.Fatalf("push --if-absent of a stored key: %v, writes %v; want nothing done", res, writes)
	}
	if after, _ := mustRun(t, e, "ls", "--json"); after != before {
		t.Errorf("push --if-absent of a stored key changed the entries:\n%s\nwas:\n%s", after, before)
	}
	// Another machine: nothing sent, nothing stored locally.
	other := e.freshMachine(t)
	res, writes = push(other, "ia-1", "third")
	if res["already_stored"] != true || len(writes) != 0 {
		t.Fatalf("push --if-absent of a stored key on another machine: %v, writes %v", res, writes)
	}
	if stdout, _ := mustRun(t, other, "ls", "--json", "--tier", "local"); strings.TrimSpace(stdout) != "[]" {
		t.Errorf("another machine's local tier after a skipped push: %s", stdout)
	}
	// The first tree is still the one stored.
	dst := filepath.Join(t.TempDir(), "d")
	mustRun(t, other, "pull", "ia-1", dst)
	if tag, err := treetest.CheckSmall(dst); err != nil || tag != "first" {
		t.Errorf("ia-1 holds the tree %q (%v), want the first one", tag, err)
	}
	res, writes = push(other, "ia-2", "fourth")
	if res["uploaded"] != true || len(writes) == 0 {
		t.Fatalf("push --if-absent of another new key: %v, writes %v; want an upload", res, writes)
	}
}
