package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// prunedJSON is prune's --json output.
type prunedJSON struct {
	Local   int `json:"local"`
	Remote  int `json:"remote"`
	Evicted []struct {
		Tier  string `json:"tier"`
		Scope string `json:"scope"`
		Key   string `json:"key"`
		Bytes int64  `json:"bytes"`
	} `json:"evicted"`
}

// TestPruneListsEvicted: prune says which entries it evicted, tier and
// key (and scope), least recently used first: one line each on stderr
// before the summary, as rm says what it removed, and in --json; --quiet
// prints neither.
func TestPruneListsEvicted(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"p-1", "p-2", "p-3"} {
		mustCLI(t, e, "push", k, smallTree(t, k))
		time.Sleep(10 * time.Millisecond)
	}
	mustCLI(t, e, "--scope", "pr-9", "push", "p-4", smallTree(t, "p-4"))
	// Use p-1, so the least recently used are p-2, p-3, then p-4.
	time.Sleep(10 * time.Millisecond)
	mustCLI(t, e, "pull", "p-1", filepath.Join(t.TempDir(), "d"))

	var res prunedJSON
	decode(t, mustCLI(t, e, "prune", "--json", "--max-entries", "2"), &res)
	if res.Local != 2 || res.Remote != 0 || len(res.Evicted) != 2 {
		t.Fatalf("prune --json: %+v, want 2 local entries evicted and listed", res)
	}
	for i, k := range []string{"p-2", "p-3"} {
		if ev := res.Evicted[i]; ev.Tier != "local" || ev.Key != k || ev.Scope != "" || ev.Bytes <= 0 {
			t.Errorf("evicted[%d] = %+v, want local %q with its bytes", i, ev, k)
		}
	}

	r := mustCLI(t, e, "prune", "--max-entries", "1")
	want := regexp.MustCompile(`^tiercache: evicted "p-4" of scope "pr-9" from the local tier \([0-9.]+ [KMG]?i?B\)\n` +
		`tiercache: pruned 1 local entry\n$`)
	if !want.MatchString(r.stderr) || r.stdout != "" {
		t.Errorf("prune output: stdout %q, stderr %q; want the evicted entry, then the summary, on stderr", r.stdout, r.stderr)
	}

	r = mustCLI(t, e, "-q", "prune", "--max-bytes", "1B")
	if r.stderr != "" || r.stdout != "" {
		t.Errorf("prune -q printed stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if r := mustCLI(t, e, "ls"); strings.Contains(r.stdout, "p-1") {
		t.Errorf("p-1 survived prune --max-bytes 1B:\n%s", r.stdout)
	}

	// Nothing evicted: an empty list, not null.
	r = mustCLI(t, e, "prune", "--json", "--max-entries", "1")
	if !strings.Contains(r.stdout, `"evicted": []`) {
		t.Errorf("prune --json with nothing to evict: %s", r.stdout)
	}
}
