package main

import (
	"os"
	"path/filepath"
	"slices"
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

// TestRmDamagedAndRepeated: rm removes an entry whose metadata is
// unreadable (the removal a refused pull's hint points to) and goes on to
// the next key; a key given twice is removed, and reported, once.
func TestRmDamagedAndRepeated(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "bad", smallTree(t, "bad"))
	mustCLI(t, e, "push", "good", smallTree(t, "good"))
	if err := os.WriteFile(metaFileOf(t, e, "bad"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out rmJSON
	decode(t, mustCLI(t, e, "rm", "--json", "bad", "good", "good"), &out)
	if !slices.Equal(out.Removed, []string{"bad", "good"}) || len(out.NotStored) != 0 {
		t.Errorf("rm --json bad good good: %+v; want both removed, once each", out)
	}
	if r := mustCLI(t, e, "ls", "--json"); strings.Contains(r.stdout, `"bad"`) || strings.Contains(r.stdout, `"good"`) {
		t.Errorf("ls after rm: %s", r.stdout)
	}
}

// TestPullLostLocalMetadata: a local entry whose metadata is missing is
// a damaged copy: pull warns, drops it and goes on as a miss (exit 0),
// where it failed every pull; a push stores the key again.
func TestPullLostLocalMetadata(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "k", smallTree(t, "v1"))
	if err := os.Remove(metaFileOf(t, e, "k")); err != nil {
		t.Fatal(err)
	}
	r := mustCLI(t, e, "pull", "k", filepath.Join(t.TempDir(), "d"))
	if !strings.Contains(r.stderr, "damaged and has been dropped") || !strings.Contains(r.stderr, "miss") {
		t.Errorf("pull stderr: %q; want the dropped copy reported, and a miss", r.stderr)
	}
	// Dropped indeed: the next pull is a plain miss.
	r = mustCLI(t, e, "pull", "k", filepath.Join(t.TempDir(), "d"))
	if strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "miss") {
		t.Errorf("second pull stderr: %q; want a plain miss", r.stderr)
	}
	mustCLI(t, e, "push", "k", smallTree(t, "v2"))
	mustCLI(t, e, "pull", "k", filepath.Join(t.TempDir(), "d2"))
}

// TestLookupOnlyDamagedLocalCopy: pull --lookup-only with a damaged local
// copy (its metadata lost) reports what the pull would do, a miss, and
// changes nothing; push --if-absent stores the key.
func TestLookupOnlyDamagedLocalCopy(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "k", smallTree(t, "v1"))
	if err := os.Remove(metaFileOf(t, e, "k")); err != nil {
		t.Fatal(err)
	}
	r := cli(t, e, "pull", "--lookup-only", "--json", "k", filepath.Join(t.TempDir(), "d"))
	if r.code != 0 || !strings.Contains(r.stdout, `"hit": false`) {
		t.Errorf("lookup-only: exit %d, stdout %s, stderr %q; want a miss", r.code, r.stdout, r.stderr)
	}
	var push map[string]any
	decode(t, mustCLI(t, e, "push", "--if-absent", "--json", "k", smallTree(t, "v2")), &push)
	if push["already_in"] != nil && push["already_in"] != "" {
		t.Errorf("push --if-absent over a damaged copy: %v; want it stored", push)
	}
	mustCLI(t, e, "pull", "--fail-on-miss", "k", filepath.Join(t.TempDir(), "d2"))
}

// metaFileOf returns the meta.json of key's one version in e's local
// tier, to damage.
func metaFileOf(t *testing.T, e env, key string) string {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(e["TIERCACHE_DIR"], "data", key+"-*", "meta.json"))
	if err != nil || len(metas) != 1 {
		t.Fatalf("meta.json of %s: %v, %v", key, metas, err)
	}
	return metas[0]
}
