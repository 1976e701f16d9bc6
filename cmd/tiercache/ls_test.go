package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
)

func TestLsRmStats(t *testing.T) {
	e := newEnv(t)
	r := mustCLI(t, e, "ls")
	if r.stdout != "" || r.stderr != "tiercache: no entries\n" {
		t.Errorf("empty ls: stdout %q stderr %q", r.stdout, r.stderr)
	}
	var empty []tiercache.Entry
	decode(t, mustCLI(t, e, "ls", "--json"), &empty)
	if empty == nil || len(empty) != 0 {
		t.Errorf("empty ls --json: %#v, want []", empty)
	}

	mustCLI(t, e, "push", "-d", "first\tentry", "alpha-1", smallTree(t, "a"))
	mustCLI(t, e, "push", "--description", "second", "beta-1", smallTree(t, "b"))

	r = mustCLI(t, e, "ls")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIER") || !strings.Contains(lines[1], "alpha-1") || !strings.Contains(lines[1], "first entry") || !strings.Contains(lines[2], "beta-1") {
		t.Errorf("ls table:\n%s", r.stdout)
	}

	var entries []map[string]any
	decode(t, mustCLI(t, e, "ls", "--json", "alpha"), &entries)
	if len(entries) != 1 {
		t.Fatalf("ls --json alpha: %v", entries)
	}
	en := entries[0]
	if en["key"] != "alpha-1" || en["tier"] != "local" || en["description"] != "first\tentry" {
		t.Errorf("entry JSON: %v", en)
	}
	for _, f := range []string{"size", "files", "created", "last_access"} {
		if _, ok := en[f]; !ok {
			t.Errorf("entry JSON lacks %q: %v", f, en)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, en["created"].(string)); err != nil {
		t.Errorf("created is not RFC 3339: %v", err)
	}
	// Not an empty list, which would read as an empty bucket.
	if r := cli(t, e, "ls", "--json", "--tier", "remote"); r.code != exitUsage || !strings.Contains(r.stderr, "no remote is configured") {
		t.Errorf("--tier remote without a remote: exit %d, stderr %q; want a usage error", r.code, r.stderr)
	}

	var st map[string]map[string]any
	decode(t, mustCLI(t, e, "stats", "--json"), &st)
	if _, ok := st["remote"]; ok {
		t.Errorf("stats JSON has a remote without one configured: %v", st)
	}
	if st["local"]["entries"] != float64(2) || st["local"]["bytes"].(float64) <= 0 || st["local"]["files"].(float64) <= 0 {
		t.Errorf("stats JSON: %v", st)
	}
	r = mustCLI(t, e, "stats")
	if !strings.HasPrefix(r.stdout, "TIER") || !strings.Contains(r.stdout, "local") || strings.Contains(r.stdout, "remote") {
		t.Errorf("stats table:\n%s", r.stdout)
	}

	var rm rmJSON
	decode(t, mustCLI(t, e, "rm", "--json", "alpha-1", "never-stored"), &rm)
	if len(rm.Removed) != 1 || rm.Removed[0] != "alpha-1" || len(rm.NotStored) != 1 || rm.NotStored[0] != "never-stored" {
		t.Errorf("rm --json: %+v", rm)
	}
	decode(t, mustCLI(t, e, "ls", "--json"), &entries)
	if len(entries) != 1 || entries[0]["key"] != "beta-1" {
		t.Errorf("after rm: %v", entries)
	}
	if r := cli(t, e, "pull", "--fail-on-miss", "alpha-1", filepath.Join(t.TempDir(), "d")); r.code != exitMiss {
		t.Errorf("pull after rm: exit %d", r.code)
	}
}

func TestPrune(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"p-1", "p-2", "p-3"} {
		mustCLI(t, e, "push", k, smallTree(t, k))
	}
	// Access p-1, so p-2 is the least recently used.
	time.Sleep(10 * time.Millisecond)
	mustCLI(t, e, "pull", "p-1", filepath.Join(t.TempDir(), "d"))

	var res prunedJSON
	decode(t, mustCLI(t, e, "prune", "--json", "--max-entries", "2"), &res)
	if res.Local != 1 || res.Remote != 0 {
		t.Errorf("prune JSON: %v", res)
	}
	var entries []tiercache.Entry
	decode(t, mustCLI(t, e, "ls", "--json"), &entries)
	var keys []string
	for _, en := range entries {
		keys = append(keys, en.Key)
	}
	if strings.Join(keys, ",") != "p-1,p-3" {
		t.Errorf("after prune: %v, want p-1,p-3", keys)
	}
	r := mustCLI(t, e, "prune", "--max-bytes", "1B")
	if !strings.HasSuffix(r.stderr, "\ntiercache: pruned 2 local entries\n") {
		t.Errorf("prune summary: %q", r.stderr)
	}
}

// TestLsQuotesKeysWithOuterSpaces: "a" and "a " are two keys, and ls's
// table must not show them alike.
func TestLsQuotesKeysWithOuterSpaces(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t, "x")
	mustCLI(t, e, "push", "-q", "a", src)
	mustCLI(t, e, "push", "-q", "a ", src)
	r := mustCLI(t, e, "ls")
	if !strings.Contains(r.stdout, "local  a     ") || !strings.Contains(r.stdout, `local  "a "  `) {
		t.Errorf("ls:\n%s\nwant a plain and a quoted \"a \"", r.stdout)
	}
}
