//go:build unix

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// TestMatchedPaths: a monorepo's node_modules, pushed with --match from
// one checkout, restore with --match into another where none exists yet
// (from the remote on a fresh machine, and from the local tier). Entries
// whose recorded paths would go
// outside the checkout, or where the pull's patterns do not reach, are
// skipped and nothing is written.
func TestMatchedPaths(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	src := t.TempDir()
	mods := []string{"node_modules", "packages/a/node_modules", "packages/b/node_modules"}
	for _, m := range mods {
		p := filepath.Join(src, filepath.FromSlash(m))
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		treetest.Small(t, p, 20, m)
	}
	if err := os.MkdirAll(filepath.Join(src, "packages", "a", "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRunIn(t, src, e, "push", "-q", "npm-1", "--match", "**/node_modules")

	check := func(t *testing.T, dst string) {
		t.Helper()
		for _, m := range mods {
			if tag, err := treetest.CheckSmall(filepath.Join(dst, filepath.FromSlash(m))); err != nil || tag != m {
				t.Errorf("%s: tag %q, %v", m, tag, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dst, "packages", "a", "src")); err == nil {
			t.Error("packages/a/src, which no pattern matched, was restored")
		}
	}
	fresh := e.freshMachine(t)
	for _, run := range []struct {
		name string
		e    env
	}{{"remote", fresh}, {"local", fresh}} {
		t.Run(run.name, func(t *testing.T) {
			dst := t.TempDir()
			var out pullJSON
			stdout, _ := mustRunIn(t, dst, run.e, "pull", "--json", "--fail-on-miss", "npm-1", "--match", "**/node_modules")
			decodeJSON(t, stdout, &out)
			if want := map[string]string{"remote": "remote", "local": "local"}[run.name]; out.Tier != want || strings.Join(out.Paths, ",") != strings.Join(mods, ",") {
				t.Errorf("pull: tier %q, paths %q; want %s and %q", out.Tier, out.Paths, want, mods)
			}
			check(t, dst)
		})
	}

	// Entries recording paths outside the checkout: pushed by PATH from
	// a directory below it, and by absolute path.
	outside := filepath.Join(src, "packages", "a")
	mustRunIn(t, filepath.Join(outside, "src"), e, "push", "-q", "up", "../node_modules", "../../b/node_modules")
	mustRun(t, e, "push", "-q", "abs", filepath.Join(outside, "node_modules"))
	mustRun(t, e, "push", "-q", "abs2", filepath.Join(outside, "node_modules"), filepath.Join(src, "node_modules"))
	// A checkout whose packages/ is a symlink to elsewhere.
	linked := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(linked, "packages")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key, dir, pattern, why string
	}{
		{"up", t.TempDir(), "**", "not a name below"},
		{"abs", t.TempDir(), "**", "holds one directory's tree"},
		{"abs2", t.TempDir(), "**", "not a name below"},
		{"npm-1", t.TempDir(), "packages/*/node_modules", "no pattern"},
		{"npm-1", linked, "**/node_modules", "is a symlink"},
	} {
		stdout, stderr := mustRunIn(t, c.dir, e.freshMachine(t), "pull", "--json", c.key, "--match", c.pattern)
		var out pullJSON
		decodeJSON(t, stdout, &out)
		if out.Hit || !strings.Contains(strings.Join(out.Skipped, "\n"), c.why) || !strings.Contains(stderr, c.why) {
			t.Errorf("pull %s --match %s: hit %v, skipped %q, stderr %q; want a miss saying %q", c.key, c.pattern, out.Hit, out.Skipped, stderr, c.why)
		}
		if c.dir != linked {
			if ents, _ := os.ReadDir(c.dir); len(ents) != 0 {
				t.Errorf("pull %s --match %s wrote %d entries", c.key, c.pattern, len(ents))
			}
		}
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("a pull wrote %d entries through the checkout's symlink", len(ents))
	}

	// Usage: --match with a PATH, a pattern that climbs out.
	for _, args := range [][]string{
		{"pull", "npm-1", "--match", "**/node_modules", "x"},
		{"push", "npm-2", "--match", "**/node_modules", "x"},
		{"pull", "npm-1", "--match", "../**"},
		{"push", "npm-2", "--match", "/abs"},
	} {
		if _, stderr, code := runCLIIn(t, src, e, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage): %s", args, code, stderr)
		}
	}
	if _, stderr, code := runCLIIn(t, src, e, "push", "npm-2", "--match", "nothing/here"); code != 1 || !strings.Contains(stderr, "no path below") {
		t.Errorf("push matching nothing: exit %d, stderr %q; want 1 naming it", code, stderr)
	}
	if err := os.Symlink("packages", filepath.Join(src, "lnk")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLIIn(t, src, e, "push", "npm-2", "--match", "lnk"); code != 1 || !strings.Contains(stderr, "lnk is a symlink, which --match neither follows nor matches") {
		t.Errorf("push matching a symlink alone: exit %d, stderr %q; want 1 saying why", code, stderr)
	}
	if err := os.Remove(filepath.Join(src, "lnk")); err != nil {
		t.Fatal(err)
	}
	// The local tier below the checkout is never matched.
	inner := e.with("TIERCACHE_DIR", filepath.Join(src, ".tc"))
	mustRunIn(t, src, inner, "push", "-q", "all", "--match", "*")
	stdout, _ := mustRun(t, inner, "ls", "--json", "all")
	if !strings.Contains(stdout, `"packages"`) || strings.Contains(stdout, `".tc"`) {
		t.Errorf("push --match '*' with the local tier in the checkout recorded: %s", stdout)
	}

	// A monorepo of more packages than tiercache.LegacyMaxPaths,
	// restored on a fresh machine.
	many := t.TempDir()
	const packages = 100
	for i := range packages {
		p := filepath.Join(many, "packages", "p"+strconv.Itoa(i), "node_modules")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "f"), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRunIn(t, many, e, "push", "-q", "npm-3", "--match", "**/node_modules")
	dst := t.TempDir()
	var out pullJSON
	stdout, _ = mustRunIn(t, dst, e.freshMachine(t), "pull", "--json", "--fail-on-miss", "npm-3", "--match", "packages/*/node_modules")
	decodeJSON(t, stdout, &out)
	if out.Tier != "remote" || len(out.Paths) != packages {
		t.Errorf("pull of %d packages: tier %q, %d paths", packages, out.Tier, len(out.Paths))
	}
	for i := range packages {
		if b, err := os.ReadFile(filepath.Join(dst, "packages", "p"+strconv.Itoa(i), "node_modules", "f")); err != nil || string(b) != strconv.Itoa(i) {
			t.Errorf("package %d: %q, %v", i, b, err)
		}
	}

	// More matches than an entry holds: a failure (exit 1, which the
	// Action takes for a warning), not a usage error.
	for i := packages; i <= tiercache.MaxPaths; i++ {
		if err := os.MkdirAll(filepath.Join(many, "packages", "p"+strconv.Itoa(i), "node_modules"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprintf("found %d paths", tiercache.MaxPaths+1)
	if _, stderr, code := runCLIIn(t, many, e, "push", "npm-4", "--match", "**/node_modules"); code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("push matching %d paths: exit %d, stderr %q; want 1 naming the count", tiercache.MaxPaths+1, code, stderr)
	}
}

// mustRunIn is mustRun in the working directory dir.
func mustRunIn(t testing.TB, dir string, e env, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runCLIIn(t, dir, e, args...)
	if code != 0 {
		t.Fatalf("tiercache %s (in %s): exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), dir, code, stdout, stderr)
	}
	return stdout, stderr
}
