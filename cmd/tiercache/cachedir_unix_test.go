//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCacheDirNotWritable: a cache dir that this user may not create (the
// default under a home such as nobody's /nonexistent) fails a pull with
// an error naming it and saying what to set. Root may create it anywhere:
// its pull succeeds.
func TestCacheDirNotWritable(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(parent, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(parent, 0o755) })
	dir := filepath.Join(parent, ".cache", "tiercache")
	r := cli(t, newEnv(t).with("TIERCACHE_DIR", dir), "pull", "k", filepath.Join(t.TempDir(), "d"))
	if os.Geteuid() == 0 {
		if r.code != 0 {
			t.Fatalf("pull as root: exit %d, %s", r.code, r.stderr)
		}
		return
	}
	if r.code != 1 || !strings.Contains(r.stderr, "local tier: "+dir+": ") ||
		!strings.Contains(r.stderr, "set TIERCACHE_DIR (--cache-dir) to a directory this user may write, or use --no-local") {
		t.Errorf("pull: exit %d, stderr %q; want exit 1 naming the dir and what to set", r.code, r.stderr)
	}
}

// TestCacheDirTilde: TIERCACHE_DIR=~/tc (a YAML env: value, which no
// shell expands) is the home directory's tc, not a directory named "~".
func TestCacheDirTilde(t *testing.T) {
	home, wd := t.TempDir(), t.TempDir()
	t.Chdir(wd)
	mustCLI(t, newEnv(t).with("TIERCACHE_DIR", "~/tc", "HOME", home), "push", "k", smallTree(t, "tilde"))
	if _, err := os.Stat(filepath.Join(home, "tc", "tiercache-local")); err != nil {
		t.Errorf("no local tier under the home directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(wd, "~")); err == nil {
		t.Error(`a directory named "~" was made in the working directory`)
	}
}
