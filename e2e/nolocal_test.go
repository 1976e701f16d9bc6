//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// TestCLINoLocal: --no-local pushes from DIR straight to MinIO and pulls
// straight into DIR, through a real S3 round trip, keeping nothing in the
// local tier; the result equals the source, and what it uploaded is an
// ordinary entry that a normal pull restores.
func TestCLINoLocal(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b).with("TIERCACHE_NO_LOCAL", "true")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 300})

	out, stderr := mustRun(t, e, "push", "--json", "nolocal-1", src)
	var push map[string]any
	decodeJSON(t, out, &push)
	if push["uploaded"] != true || !strings.Contains(stderr, "remote only") {
		t.Fatalf("push --no-local: %v\n%s", push, stderr)
	}
	out, _ = mustRun(t, e, "push", "--json", "nolocal-1", src)
	decodeJSON(t, out, &push)
	if push["upload_skipped"] != true {
		t.Errorf("second push of the same tree: %v, want upload_skipped", push)
	}

	for _, tc := range []struct {
		name string
		prep func(dir string)
	}{
		{"absent", func(string) {}},
		{"empty", func(dir string) { must(t, os.Mkdir(dir, 0o755)) }},
		{"not empty", func(dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "sub", "other.txt"), []byte("other"), 0o644))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			tc.prep(dst)
			out, _ := mustRun(t, e.freshMachine(t), "pull", "--json", "nolocal-1", dst)
			var hit pullJSON
			decodeJSON(t, out, &hit)
			if !hit.Hit || hit.Tier != "remote" || hit.DownloadedBytes <= 0 {
				t.Fatalf("pull --no-local JSON: %+v", hit)
			}
			if tc.name == "not empty" {
				must(t, os.RemoveAll(filepath.Join(dst, "sub")))
			}
			treetest.AssertEqual(t, src, dst)
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".tiercache-pull-*"))
			if len(left) != 0 {
				t.Errorf("staging left beside DIR: %v", left)
			}
			// Its read-only directories would fail t.TempDir's removal
			// for a user who is not root.
			t.Cleanup(func() { _ = fsutil.RemoveAll(dst) })
		})
	}
	if entries, err := os.ReadDir(filepath.Join(e["TIERCACHE_DIR"], "data")); err == nil && len(entries) != 0 {
		t.Errorf("the local tier holds %d versions after --no-local runs", len(entries))
	}

	// What --no-local uploaded is an ordinary entry.
	dst := filepath.Join(t.TempDir(), "normal")
	mustRun(t, newEnv(t, b), "pull", "nolocal-1", dst)
	treetest.AssertEqual(t, src, dst)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, treetest.FidelityReadOnlyDir), 0o755) })

	// Without a remote, --no-local is a usage error.
	_, stderr, code := runCLI(t, e.with("TIERCACHE_REMOTE", ""), "push", "k", src)
	if code != 2 || !strings.Contains(stderr, "--no-local needs a remote") {
		t.Errorf("--no-local without a remote: exit %d, %q", code, stderr)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
