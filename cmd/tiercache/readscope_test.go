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
		{e, []string{"--read-scope", `main, "dev"`}},
	} {
		r := mustCLI(t, run.e, append(append([]string{"--scope", "pr-1"}, run.args...), "pull", "--json", "k", filepath.Join(t.TempDir(), "d"))...)
		if !strings.Contains(r.stdout, `"hit": true`) {
			t.Errorf("%q: not a hit from scope dev:\n%s", run.args, r.stdout)
		}
	}
}

// TestStatsScope: stats counts every scope's entries, and with --scope
// (or TIERCACHE_SCOPE) that scope's alone.
func TestStatsScope(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "--scope", "dev", "push", "a", smallTree(t, "a"))
	mustCLI(t, e, "--scope", "dev", "push", "b", smallTree(t, "b"))
	mustCLI(t, e, "push", "c", smallTree(t, "c"))
	for _, c := range []struct {
		e    env
		args []string
		want string
	}{
		{e, nil, `"entries": 3`},
		{e, []string{"--scope", "dev"}, `"entries": 2`},
		{e.with("TIERCACHE_SCOPE", "dev"), nil, `"entries": 2`},
		{e, []string{"--scope", "other"}, `"entries": 0`},
	} {
		r := mustCLI(t, c.e, append(c.args, "stats", "--json")...)
		if !strings.Contains(r.stdout, c.want) {
			t.Errorf("stats %q: want %s:\n%s", c.args, c.want, r.stdout)
		}
	}
}
