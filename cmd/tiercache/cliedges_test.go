package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
)

// uxTree makes a/f and a/sub/g in the working directory, which it makes
// a fresh temporary directory.
func uxTree(t *testing.T) {
	t.Helper()
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(filepath.Join("a", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a/f": "f\n", "a/sub/g": "g\n"} {
		if err := writeString(filepath.FromSlash(name), body); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPushPullSamePathTwice: a PATH named twice, however it is spelled,
// is a usage error naming it: push would store its tree twice, pull
// would merge two of the entry's paths into one directory.
func TestPushPullSamePathTwice(t *testing.T) {
	e := newEnv(t)
	uxTree(t)
	abs, err := filepath.Abs("a")
	if err != nil {
		t.Fatal(err)
	}
	for _, second := range []string{"a", "./a", "a/", abs} {
		r := cli(t, e, "push", "k", "a", second)
		if r.code != exitUsage || !strings.Contains(r.stderr, "path "+second+" names the same path as a:") {
			t.Errorf("push k a %s: exit %d, stderr %q; want a usage error naming the path", second, r.code, r.stderr)
		}
	}
	if r := mustCLI(t, e, "ls"); r.stdout != "" {
		t.Errorf("a refused push stored something:\n%s", r.stdout)
	}

	if err := os.Mkdir("b", 0o755); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e, "push", "k", "a", "b")
	r := cli(t, e, "pull", "k", "x", "./x/")
	if r.code != exitUsage || !strings.Contains(r.stderr, "path ./x/ names the same path as x:") {
		t.Errorf("pull k x ./x/: exit %d, stderr %q; want a usage error naming the path", r.code, r.stderr)
	}
	if _, err := os.Lstat("x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused pull made its PATH: %v", err)
	}
}

// TestPushNestedPaths: a PATH inside another PATH's directory stores its
// files twice, which a push warns about, naming both and the --exclude
// that avoids it, and then does, as actions/cache would: such a list
// worked before and restores right. With the --exclude, no warning, and
// the files are stored once. A pull into nested paths restores by
// position.
func TestPushNestedPaths(t *testing.T) {
	e := newEnv(t)
	uxTree(t)
	for _, args := range [][]string{{"a", "a/sub"}, {"a/sub", "a"}, {"a", "a/sub/g"}, {"a", "./a/sub/../sub"}} {
		r := cli(t, e, append([]string{"push", "k"}, args...)...)
		inner := args[1]
		if args[0] != "a" {
			inner = args[0]
		}
		if r.code != 0 || !strings.Contains(r.stderr, inner+" is inside a, so its files are stored twice; --exclude /") {
			t.Errorf("push k %s: exit %d, stderr %q; want a push with a warning naming both", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	for _, c := range []struct {
		exclude string
		bytes   int64
	}{{"/sub", 4}, {"sub/", 4}, {"su*", 4}, {"a/**/x", 6}} {
		var out pushJSON
		r := cli(t, e, "push", "--json", "--exclude", c.exclude, "k", "a", "a/sub")
		decode(t, r, &out)
		warned := strings.Contains(r.stderr, "stored twice")
		if r.code != 0 || out.Bytes != c.bytes || warned != (c.bytes == 6) {
			t.Errorf("push --exclude %s k a a/sub: exit %d, %d bytes, stderr %q; want %d bytes, a warning only if g is stored twice", c.exclude, r.code, out.Bytes, r.stderr, c.bytes)
		}
	}
	mustCLI(t, e, "pull", "k", "p", "p/sub")
	if got := readFile(t, filepath.Join("p", "f")) + readFile(t, filepath.Join("p", "sub", "g")); got != "f\ng\n" {
		t.Errorf("pull into nested paths: %q", got)
	}
}

// TestReadCommandsMakeNoCacheDir: ls, stats, rm, prune and fsck on a
// machine whose local tier does not exist yet report it empty and leave
// it uncreated.
func TestReadCommandsMakeNoCacheDir(t *testing.T) {
	e := newEnv(t)
	dir := e["TIERCACHE_DIR"]
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"ls", "--json"}, "[]\n"},
		{[]string{"ls", "--tier", "local", "--json"}, "[]\n"},
		{[]string{"stats", "--json"}, "{\n  \"local\": {\n    \"entries\": 0,\n    \"bytes\": 0,\n    \"files\": 0\n  }\n}\n"},
		{[]string{"rm", "--json", "k"}, "{\n  \"removed\": [],\n  \"not_stored\": [\n    \"k\"\n  ]\n}\n"},
		{[]string{"prune", "--json", "--max-entries", "1"}, "{\n  \"local\": 0,\n  \"remote\": 0,\n  \"evicted\": []\n}\n"},
		{[]string{"fsck", "--json", "--repair"}, "{\n  \"local\": {\n    \"entries\": 0,\n    \"verified\": 0,\n    \"problems\": []\n  },\n  \"problems\": 0,\n  \"unrepaired\": 0\n}\n"},
	} {
		r := mustCLI(t, e, c.args...)
		if r.stdout != c.out {
			t.Errorf("%v: stdout %q, want %q", c.args, r.stdout, c.out)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v made the cache directory: %v", c.args, err)
		}
	}
	// --tier local never looks at the remote: no directory either.
	if r := mustCLI(t, e.with("TIERCACHE_REMOTE", "s3://bucket/prefix"), "ls", "--tier", "local"); r.stderr != "tiercache: no entries\n" {
		t.Errorf("ls --tier local with a remote: stderr %q", r.stderr)
	}
	// Still refused as before: read-only, bad limits.
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--read-only", "rm", "k"}, exitFailure},
		{[]string{"--read-only", "prune", "--max-entries", "1"}, exitFailure},
		{[]string{"prune", "--remote-max-entries", "1"}, exitUsage},
		{[]string{"--read-only", "fsck", "--repair"}, exitFailure},
	} {
		if r := cli(t, e, c.args...); r.code != c.code {
			t.Errorf("%v: exit %d, want %d; stderr %q", c.args, r.code, c.code, r.stderr)
		}
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused command made the cache directory: %v", err)
	}
}

// TestLsLocalBadScope: ls --tier local checks --scope as every other
// command does, whether or not the local tier exists yet.
func TestLsLocalBadScope(t *testing.T) {
	e := newEnv(t)
	for _, pushed := range []bool{false, true} {
		if pushed {
			mustCLI(t, e, "push", "-q", "k", smallTree(t, "a"))
		}
		for _, args := range [][]string{
			{"ls", "--tier", "local", "--scope", "a\tb"},
			{"ls", "--tier", "local", "--read-scope", "a\tb"},
		} {
			if r := cli(t, e, args...); r.code != exitUsage || !strings.Contains(r.stderr, `scope "a\tb"`) {
				t.Errorf("%q (pushed %v): exit %d, stderr %q; want a usage error naming the scope", args, pushed, r.code, r.stderr)
			}
		}
		if r := cli(t, e.with("TIERCACHE_SCOPE", strings.Repeat("s", 300)), "ls", "--tier", "local"); r.code != exitUsage || !strings.Contains(r.stderr, "scope is 300 bytes") {
			t.Errorf("TIERCACHE_SCOPE too long (pushed %v): exit %d, stderr %q; want a usage error", pushed, r.code, r.stderr)
		}
	}
}

// TestPushSamePathThroughSymlink: a PATH and a symlink to it are one
// directory named twice.
func TestPushSamePathThroughSymlink(t *testing.T) {
	e := newEnv(t)
	a := smallTree(t, "a")
	link := filepath.Join(t.TempDir(), "alias")
	if treetest.UnderWine() {
		t.Skip("Wine has no symlinks, which this test needs")
	}
	if err := os.Symlink(a, link); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("this process may not create symlinks (no privilege or Developer Mode): %v", err)
		}
		t.Fatal(err)
	}
	if r := cli(t, e, "push", "k", a, link); r.code != exitUsage || !strings.Contains(r.stderr, "names the same path as") {
		t.Errorf("push k A ALIAS-OF-A: exit %d, stderr %q; want the usage error a PATH named twice gets", r.code, r.stderr)
	}
}
