package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestJSONEnvOnUsageError: TIERCACHE_JSON=true is --json, for an error
// found before the environment is applied (a bad flag, a missing
// argument, another bad variable) too: the error object is printed.
func TestJSONEnvOnUsageError(t *testing.T) {
	e := newEnv(t).with("TIERCACHE_JSON", "true")
	for _, args := range [][]string{
		{"ls", "--bogus"},
		{"pull", "onlykey"},
	} {
		r := cli(t, e, args...)
		var out struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Error == "" || out.ExitCode != r.code || r.code != exitUsage {
			t.Errorf("TIERCACHE_JSON=true %v: exit %d, stdout %q (%v); want the JSON error object, as --json gives", args, r.code, r.stdout, err)
		}
	}
	// A bad variable checked before TIERCACHE_JSON in applyEnv.
	r := cli(t, e.with("TIERCACHE_STRICT", "maybe"), "ls")
	if r.code != exitUsage || r.stdout == "" {
		t.Errorf("TIERCACHE_STRICT=maybe TIERCACHE_JSON=true ls: exit %d, stdout %q; want the JSON error object", r.code, r.stdout)
	}
}

// TestPullEmptyPathRefused: pull refuses an empty PATH as push does
// (exit 2): it would be the working directory, and `tiercache pull KEY
// "$UNSET"` would extract the entry over a checkout.
func TestPullEmptyPathRefused(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "k", smallTree(t, "a"))
	if r := cli(t, e, "push", "k2", ""); r.code != exitUsage {
		t.Fatalf("push k2 \"\": exit %d, want %d (the premise)", r.code, exitUsage)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	r := cli(t, e, "pull", "k", "")
	entries, _ := os.ReadDir(cwd)
	if r.code != exitUsage || len(entries) != 0 {
		t.Errorf("pull k \"\": exit %d, %d entries written into the working directory; want exit %d and nothing written\nstderr: %s", r.code, len(entries), exitUsage, r.stderr)
	}
}

// TestPushBadRestoreKey: push checks its restore keys as pull does: an
// invalid one is a usage error, and nothing is stored.
func TestPushBadRestoreKey(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"", "a\nb"} {
		r := cli(t, e, "push", "k", smallTree(t, "a"), "--restore-key", p)
		if r.code != exitUsage || !strings.Contains(r.stderr, "restore key") {
			t.Errorf("push --restore-key %q: exit %d, stderr %q; want a usage error naming it", p, r.code, r.stderr)
		}
	}
	if r := mustCLI(t, e, "ls"); r.stdout != "" || !strings.Contains(r.stderr, "no entries") {
		t.Errorf("a refused push stored something: %q %q", r.stdout, r.stderr)
	}
}
