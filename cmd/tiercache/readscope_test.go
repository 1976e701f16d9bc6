package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestReadScopeEmptyIsDefault: an empty --read-scope reads the default scope,
// as --help says and TIERCACHE_READ_SCOPES's empty field does; a plain
// string slice flag took it for no scope at all.
func TestReadScopeEmptyIsDefault(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "k", smallTree(t, "default"))
	for _, args := range [][]string{
		{"--read-scope", ""},
		{"--read-scope="},
		{"--read-scope", "other,"},
		{"--read-scope", "other", "--read-scope", ""},
	} {
		r := mustCLI(t, e, append(append([]string{"--scope", "pr-1"}, args...), "pull", "--json", "k", filepath.Join(t.TempDir(), "d"))...)
		if !strings.Contains(r.stdout, `"hit": true`) {
			t.Errorf("%q: not a hit from the default scope:\n%s", args, r.stdout)
		}
	}
	r := mustCLI(t, e, "--scope", "pr-1", "pull", "--json", "k", filepath.Join(t.TempDir(), "d"))
	if !strings.Contains(r.stdout, `"hit": false`) {
		t.Errorf("no read scope: want a miss:\n%s", r.stdout)
	}
}

// TestReadScopesSpaced: "main, dev" in TIERCACHE_READ_SCOPES (or
// --read-scope) reads scope dev, not " dev".
func TestReadScopesSpaced(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "--scope", "dev", "push", "k", smallTree(t, "dev"))
	for _, run := range []struct {
		e    env
		args []string
	}{
		{e.with("TIERCACHE_READ_SCOPES", "main, dev"), nil},
		{e, []string{"--read-scope", "main, dev"}},
	} {
		r := mustCLI(t, run.e, append(append([]string{"--scope", "pr-1"}, run.args...), "pull", "--json", "k", filepath.Join(t.TempDir(), "d"))...)
		if !strings.Contains(r.stdout, `"hit": true`) {
			t.Errorf("%q: not a hit from scope dev:\n%s", run.args, r.stdout)
		}
	}
}
