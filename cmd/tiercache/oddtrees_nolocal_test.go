//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOddNoLocalKeepsOutOfTheTier: with --no-local the local tier is
// not used, but it is still there, other jobs' on this machine: a push
// of ~/.cache leaves it out, and a pull into ~/.cache of an entry holding
// a tiercache/ (pushed where the tier was elsewhere) leaves that member
// out rather than write into the live tier; a PATH inside it is refused.
func TestOddNoLocalKeepsOutOfTheTier(t *testing.T) {
	home, local := oddHome(t)
	m := minioEnv(t)
	e := local.with("TIERCACHE_REMOTE", m["TIERCACHE_REMOTE"], "TIERCACHE_S3_ENDPOINT", m["TIERCACHE_S3_ENDPOINT"],
		"TIERCACHE_S3_PATH_STYLE", m["TIERCACHE_S3_PATH_STYLE"], "TIERCACHE_REGION", m["TIERCACHE_REGION"])
	tier := filepath.Join(home, ".cache", "tiercache")

	r := mustCLI(t, e, "push", "--no-local", "-v", "--json", "k", "~/.cache")
	if !strings.Contains(r.stderr, "leaving out the local tier "+tier) {
		t.Errorf("push --no-local -v ~/.cache: no note that the tier is left out: %q", r.stderr)
	}
	var out pushJSON
	decode(t, r, &out)
	if out.Files != 2 {
		t.Errorf("push --no-local ~/.cache: %d files; want 2 (go-build/, go-build/a)", out.Files)
	}

	// Another machine's entry holding its tier, pulled straight into
	// ~/.cache here.
	theirs := filepath.Join(t.TempDir(), ".cache")
	if err := os.MkdirAll(filepath.Join(theirs, "tiercache"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"x": "x", filepath.Join("tiercache", "planted"): "p"} {
		if err := writeString(filepath.Join(theirs, name), body); err != nil {
			t.Fatal(err)
		}
	}
	mustCLI(t, e, "push", "--no-local", "theirs", theirs)
	r = mustCLI(t, e, "pull", "--no-local", "--json", "theirs", "~/.cache")
	if !strings.Contains(r.stderr, "left out "+filepath.Join("~/.cache", "tiercache")) {
		t.Errorf("pull --no-local into ~/.cache: no warning that tiercache/ was left out: %q", r.stderr)
	}
	var hit pullJSON
	decode(t, r, &hit)
	if len(hit.LeftOut) != 1 {
		t.Errorf("pull --no-local --json: left_out %q; want the one path", hit.LeftOut)
	}
	if got := readFile(t, filepath.Join(home, ".cache", "x")); got != "x" {
		t.Errorf("pulled x: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(tier, "planted")); !os.IsNotExist(err) {
		t.Errorf("the entry's tiercache/ was written into the live tier: %v", err)
	}
	for _, args := range [][]string{{"pull", "--no-local", "theirs", "~/.cache/tiercache/x"}, {"push", "--no-local", "bad", "~/.cache/tiercache"}} {
		if r := cli(t, e, args...); r.code != exitUsage || !strings.Contains(r.stderr, "is the local tier or inside it") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error naming the local tier", args, r.code, r.stderr)
		}
	}
	// The tier, unused by all of it, holds what it held.
	checkMine(t, local)
}
