package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushPullPathsCLI: push KEY PATH... with --exclude and a quoted "~",
// ls showing the paths, a pull by position into other paths, and a pull
// naming another number of paths failing as a usage error that lists
// both.
func TestPushPullPathsCLI(t *testing.T) {
	home := t.TempDir()
	e := newEnv(t).with("HOME", home, "USERPROFILE", home)
	mod := filepath.Join(home, "go", "pkg", "mod")
	if err := os.MkdirAll(filepath.Join(mod, "cache", "download"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.go": "package a\n", "cache/download/x.zip": "zip", "cache/lock": "excluded"} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(conf, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustCLI(t, e, "push", "--json", "--exclude", "lock", "k", "~/go/pkg/mod", conf)
	var pushed pushJSON
	if err := json.Unmarshal([]byte(r.stdout), &pushed); err != nil {
		t.Fatal(err)
	}
	if pushed.Files != 6 || strings.Join(pushed.Paths, " ") != "~/go/pkg/mod "+conf {
		t.Errorf("push: %d files, paths %q; want 6 (0/, a.go, cache/, download/, x.zip, and 1), the paths as given", pushed.Files, pushed.Paths)
	}
	r = mustCLI(t, e, "ls")
	if !strings.Contains(r.stdout, "PATHS") || !strings.Contains(r.stdout, "~/go/pkg/mod "+conf) {
		t.Errorf("ls does not show the paths:\n%s", r.stdout)
	}
	other := t.TempDir()
	dst := []string{filepath.Join(other, "mod"), filepath.Join(other, "conf", "s.json")}
	mustCLI(t, e, "pull", "k", dst[0], dst[1])
	if b, err := os.ReadFile(filepath.Join(dst[0], "cache", "download", "x.zip")); err != nil || string(b) != "zip" {
		t.Errorf("pulled x.zip: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dst[0], "cache", "lock")); !os.IsNotExist(err) {
		t.Errorf("the excluded lock was restored: %v", err)
	}
	if b, err := os.ReadFile(dst[1]); err != nil || string(b) != "{}" {
		t.Errorf("pulled file: %q, %v", b, err)
	}
	r = cli(t, e, "pull", "k", filepath.Join(other, "one"))
	if r.code != 0 || !strings.Contains(r.stderr, "skipped key \"k\" holds 2 paths: ~/go/pkg/mod, "+conf) || !strings.Contains(r.stderr, "the pull names 1 path: "+filepath.Join(other, "one")) ||
		!strings.Contains(r.stderr, `miss: "k" not restored (see the notes above)`) {
		t.Errorf("pull of two paths into one: exit %d, stderr %q; want a miss noting both lists", r.code, r.stderr)
	}
	if ents, err := os.ReadDir(filepath.Join(other, "one")); err != nil || len(ents) != 0 {
		t.Errorf("after that miss, DIR holds %v (%v); want it empty", ents, err)
	}
	// "~" expanded for the pull too.
	if err := os.RemoveAll(mod); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e, "pull", "k", "~/go/pkg/mod", conf)
	if b, err := os.ReadFile(filepath.Join(mod, "a.go")); err != nil || string(b) != "package a\n" {
		t.Errorf("pull into ~/go/pkg/mod: %q, %v", b, err)
	}
}

// TestMatchCLI: push --match from one checkout, pull --match into
// another where nothing exists yet; the recorded names use "/" on every
// system, so an entry pushed on one restores on another.
func TestMatchCLI(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	for _, d := range []string{"node_modules", filepath.Join("packages", "a", "node_modules"), filepath.Join("packages", "a", "src")} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, d, "f.txt"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(src)
	var pushed pushJSON
	decode(t, mustCLI(t, e, "push", "--json", "--match", "**/node_modules", "k"), &pushed)
	if want := "node_modules packages/a/node_modules"; strings.Join(pushed.Paths, " ") != want {
		t.Errorf("push recorded %q, want %q", pushed.Paths, want)
	}
	dst := t.TempDir()
	t.Chdir(dst)
	var pulled pullJSON
	decode(t, mustCLI(t, e, "pull", "--json", "--match", "**/node_modules", "k"), &pulled)
	if !pulled.Hit || strings.Join(pulled.Paths, " ") != "node_modules packages/a/node_modules" {
		t.Errorf("pull: hit %v, paths %q", pulled.Hit, pulled.Paths)
	}
	for _, d := range []string{"node_modules", filepath.Join("packages", "a", "node_modules")} {
		if b, err := os.ReadFile(filepath.Join(dst, d, "f.txt")); err != nil || string(b) != d {
			t.Errorf("%s/f.txt: %q, %v", d, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "packages", "a", "src")); !os.IsNotExist(err) {
		t.Errorf("packages/a/src, which no pattern matched, was restored: %v", err)
	}
	// Patterns that do not reach every recorded name: skipped, nothing written.
	other := t.TempDir()
	t.Chdir(other)
	r := cli(t, e, "pull", "--match", "packages/*/node_modules", "k")
	if r.code != 0 || !strings.Contains(r.stderr, `which no pattern (packages/*/node_modules) matches`) {
		t.Errorf("pull with narrower patterns: exit %d, stderr %q", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(other); len(ents) != 0 {
		t.Errorf("that pull wrote %d entries", len(ents))
	}
}

func TestPathList(t *testing.T) {
	for _, c := range []struct {
		paths []string
		want  string
	}{
		{[]string{"a"}, "a"},
		{[]string{"a", "b", "c", "d"}, "a, b, c, d"},
		{[]string{"a", "b", "c", "d", "e"}, "5 paths (a, b, c, ...)"},
	} {
		if got := pathList(c.paths); got != c.want {
			t.Errorf("pathList(%q) = %q, want %q", c.paths, got, c.want)
		}
	}
}

// TestPullReportsDroppedOnMiss: a local copy that fails its checks, with
// no remote to fetch again, is a miss that says why (a warning, and
// "dropped" in --json), not "nothing stored".
func TestPullReportsDroppedOnMiss(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "-q", "k", smallTree(t, "x"))
	archive := filepath.Join(e["TIERCACHE_DIR"], "data")
	var found []string
	_ = filepath.WalkDir(archive, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "archive.tar.zst" {
			found = append(found, path)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("archives in the local tier: %q", found)
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.Chmod(found[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(found[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, e, "pull", "--json", "k", filepath.Join(t.TempDir(), "d"))
	var out pullJSON
	decode(t, r, &out)
	if r.code != 0 || out.Hit || !strings.Contains(out.Dropped, "integrity") ||
		!strings.Contains(r.stderr, "damaged and has been dropped") || strings.Contains(r.stderr, "nothing stored") {
		t.Errorf("pull of a damaged local copy: exit %d, %+v\nstderr: %s\nwant a miss saying the copy was dropped", r.code, out, r.stderr)
	}
}

// TestPushMissingPaths: of several PATHs, those missing are left out with
// a warning (exit 0), and a pull naming them all restores the others and
// leaves those as they are; with --strict, or all missing, the push fails.
func TestPushMissingPaths(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	t.Chdir(src)
	for _, d := range []string{"bin", "target"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := cli(t, e, "push", "--json", "k", "bin/", "git/db/", "target/")
	var pushed pushJSON
	decode(t, r, &pushed)
	if r.code != 0 || strings.Join(pushed.Missing, " ") != "git/db/" || strings.Join(pushed.Paths, " ") != "bin/ target/" ||
		!strings.Contains(r.stderr, "warning: push \"k\": not saved, as it does not exist: git/db/") {
		t.Fatalf("push with a missing path: exit %d, %+v\nstderr: %s", r.code, pushed, r.stderr)
	}
	if r := cli(t, e, "--strict", "push", "k2", "bin/", "git/db/"); r.code != 1 || !strings.Contains(r.stderr, "git/db/ does not exist") {
		t.Errorf("--strict push with a missing path: exit %d, stderr %s; want 1 naming it", r.code, r.stderr)
	}
	if r := cli(t, e, "push", "k3", "nope/", "git/db/"); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("push with every path missing: exit %d, stderr %s; want 1", r.code, r.stderr)
	}
	// Left with one directory, recorded by its name: a pull of that one
	// PATH, an existing directory, restores it (no file assumed there).
	mustCLI(t, e, "push", "-q", "k4", "bin/", "nope/")
	one := t.TempDir()
	if err := os.Mkdir(filepath.Join(one, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(one)
	if r := cli(t, e, "pull", "k4", "bin/"); r.code != 0 || !strings.Contains(r.stderr, "hit") {
		t.Errorf("pull of the one recorded directory: exit %d, stderr %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join("bin", "f")); err != nil || string(b) != "bin" {
		t.Errorf("bin/f = %q, %v", b, err)
	}
	t.Chdir(src)

	dst := t.TempDir()
	t.Chdir(dst)
	if err := os.MkdirAll(filepath.Join("git", "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = cli(t, e, "pull", "--json", "k", "bin/", "git/db/", "target/")
	var pulled pullJSON
	decode(t, r, &pulled)
	if r.code != 0 || !pulled.Hit || strings.Join(pulled.Untouched, " ") != "git/db/" {
		t.Fatalf("pull naming the missing path: exit %d, %+v\nstderr: %s", r.code, pulled, r.stderr)
	}
	for _, d := range []string{"bin", "target"} {
		if b, err := os.ReadFile(filepath.Join(d, "f")); err != nil || string(b) != d {
			t.Errorf("%s/f = %q, %v", d, b, err)
		}
	}
}
