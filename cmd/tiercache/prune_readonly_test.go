package main

import (
	"strings"
	"testing"
)

// TestPruneReadOnlyMessage: a read-only prune of an existing cache is
// refused in one clear line, before anything is evicted.
func TestPruneReadOnlyMessage(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "k", smallTree(t, "ro"))
	mustCLI(t, e, "push", "k2", smallTree(t, "ro2"))
	r := cli(t, e.with("TIERCACHE_READ_ONLY", "true"), "prune", "--max-entries", "1")
	want := "tiercache: prune: cache is read-only (--read-only or TIERCACHE_READ_ONLY is set)\n"
	if r.code != exitFailure || r.stderr != want {
		t.Errorf("read-only prune: exit %d, stderr %q; want exit %d, %q", r.code, r.stderr, exitFailure, want)
	}
	if r := mustCLI(t, e, "ls", "--json"); !strings.Contains(r.stdout, `"key": "k"`) || !strings.Contains(r.stdout, `"key": "k2"`) {
		t.Errorf("the refused prune evicted an entry:\n%s", r.stdout)
	}
}
