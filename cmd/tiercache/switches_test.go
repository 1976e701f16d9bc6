package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	good := map[string]time.Duration{
		"7d":      7 * day,
		"36h":     36 * time.Hour,
		"90m":     90 * time.Minute,
		"1.5d":    36 * time.Hour,
		"1d12h":   36 * time.Hour,
		" 2d ":    2 * day,
		"0":       0,
		"0d":      0,
		"1h30m":   90 * time.Minute,
		"500ms":   500 * time.Millisecond,
		"14d0h0m": 14 * day,
	}
	for s, want := range good {
		if got, err := parseAge(s); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "7", "7 d", "-1h", "-1d", "1d-1h", "1dd", "1w", "1.2.3d", "x", "1e300d", "9999999d"} {
		if got, err := parseAge(s); err == nil {
			t.Errorf("parseAge(%q) = %v, want an error", s, got)
		}
	}
	for _, d := range []time.Duration{7 * day, 36 * time.Hour, 90 * time.Minute, day + time.Second} {
		if back, err := parseAge(formatAge(d)); err != nil || back != d {
			t.Errorf("formatAge(%v) = %q, which parses as %v, %v", d, formatAge(d), back, err)
		}
	}
}

// ageLocal makes the local entry behind index name look stored, and last
// used, d ago.
func ageLocal(t *testing.T, e env, name string, d time.Duration) {
	t.Helper()
	vdir := versionDir(t, e, name)
	p := filepath.Join(vdir, "meta.json")
	var m map[string]any
	if err := json.Unmarshal([]byte(readFile(t, p)), &m); err != nil {
		t.Fatal(err)
	}
	created, err := time.Parse(time.RFC3339Nano, m["created"].(string))
	if err != nil {
		t.Fatal(err)
	}
	created = created.Add(-d)
	m["created"] = created
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(vdir, created, created); err != nil {
		t.Fatal(err)
	}
}

func TestPruneMaxAge(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"a-old", "a-used", "a-new"} {
		mustCLI(t, e, "push", k, smallTree(t, k))
	}
	ageLocal(t, e, "a-old", 8*day)
	ageLocal(t, e, "a-used", 8*day)
	mustCLI(t, e, "pull", "a-used", filepath.Join(t.TempDir(), "d"))

	var st map[string]map[string]any
	decode(t, mustCLI(t, e, "stats", "--json"), &st)
	oldest, err := time.Parse(time.RFC3339Nano, st["local"]["oldest_access"].(string))
	if err != nil || time.Since(oldest) < 8*day {
		t.Errorf("stats oldest_access = %v (%v), want 8 days ago", st["local"]["oldest_access"], err)
	}
	if r := mustCLI(t, e, "stats"); !strings.Contains(r.stdout, "OLDEST ACCESS") || !strings.Contains(r.stdout, oldest.UTC().Format("2006-01-02 15:04:05Z")) {
		t.Errorf("stats table lacks the oldest access:\n%s", r.stdout)
	}

	var res prunedJSON
	decode(t, mustCLI(t, e, "prune", "--json", "--max-age", "9d"), &res)
	if res.Local != 0 {
		t.Errorf("prune --max-age 9d: %v, want nothing evicted", res)
	}
	decode(t, mustCLI(t, e, "prune", "--json", "--max-age", "7d"), &res)
	if res.Local != 1 {
		t.Errorf("prune --max-age 7d: %v, want 1 evicted", res)
	}
	r := mustCLI(t, e, "ls")
	if strings.Contains(r.stdout, "a-old") || !strings.Contains(r.stdout, "a-used") || !strings.Contains(r.stdout, "a-new") {
		t.Errorf("after prune --max-age 7d:\n%s", r.stdout)
	}
	// With a count limit: the least recently used of the rest goes too.
	ageLocal(t, e, "a-new", time.Hour)
	decode(t, mustCLI(t, e, "prune", "--json", "--max-age", "168h", "--max-entries", "1"), &res)
	if res.Local != 1 {
		t.Errorf("prune --max-age 168h --max-entries 1: %v, want 1 evicted", res)
	}
	if r := mustCLI(t, e, "ls"); strings.Contains(r.stdout, "a-new") || !strings.Contains(r.stdout, "a-used") {
		t.Errorf("after prune --max-entries 1:\n%s", r.stdout)
	}

	for _, args := range [][]string{
		{"prune", "--max-age", "-1h"},
		{"prune", "--max-age", "a week"},
		{"prune", "--remote-max-age", "7d"}, // no remote configured
	} {
		if r := cli(t, e, args...); r.code != exitUsage {
			t.Errorf("tiercache %s: exit %d, want %d; stderr %q", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}
	if r := cli(t, e, "prune"); r.code != exitUsage || !strings.Contains(r.stderr, "--max-age") {
		t.Errorf("prune with no limit: exit %d, stderr %q; want a usage error naming --max-age", r.code, r.stderr)
	}
}

func TestPullLookupOnly(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "lk-1", smallTree(t, "lk"))
	out := filepath.Join(t.TempDir(), "github_output")
	e = e.with("GITHUB_OUTPUT", out)
	dir := filepath.Join(t.TempDir(), "dir")
	absent := func(what string) {
		t.Helper()
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: DIR exists (%v), want it never created", what, err)
		}
	}

	r := mustCLI(t, e, "pull", "--lookup-only", "lk-1", dir)
	absent("exact hit")
	if !strings.Contains(r.stderr, `hit "lk-1" in the local tier: `) || !strings.Contains(r.stderr, "lookup only, nothing restored") {
		t.Errorf("lookup summary: %q", r.stderr)
	}
	var hit map[string]any
	decode(t, mustCLI(t, e, "pull", "--json", "--lookup-only", "-r", "lk-", "lk-2", dir), &hit)
	absent("restore-key hit")
	if hit["hit"] != true || hit["key"] != "lk-1" || hit["exact"] != false || hit["tier"] != "local" || hit["lookup_only"] != true ||
		hit["downloaded_bytes"] != float64(0) || hit["bytes"].(float64) <= 0 {
		t.Errorf("lookup --json: %v", hit)
	}
	r = mustCLI(t, e, "pull", "--lookup-only", "lk-3", dir)
	absent("miss")
	if !strings.Contains(r.stderr, `miss: nothing stored under "lk-3" (lookup only)`) {
		t.Errorf("lookup miss summary: %q", r.stderr)
	}
	if r := cli(t, e, "pull", "--lookup-only", "--fail-on-miss", "lk-3", dir); r.code != exitMiss {
		t.Errorf("lookup miss with --fail-on-miss: exit %d, want %d", r.code, exitMiss)
	}
	absent("miss with --fail-on-miss")
	want := "cache-hit=true\ncache-matched-key=lk-1\ncache-primary-key=lk-1\n" +
		"cache-hit=false\ncache-matched-key=lk-1\ncache-primary-key=lk-2\n" +
		"cache-hit=false\ncache-matched-key=\ncache-primary-key=lk-3\n" +
		"cache-hit=false\ncache-matched-key=\ncache-primary-key=lk-3\n"
	if got := readFile(t, out); got != want {
		t.Errorf("GITHUB_OUTPUT:\n%s\nwant:\n%s", got, want)
	}
	// A lookup is not a use: the entry's last access stays.
	var before, after []map[string]any
	decode(t, mustCLI(t, e, "ls", "--json"), &before)
	mustCLI(t, e, "pull", "--lookup-only", "lk-1", dir)
	decode(t, mustCLI(t, e, "ls", "--json"), &after)
	if before[0]["last_access"] != after[0]["last_access"] {
		t.Errorf("a lookup moved the last access from %v to %v", before[0]["last_access"], after[0]["last_access"])
	}
}

func TestPushIfAbsent(t *testing.T) {
	e := newEnv(t)
	var res map[string]any
	decode(t, mustCLI(t, e, "push", "--json", "--if-absent", "ia-1", smallTree(t, "first")), &res)
	if res["already_stored"] != false || res["bytes"].(float64) <= 0 {
		t.Errorf("first push --if-absent: %v", res)
	}
	var before, after []map[string]any
	decode(t, mustCLI(t, e, "ls", "--json"), &before)
	r := mustCLI(t, e, "push", "--if-absent", "ia-1", smallTree(t, "second"))
	if !strings.Contains(r.stderr, `push "ia-1": already stored in the local tier, nothing done (--if-absent)`) {
		t.Errorf("second push --if-absent summary: %q", r.stderr)
	}
	decode(t, mustCLI(t, e, "push", "--json", "--if-absent", "ia-1", smallTree(t, "third")), &res)
	if res["already_stored"] != true || res["already_in"] != "local" || res["uploaded"] != false || res["bytes"] != float64(0) {
		t.Errorf("push --if-absent --json of a stored key: %v", res)
	}
	decode(t, mustCLI(t, e, "ls", "--json"), &after)
	if len(after) != 1 || before[0]["created"] != after[0]["created"] || before[0]["last_access"] != after[0]["last_access"] {
		t.Errorf("push --if-absent of a stored key changed the entry: %v, was %v", after, before)
	}
	// Without --if-absent, the key is replaced.
	mustCLI(t, e, "push", "ia-1", smallTree(t, "fourth"))
	decode(t, mustCLI(t, e, "ls", "--json"), &after)
	if before[0]["created"] == after[0]["created"] {
		t.Error("a push without --if-absent did not replace the entry")
	}
}

// TestSwitchesRemoteDown: a remote that fails makes a lookup and the
// --if-absent check go on with the local tier, with a warning, unless
// --strict.
func TestSwitchesRemoteDown(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "offlinetestsecretofflinetestsecret0123")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	local := newEnv(t)
	mustCLI(t, local, "push", "-q", "k-1", smallTree(t, "a"))
	endpoint, conns := closingServer(t)
	e := local.with(
		"TIERCACHE_REMOTE", "s3://bucket/prefix",
		"TIERCACHE_S3_ENDPOINT", endpoint,
		"TIERCACHE_S3_PATH_STYLE", "true",
		"TIERCACHE_REGION", "us-east-1",
		"AWS_MAX_ATTEMPTS", "1",
	)
	dir := filepath.Join(t.TempDir(), "dir")

	r := mustCLI(t, e, "pull", "--lookup-only", "-r", "k-", "k-2", dir)
	if !strings.Contains(r.stderr, `warning: pull "k-2": looked up in the local tier only: `) || !strings.Contains(r.stderr, `hit "k-1" (restore key "k-"; "k-2" missed) in the local tier`) {
		t.Errorf("lookup with the remote down: %q", r.stderr)
	}
	if conns.Load() == 0 {
		t.Error("the lookup did not ask the remote")
	}
	r = mustCLI(t, e, "pull", "--lookup-only", "k-2", dir)
	if !strings.Contains(r.stderr, `warning: pull "k-2": treated as a miss: `) {
		t.Errorf("lookup miss with the remote down: %q", r.stderr)
	}
	// A local hit needs no remote, as in a pull; anything else fails.
	mustCLI(t, e, "pull", "--lookup-only", "--strict", "k-1", dir)
	if r := cli(t, e, "pull", "--lookup-only", "--strict", "-r", "k-", "k-2", dir); r.code != exitFailure {
		t.Errorf("strict lookup with the remote down: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lookups with the remote down made DIR: %v", err)
	}

	r = mustCLI(t, e, "push", "--if-absent", "k-1", smallTree(t, "b"))
	if !strings.Contains(r.stderr, `warning: push "k-1": nothing was saved remotely`) || !strings.Contains(r.stderr, `already stored in the local tier, nothing done (--if-absent; the remote could not be asked`) {
		t.Errorf("push --if-absent of a local key with the remote down: %q", r.stderr)
	}
	r = mustCLI(t, e, "push", "--if-absent", "k-3", smallTree(t, "c"))
	if !strings.Contains(r.stderr, `pushed "k-3"`) || !strings.Contains(r.stderr, "saved locally only") {
		t.Errorf("push --if-absent of a new key with the remote down: %q", r.stderr)
	}
	if r := cli(t, e, "push", "--if-absent", "--strict", "k-4", smallTree(t, "d")); r.code != exitFailure {
		t.Errorf("strict push --if-absent with the remote down: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
}
