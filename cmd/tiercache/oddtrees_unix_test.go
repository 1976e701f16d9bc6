//go:build unix

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cliWithin is cli, failing t if the run takes longer than d (a push
// that opened a FIFO would block forever).
func cliWithin(t *testing.T, d time.Duration, e env, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- cli(t, e, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("tiercache %s: still running after %s", strings.Join(args, " "), d)
		return result{}
	}
}

// TestOddSpecialFiles: a FIFO or a device node in DIR fails the push
// at once, naming it (never opening it, which for a FIFO would block);
// a socket is left out, as tar leaves it out. Files the user cannot
// read fail the push naming them.
// nullDev is 1:3 as Linux encodes it; an untyped constant because
// Mknod's device argument is an int on some systems and a uint64 on others.
const nullDev = 1<<8 | 3

func TestOddSpecialFiles(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		make func(p string) error
		want string // in the error; "" for a push that succeeds
	}{
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o644) }, "is a FIFO"},
		{"device", func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o644, nullDev) }, "is a device node"},
		{"socket", func(p string) error {
			l, err := net.Listen("unix", p)
			if err == nil {
				t.Cleanup(func() { l.Close() })
			}
			return err
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := smallTree(t, tc.name)
			p := filepath.Join(src, "d1", "special")
			if err := tc.make(p); err != nil {
				t.Skipf("cannot make a %s here: %v", tc.name, err)
			}
			// With an --exclude, the tree is measured by the archive's walk.
			for _, args := range [][]string{{"push", tc.name, src}, {"push", "--exclude", "none", tc.name, src}} {
				r := cliWithin(t, time.Minute, e, args...)
				switch {
				case tc.want == "" && r.code != 0:
					t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
				case tc.want != "" && (r.code != exitFailure || !strings.Contains(r.stderr, "special") || !strings.Contains(r.stderr, tc.want)):
					t.Errorf("%v: exit %d, stderr %q; want a failure naming d1/special", args, r.code, r.stderr)
				}
			}
			if tc.want != "" {
				return
			}
			if r := mustCLI(t, e, "push", "-v", tc.name, src); !strings.Contains(r.stderr, "left out 1 socket(s)") || !strings.Contains(r.stderr, filepath.Join(src, "d1", "special")) {
				t.Errorf("push -v: no note naming the socket left out: %q", r.stderr)
			}
			d := filepath.Join(t.TempDir(), "d")
			mustCLI(t, e, "pull", tc.name, d)
			if _, err := os.Lstat(filepath.Join(d, "d1", "special")); !os.IsNotExist(err) {
				t.Errorf("the socket was restored: %v", err)
			}
			if _, err := os.Stat(filepath.Join(d, "d1", "f00001.txt")); err != nil {
				t.Errorf("the rest of d1 is missing: %v", err)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads a file and lists a directory whatever their mode")
		}
		for _, tc := range []struct{ name, rel string }{{"file", "d1/f00001.txt"}, {"dir", "d2"}} {
			src := smallTree(t, "unreadable-"+tc.name)
			p := filepath.Join(src, filepath.FromSlash(tc.rel))
			mode := os.FileMode(0)
			if tc.name == "dir" {
				mode = 0o600 // no x: neither listed nor entered
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o755) })
			r := cliWithin(t, time.Minute, e, "push", "u-"+tc.name, src)
			if r.code != exitFailure || !strings.Contains(r.stderr, filepath.Base(p)) || !strings.Contains(r.stderr, "permission denied") {
				t.Errorf("push with %s unreadable: exit %d, stderr %q; want a failure naming it", tc.rel, r.code, r.stderr)
			}
		}
	})
}

// TestOddPullLeavesOutOfReadOnlyDir: the member left out of a pull (see
// TestOddPullIntoTreeHoldingTheLocalTier) may sit in a read-only
// directory of the entry, as everything of Go's module cache does: it
// is still left out, and the directory keeps its mode.
func TestOddPullLeavesOutOfReadOnlyDir(t *testing.T) {
	home, e := oddHome(t)
	src := t.TempDir()
	ro := filepath.Join(src, ".cache")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tiercache", "z"} {
		if err := writeString(filepath.Join(ro, name), name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(home, ".cache")
	t.Cleanup(func() { os.Chmod(ro, 0o755); os.Chmod(cache, 0o755) })
	mustCLI(t, e, "push", "ro", src)
	if r := mustCLI(t, e, "pull", "ro", "~"); !strings.Contains(r.stderr, "left out "+filepath.Join("~", ".cache", "tiercache")) {
		t.Errorf("pull: no warning: %q", r.stderr)
	}
	if got := readFile(t, filepath.Join(cache, "z")); got != "z" {
		t.Errorf("pulled .cache/z: %q", got)
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("~/.cache after the pull: %v, %v; want the entry's 0555", fi.Mode(), err)
	}
	os.Chmod(cache, 0o755)
	checkMine(t, e, "ro")
}
