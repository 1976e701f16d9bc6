package main

import (
	"strings"
	"testing"
)

// TestRmNotStored: rm says, per key, whether it removed something or the
// key was not stored, and exits 0 either way.
func TestRmNotStored(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "here-1", smallTree(t, "here"))

	r := mustCLI(t, e, "rm", "here-1", "absent-1")
	if !strings.Contains(r.stderr, `removed "here-1"`) || !strings.Contains(r.stderr, `"absent-1": not stored in the default scope (an entry ls lists in another scope needs rm --scope SCOPE)`) {
		t.Errorf("rm stderr: %q", r.stderr)
	}
	if strings.Contains(r.stderr, `removed "absent-1"`) {
		t.Errorf("rm claims to have removed a key never stored: %q", r.stderr)
	}

	// Removed already: not stored now.
	var out rmJSON
	decode(t, mustCLI(t, e, "rm", "--json", "here-1"), &out)
	if len(out.Removed) != 0 || len(out.NotStored) != 1 || out.NotStored[0] != "here-1" {
		t.Errorf("rm --json of a removed key: %+v", out)
	}
	if r := mustCLI(t, e, "rm", "--json", "absent-2"); !strings.Contains(r.stdout, `"not_stored": [`) || !strings.Contains(r.stdout, `"removed": []`) {
		t.Errorf("rm --json shape: %s", r.stdout)
	}
}
