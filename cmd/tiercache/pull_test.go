package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
)

func TestPushPullRoundTrip(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 200})

	r := mustCLI(t, e, "push", "fid-1", src)
	if !strings.Contains(r.stderr, `pushed "fid-1"`) || !strings.Contains(r.stderr, "local only") {
		t.Errorf("push summary missing or wrong: %q", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("push printed on stdout without --json: %q", r.stdout)
	}

	dst := filepath.Join(t.TempDir(), "new", "dst") // parents absent too
	r = mustCLI(t, e, "pull", "fid-1", dst)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, treetest.FidelityReadOnlyDir), 0o755) })
	treetest.AssertEqual(t, src, dst)
	if !strings.Contains(r.stderr, `hit "fid-1" from the local tier`) || !strings.Contains(r.stderr, "local only: no remote configured") {
		t.Errorf("pull summary: %q", r.stderr)
	}
	// A miss says so too, so nobody wonders why the remote was not asked.
	if r := mustCLI(t, e, "pull", "fid-none", filepath.Join(t.TempDir(), "d")); !strings.Contains(r.stderr, "local only: no remote configured") {
		t.Errorf("miss summary: %q", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("pull printed on stdout without --json: %q", r.stdout)
	}

	// The --key form is the same command.
	dst2 := filepath.Join(t.TempDir(), "dst2")
	mustCLI(t, e, "pull", "--key", "fid-1", dst2)
	treetest.AssertEqual(t, src, dst2)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst2, treetest.FidelityReadOnlyDir), 0o755) })
}

func TestPullLink(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t, "link")
	mustCLI(t, e, "push", "k", src)
	dst := filepath.Join(t.TempDir(), "dst")
	mustCLI(t, e, "pull", "--link", "k", dst)
	treetest.AssertEqual(t, src, dst)
	// The pulled marker shares its inode with the cached tree's.
	fi, err := os.Stat(filepath.Join(dst, treetest.SmallMarker))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	_ = filepath.WalkDir(e["TIERCACHE_DIR"], func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == treetest.SmallMarker {
			if ci, err := os.Stat(p); err == nil && os.SameFile(fi, ci) {
				found = true
			}
		}
		return nil
	})
	if !found {
		t.Error("--link: pulled file does not share an inode with the cache")
	}
}

func TestPullMiss(t *testing.T) {
	e := newEnv(t)
	dst := filepath.Join(t.TempDir(), "dst")
	r := cli(t, e, "pull", "nothing-here", dst)
	if r.code != 0 {
		t.Fatalf("miss: exit %d, want 0; stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, `miss: nothing stored under "nothing-here"`) {
		t.Errorf("miss summary: %q", r.stderr)
	}
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		t.Errorf("DIR not created on a miss: %v", err)
	}

	r = cli(t, e, "pull", "--fail-on-miss", "--restore-key", "nope-", "nothing-here", dst)
	if r.code != exitMiss {
		t.Fatalf("--fail-on-miss: exit %d, want %d", r.code, exitMiss)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if last != `tiercache: pull "nothing-here": cache miss (--fail-on-miss)` {
		t.Errorf("--fail-on-miss error line: %q", last)
	}

	// A hit with --fail-on-miss is a success.
	mustCLI(t, e, "push", "here", smallTree(t, "x"))
	mustCLI(t, e, "pull", "--fail-on-miss", "here", filepath.Join(t.TempDir(), "d"))
	// So is a restore-key hit.
	mustCLI(t, e, "pull", "--fail-on-miss", "-r", "he", "not-here", filepath.Join(t.TempDir(), "d"))
}

func TestPullRestoreKeyOrder(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "deps-a-1", smallTree(t, "a1"))
	mustCLI(t, e, "push", "deps-b-1", smallTree(t, "b1"))
	mustCLI(t, e, "push", "deps-a-2", smallTree(t, "a2")) // newest deps-a-*

	tagOf := func(dir string) string {
		t.Helper()
		tag, err := treetest.CheckSmall(dir)
		if err != nil {
			t.Fatal(err)
		}
		return tag
	}
	cases := []struct {
		name    string
		args    []string
		wantTag string
		wantKey string
	}{
		{"exact key wins over restore keys", []string{"-r", "deps-b-", "deps-a-1"}, "a1", "deps-a-1"},
		{"first restore key first", []string{"-r", "deps-b-", "-r", "deps-a-", "deps-c"}, "b1", "deps-b-1"},
		{"order is the flags' order", []string{"-r", "deps-a-", "-r", "deps-b-", "deps-c"}, "a2", "deps-a-2"},
		{"missing prefix skipped", []string{"-r", "none-", "-r", "deps-b-", "deps-c"}, "b1", "deps-b-1"},
		{"newest match of a prefix", []string{"-r", "deps-", "deps-c"}, "a2", "deps-a-2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			r := mustCLI(t, e, append(append([]string{"pull", "--json"}, c.args...), dst)...)
			var out pullJSON
			decode(t, r, &out)
			if got := tagOf(dst); got != c.wantTag {
				t.Errorf("restored tree %q, want %q", got, c.wantTag)
			}
			if out.Key != c.wantKey || !out.Hit {
				t.Errorf("JSON key %q hit %v, want %q true", out.Key, out.Hit, c.wantKey)
			}
			if out.Exact != (c.wantKey == c.args[len(c.args)-1]) {
				t.Errorf("JSON exact = %v", out.Exact)
			}
		})
	}
}

func TestPullJSON(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t, "j")
	mustCLI(t, e, "push", "json-key", src)

	r := mustCLI(t, e, "pull", "--json", "json-key", filepath.Join(t.TempDir(), "d"))
	var hit map[string]any
	decode(t, r, &hit)
	want := map[string]any{"hit": true, "key": "json-key", "tier": "local", "requested_key": "json-key", "exact": true}
	for k, v := range want {
		if hit[k] != v {
			t.Errorf("%s = %#v, want %#v (all: %v)", k, hit[k], v, hit)
		}
	}
	if b, ok := hit["bytes"].(float64); !ok || b <= 0 {
		t.Errorf("bytes = %#v, want a positive number", hit["bytes"])
	}
	if s, ok := hit["seconds"].(float64); !ok || s < 0 {
		t.Errorf("seconds = %#v, want a number", hit["seconds"])
	}

	r = mustCLI(t, e, "pull", "--json", "-r", "json-", "json-other", filepath.Join(t.TempDir(), "d"))
	var partial map[string]any
	decode(t, r, &partial)
	if partial["hit"] != true || partial["key"] != "json-key" || partial["requested_key"] != "json-other" || partial["exact"] != false {
		t.Errorf("restore-key hit JSON: %v", partial)
	}

	r = mustCLI(t, e, "pull", "--json", "absent", filepath.Join(t.TempDir(), "d"))
	var miss map[string]any
	decode(t, r, &miss)
	if miss["hit"] != false || miss["key"] != "" || miss["tier"] != "" || miss["bytes"] != float64(0) {
		t.Errorf("miss JSON: %v", miss)
	}
	if _, ok := miss["seconds"].(float64); !ok {
		t.Errorf("miss JSON lacks seconds: %v", miss)
	}
}

func TestPullGitHubOutput(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "gh-1", smallTree(t, "gh"))
	out := filepath.Join(t.TempDir(), "github_output")
	if err := os.WriteFile(out, []byte("earlier=step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e = e.with("GITHUB_OUTPUT", out)
	mustCLI(t, e, "pull", "gh-1", filepath.Join(t.TempDir(), "d"))
	mustCLI(t, e, "pull", "-r", "gh-", "gh-2", filepath.Join(t.TempDir(), "d"))
	mustCLI(t, e, "pull", "gh-3", filepath.Join(t.TempDir(), "d"))
	// A restore key's match that differs from KEY in case alone is a
	// hit, as actions/cache compares keys; an accent is a difference.
	mustCLI(t, e, "pull", "-r", "gh-", "GH-1", filepath.Join(t.TempDir(), "d"))
	mustCLI(t, e, "pull", "-r", "gh-", "gĥ-1", filepath.Join(t.TempDir(), "d"))
	want := "earlier=step\n" +
		"cache-hit=true\ncache-matched-key=gh-1\ncache-primary-key=gh-1\n" +
		"cache-hit=false\ncache-matched-key=gh-1\ncache-primary-key=gh-2\n" +
		"cache-hit=false\ncache-matched-key=\ncache-primary-key=gh-3\n" +
		"cache-hit=true\ncache-matched-key=gh-1\ncache-primary-key=GH-1\n" +
		"cache-hit=false\ncache-matched-key=gh-1\ncache-primary-key=gĥ-1\n"
	if got := readFile(t, out); got != want {
		t.Errorf("GITHUB_OUTPUT:\n%s\nwant:\n%s", got, want)
	}

	// An unwritable GITHUB_OUTPUT is a failure naming it.
	r := cli(t, e.with("GITHUB_OUTPUT", filepath.Join(t.TempDir(), "no", "such", "file")), "pull", "gh-1", filepath.Join(t.TempDir(), "d"))
	if r.code != exitFailure || !strings.Contains(r.stderr, "GITHUB_OUTPUT") {
		t.Errorf("bad GITHUB_OUTPUT: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPullReplacesSamePathsKeepsOthers(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	for p, c := range map[string]string{"a.txt": "new a", "sub/b.txt": "new b"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustCLI(t, e, "push", "replace", src)

	dst := filepath.Join(t.TempDir(), "dst")
	for p, c := range map[string]string{"a.txt": "old a, longer than the new one", "sub/b.txt": "old b", "sub/keep.txt": "keep", "keep.txt": "keep too"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink in DIR where the tree has a file must be replaced, not
	// written through.
	if err := os.Remove(filepath.Join(dst, "sub", "b.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dst, "sub", "b.txt")); err != nil {
		t.Fatal(err)
	}

	mustCLI(t, e, "pull", "replace", dst)
	for p, want := range map[string]string{"a.txt": "new a", "sub/b.txt": "new b", "sub/keep.txt": "keep", "keep.txt": "keep too"} {
		if got := readFile(t, filepath.Join(dst, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if got := readFile(t, outside); got != "outside" {
		t.Errorf("pull wrote through a symlink: outside file = %q", got)
	}
}

func TestPullBadRestoreKey(t *testing.T) {
	r := cli(t, newEnv(t), "pull", "-r", "", "k", t.TempDir())
	if r.code != exitUsage || !strings.Contains(r.stderr, `tiercache: pull "k": restore key "": invalid key`) {
		t.Errorf("empty restore key: exit %d, stderr %q", r.code, r.stderr)
	}
}
