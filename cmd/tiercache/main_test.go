package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
)

// result is what one in-process CLI run produced.
type result struct {
	stdout, stderr string
	code           int
}

// env is a test's environment: the CLI sees only these variables.
type env map[string]string

// newEnv returns an environment with a fresh local tier and no remote.
func newEnv(t *testing.T) env {
	t.Helper()
	return env{
		"TIERCACHE_DIR":     filepath.Join(t.TempDir(), "cache"),
		"TIERCACHE_NO_SYNC": "1",
	}
}

func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// cli runs tiercache in-process with e as its whole environment.
func cli(t *testing.T, e env, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, func(k string) string { return e[k] })
	return result{stdout.String(), stderr.String(), code}
}

// mustCLI runs tiercache and fails the test unless it exits 0.
func mustCLI(t *testing.T, e env, args ...string) result {
	t.Helper()
	r := cli(t, e, args...)
	if r.code != 0 {
		t.Fatalf("tiercache %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// decode unmarshals r's stdout into v, failing the test on bad JSON.
func decode(t *testing.T, r result, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not the expected JSON (%v):\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", r.stdout)
	}
}

// smallTree makes a quick tree tagged with tag and returns its path.
func smallTree(t *testing.T, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree-"+tag)
	treetest.Small(t, dir, 20, tag)
	return dir
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeString(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }
