package main

import (
	"strings"
	"testing"
)

// TestLsJSONAlwaysHasDescription: an entry pushed without a description
// still has the field, so `jq .description` never meets a missing key.
func TestLsJSONAlwaysHasDescription(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "nodesc-1", smallTree(t, "nodesc"))
	var entries []map[string]any
	decode(t, mustCLI(t, e, "ls", "--json"), &entries)
	if len(entries) != 1 {
		t.Fatalf("ls --json: %v, want one entry", entries)
	}
	d, ok := entries[0]["description"]
	if !ok || d != "" {
		t.Errorf("entry JSON: %v, want \"description\": \"\"", entries[0])
	}
}

// TestRootHelpNamesEveryGitHubOutput: the root help lists each step output
// pull writes.
func TestRootHelpNamesEveryGitHubOutput(t *testing.T) {
	r := mustCLI(t, newEnv(t), "--help")
	for _, o := range []string{"cache-hit", "cache-matched-key", "cache-primary-key"} {
		if !strings.Contains(r.stdout, o) {
			t.Errorf("--help does not name the GITHUB_OUTPUT output %s", o)
		}
	}
}
