package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
)

// oddHome is a CI machine's home whose local tier is at its default
// place, ~/.cache/tiercache, below a ~/.cache that jobs push and pull
// whole, as actions/cache users do. It holds an entry "mine", and
// ~/.cache/go-build/a.
func oddHome(t *testing.T) (home string, e env) {
	t.Helper()
	home = t.TempDir()
	e = env{"TIERCACHE_DIR": filepath.Join(home, ".cache", "tiercache"), "TIERCACHE_NO_SYNC": "1", "HOME": home, "USERPROFILE": home}
	mustCLI(t, e, "push", "mine", smallTree(t, "mine"))
	if err := os.MkdirAll(filepath.Join(home, ".cache", "go-build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeString(filepath.Join(home, ".cache", "go-build", "a"), "a"); err != nil {
		t.Fatal(err)
	}
	return home, e
}

// checkMine fails t unless the local tier of e still restores "mine" as
// pushed, and holds no key but want.
func checkMine(t *testing.T, e env, want ...string) {
	t.Helper()
	d := filepath.Join(t.TempDir(), "mine")
	mustCLI(t, e, "pull", "--fail-on-miss", "mine", d)
	if tag, err := treetest.CheckSmall(d); err != nil || tag != "mine" {
		t.Errorf("the local tier's entry \"mine\" now restores %q (%v); want the tree pushed as mine", tag, err)
	}
	var entries []struct{ Key string }
	decode(t, mustCLI(t, e, "ls", "--json"), &entries)
	var keys []string
	for _, en := range entries {
		keys = append(keys, en.Key)
	}
	want = append(want, "mine")
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("the local tier holds %v; want %v", keys, want)
	}
	if r := mustCLI(t, e, "fsck"); !strings.Contains(r.stderr, "no problem") {
		t.Errorf("fsck: %s", r.stderr)
	}
}

// TestOddPushTreeHoldingTheLocalTier: push ~/.cache, where the local
// tier lives, leaves the tier out (said with --verbose) instead of
// reading its own archive as it grows, and the entry restores without
// it. A PATH that is the tier or inside it is refused.
func TestOddPushTreeHoldingTheLocalTier(t *testing.T) {
	home, e := oddHome(t)
	for range 2 { // the second push replaces the first, its archive in the tier
		r := cli(t, e, "push", "-v", "--json", "k", "~/.cache")
		if r.code != 0 {
			t.Fatalf("push ~/.cache: exit %d, stderr %q", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "leaving out the local tier "+filepath.Join(home, ".cache", "tiercache")) {
			t.Errorf("push -v ~/.cache: no note that the tier is left out: %q", r.stderr)
		}
		var out pushJSON
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Files != 2 {
			t.Errorf("push ~/.cache: %d files (%v); want 2 (go-build/, go-build/a)", out.Files, err)
		}
	}
	d := t.TempDir()
	mustCLI(t, e, "pull", "--fail-on-miss", "k", d)
	if got := readFile(t, filepath.Join(d, "go-build", "a")); got != "a" {
		t.Errorf("pulled go-build/a: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(d, "tiercache")); !os.IsNotExist(err) {
		t.Errorf("the entry holds the local tier: %v", err)
	}
	// The home itself: the tier is two levels down.
	mustCLI(t, e, "push", "home", "~")
	checkMine(t, e, "home", "k")
	// Only the tier configured is left out, its name matched literally.
	e2 := e.with("TIERCACHE_DIR", filepath.Join(home, ".cache", "t[1]"))
	if r := mustCLI(t, e2, "push", "-v", "k2", "~/.cache"); !strings.Contains(r.stderr, "leaving out the local tier "+filepath.Join(home, ".cache", "t[1]")) {
		t.Errorf("push -v with the tier at t[1]: %q", r.stderr)
	}
	d = t.TempDir()
	mustCLI(t, e2, "pull", "k2", d)
	if _, err := os.Lstat(filepath.Join(d, "t[1]")); !os.IsNotExist(err) {
		t.Errorf("the entry holds its local tier t[1]: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d, "tiercache", "CACHEDIR.TAG")); err != nil {
		t.Errorf("the other tier, only files to this push, was left out: %v", err)
	}

	for _, p := range []string{"~/.cache/tiercache", "~/.cache/tiercache/data", filepath.Join(home, ".cache", "..", ".cache", "tiercache") + string(filepath.Separator)} {
		r := cli(t, e, "push", "bad", p)
		if r.code != exitUsage || !strings.Contains(r.stderr, "is the local tier or inside it") {
			t.Errorf("push %s: exit %d, stderr %q; want a usage error naming the local tier", p, r.code, r.stderr)
		}
	}
	// Of several paths, leaving the tier out of one by a pattern must
	// not leave out a directory of the same name in another.
	other := filepath.Join(home, "other")
	if err := os.MkdirAll(filepath.Join(other, "tiercache"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := cli(t, e, "push", "two", "~/.cache", other)
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(other, "tiercache")) {
		t.Errorf("push ~/.cache %s: exit %d, stderr %q; want a failure naming %s", other, r.code, r.stderr, filepath.Join(other, "tiercache"))
	}
	checkMine(t, e, "home", "k")
}

// TestOddPullIntoTreeHoldingTheLocalTier: an entry pushed on another
// machine whose tree held a local tier (configured elsewhere there, so
// not left out) is pulled into ~/.cache here: its tiercache/ must not
// replace or merge into the live local tier. It is left out, with a
// warning, and the rest restored. A pull into the tier is refused.
func TestOddPullIntoTreeHoldingTheLocalTier(t *testing.T) {
	home, e := oddHome(t)
	// The other machine: its ~/.cache/tiercache holds "mine" and "evil".
	theirs := filepath.Join(t.TempDir(), ".cache")
	et := env{"TIERCACHE_DIR": filepath.Join(theirs, "tiercache"), "TIERCACHE_NO_SYNC": "1"}
	mustCLI(t, et, "push", "mine", smallTree(t, "theirs"))
	mustCLI(t, et, "push", "evil", smallTree(t, "evil"))
	if err := writeString(filepath.Join(theirs, "x"), "x"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e, "push", "k", theirs)

	r := mustCLI(t, e, "pull", "--json", "k", "~/.cache")
	if !strings.Contains(r.stderr, "left out "+filepath.Join("~/.cache", "tiercache")) {
		t.Errorf("pull into ~/.cache: no warning that tiercache/ was left out: %q", r.stderr)
	}
	var out pullJSON
	decode(t, r, &out)
	if len(out.LeftOut) != 1 {
		t.Errorf("pull --json: left_out %q; want the one path", out.LeftOut)
	}
	if got := readFile(t, filepath.Join(home, ".cache", "x")); got != "x" {
		t.Errorf("pulled x: %q", got)
	}
	checkMine(t, e, "k")

	// The same through the home, into which the entry's ~/.cache is a
	// file: it would replace the directory holding the tier.
	odd := t.TempDir()
	if err := writeString(filepath.Join(odd, ".cache"), "a file"); err != nil {
		t.Fatal(err)
	}
	if err := writeString(filepath.Join(odd, "y"), "y"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e, "push", "file", odd)
	if r := mustCLI(t, e, "pull", "file", "~"); !strings.Contains(r.stderr, "left out "+filepath.Join("~", ".cache")) {
		t.Errorf("pull into ~ of an entry with a file .cache: %q", r.stderr)
	}
	if got := readFile(t, filepath.Join(home, "y")); got != "y" {
		t.Errorf("pulled y: %q", got)
	}
	checkMine(t, e, "file", "k")

	// An entry of several paths, the tier below the first.
	list := filepath.Join(t.TempDir(), "list")
	if err := writeString(list, "l"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e, "push", "paths", theirs, list)
	dst := filepath.Join(home, "list")
	if r := mustCLI(t, e, "pull", "paths", "~/.cache", dst); !strings.Contains(r.stderr, "left out") {
		t.Errorf("pull of two paths: no warning: %q", r.stderr)
	}
	if got := readFile(t, dst); got != "l" {
		t.Errorf("pulled file: %q", got)
	}
	checkMine(t, e, "file", "k", "paths")

	// --link copies from an expanded tree, which keeps the tier's copy:
	// refused, naming it.
	if r := cli(t, e, "pull", "--link", "k", "~/.cache"); r.code != exitFailure || !strings.Contains(r.stderr, "the entry holds "+filepath.Join(home, ".cache", "tiercache")+", where the local tier is") {
		t.Errorf("pull --link into ~/.cache: exit %d, stderr %q; want a failure naming the tier", r.code, r.stderr)
	}
	// Once a --link pull elsewhere made that tree, a plain pull extracts
	// the archive instead, leaving the tier out as before.
	mustCLI(t, e, "pull", "--link", "k", filepath.Join(t.TempDir(), "d"))
	if r := mustCLI(t, e, "pull", "k", "~/.cache"); !strings.Contains(r.stderr, "left out") {
		t.Errorf("pull beside an expanded tree: no warning: %q", r.stderr)
	}
	checkMine(t, e, "file", "k", "paths")

	for _, p := range []string{"~/.cache/tiercache", "~/.cache/tiercache/x", filepath.Join(home, ".cache", "go-build", "..", "tiercache", "data")} {
		for _, args := range [][]string{{"pull", "k", p}, {"pull", "--lookup-only", "k", p}} {
			r := cli(t, e, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "is the local tier or inside it") {
				t.Errorf("%v: exit %d, stderr %q; want a usage error naming the local tier", args, r.code, r.stderr)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(home, ".cache", "tiercache", "x")); !os.IsNotExist(err) {
		t.Errorf("a refused pull wrote into the local tier: %v", err)
	}
	checkMine(t, e, "file", "k", "paths")
}

// TestOddDirSpellings: DIR as ".", with ".." segments and a trailing
// separator, and as a symlink to a directory: push archives the
// directory named, pull restores into it and leaves a symlink a symlink.
func TestOddDirSpellings(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t, "spell")
	base := t.TempDir()
	sep := string(filepath.Separator)
	t.Chdir(filepath.Join(src, "d0"))
	mustCLI(t, e, "push", "dot", "..")
	mustCLI(t, e, "push", "dotdot", filepath.Join("..", "d1", "..")+sep)
	for _, key := range []string{"dot", "dotdot"} {
		d := filepath.Join(base, key)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Chdir(d)
		mustCLI(t, e, "pull", key, ".")
		if tag, err := treetest.CheckSmall(d); err != nil || tag != "spell" {
			t.Errorf("pull %s into .: %q, %v", key, tag, err)
		}
	}
	link := filepath.Join(base, "link")
	treetest.Symlink(t, src, link)
	mustCLI(t, e, "push", "link", link+sep)
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(base, "into")
	treetest.Symlink(t, real, into)
	mustCLI(t, e, "pull", "link", into+sep)
	if fi, err := os.Lstat(into); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("pull into a symlink replaced it: %v", err)
	}
	if tag, err := treetest.CheckSmall(real); err != nil || tag != "spell" {
		t.Errorf("pull through a symlink: %q, %v", tag, err)
	}
}
