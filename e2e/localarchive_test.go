//go:build unix

package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// versionPath returns the version directory of key's local entry.
func versionPath(t *testing.T, e env, key string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(e["TIERCACHE_DIR"], "index", key))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(e["TIERCACHE_DIR"], "index", target)
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// firstFile returns the path, relative to dir, of a regular file in it.
func firstFile(t *testing.T, dir string) string {
	t.Helper()
	var rel string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || rel != "" || !d.Type().IsRegular() {
			return err
		}
		rel, err = filepath.Rel(dir, p)
		return err
	})
	if err != nil || rel == "" {
		t.Fatalf("no regular file in %s (%v)", dir, err)
	}
	return rel
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// TestLocalTierKeepsArchives: a push keeps the uploaded archive, not a
// tree, in the local tier; a pull on the same machine restores from it
// with no remote GET at all, counted at the transport; a cold pull on
// another machine keeps the download as its archive too.
func TestLocalTierKeepsArchives(t *testing.T) {
	endpoint, log := recordingProxy(t)
	e := newEnv(t, bucket(t)).with("TIERCACHE_S3_ENDPOINT", endpoint)
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 300})

	mustRun(t, e, "push", "k", src)
	v := versionPath(t, e, "k")
	if !exists(filepath.Join(v, "archive.tar.zst")) || exists(filepath.Join(v, "tree")) {
		t.Fatalf("after a push the local version holds %v; want the archive alone", listDir(t, v))
	}

	before := len(log.all())
	dst := filepath.Join(t.TempDir(), "dst")
	out, _ := mustRun(t, e, "pull", "--json", "k", dst)
	var hit pullJSON
	decodeJSON(t, out, &hit)
	if !hit.Hit || hit.Tier != "local" || hit.DownloadedBytes != 0 {
		t.Fatalf("warm pull: %+v", hit)
	}
	for _, r := range log.all()[before:] {
		if strings.HasPrefix(r, "GET ") {
			t.Errorf("a warm pull sent %s", r)
		}
	}
	treetest.AssertEqual(t, src, dst)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, treetest.FidelityReadOnlyDir), 0o755) })

	m := e.freshMachine(t)
	cold := filepath.Join(t.TempDir(), "cold")
	out, _ = mustRun(t, m, "pull", "--json", "k", cold)
	decodeJSON(t, out, &hit)
	if !hit.Hit || hit.Tier != "remote" || hit.DownloadedBytes == 0 {
		t.Fatalf("cold pull: %+v", hit)
	}
	treetest.AssertEqual(t, src, cold)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(cold, treetest.FidelityReadOnlyDir), 0o755) })
	a, err1 := os.ReadFile(filepath.Join(versionPath(t, m, "k"), "archive.tar.zst"))
	b, err2 := os.ReadFile(filepath.Join(v, "archive.tar.zst"))
	if err1 != nil || err2 != nil || string(a) != string(b) {
		t.Fatalf("the cold pull's local archive differs from the pushed one (%v, %v)", err1, err2)
	}
	if exists(filepath.Join(versionPath(t, m, "k"), "tree")) {
		t.Error("a cold pull made a tree in the local tier")
	}
}

// TestDamagedLocalArchiveRefetched: a byte flipped in the local archive is
// caught by its recorded SHA-256; the pull warns, drops it, downloads the
// key again, and DIR gets the right tree.
func TestDamagedLocalArchiveRefetched(t *testing.T) {
	e := newEnv(t, bucket(t))
	src := smallTree(t, "dmg")
	mustRun(t, e, "push", "k", src)
	arch := filepath.Join(versionPath(t, e, "k"), "archive.tar.zst")
	data, err := os.ReadFile(arch)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := os.Chmod(arch, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(arch, data, 0o444); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	out, stderr := mustRun(t, e, "pull", "--json", "--fail-on-miss", "k", dst)
	var hit pullJSON
	decodeJSON(t, out, &hit)
	if hit.Tier != "remote" || hit.DownloadedBytes == 0 {
		t.Errorf("pull after damage: %+v; want a download", hit)
	}
	if !strings.Contains(stderr, "damaged and has been dropped") || !strings.Contains(stderr, "integrity") {
		t.Errorf("stderr %q; want a warning about the damaged local copy", stderr)
	}
	if tag, err := treetest.CheckSmall(dst); err != nil || tag != "dmg" {
		t.Fatalf("DIR after the pull: tag %q, %v", tag, err)
	}
	// The fresh download replaced the damaged copy.
	if b, err := os.ReadFile(filepath.Join(versionPath(t, e, "k"), "archive.tar.zst")); err != nil || string(b) == string(data) {
		t.Fatalf("the local archive was not replaced (%v)", err)
	}
	mustRun(t, e, "fsck", "--deep")
}

// TestLinkMakesTreeOnce: four processes pulling with --link at once make
// the tree beside the archive once, and each DIR shares its inodes.
func TestLinkMakesTreeOnce(t *testing.T) {
	e := newEnv(t, bucket(t))
	src := smallTree(t, "link")
	mustRun(t, e, "push", "k", src)
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	for i := range dirs {
		dirs[i] = filepath.Join(t.TempDir(), "dst")
		wg.Go(func() { mustRun(t, e, "pull", "--link", "k", dirs[i]) })
	}
	wg.Wait()
	tree := filepath.Join(versionPath(t, e, "k"), "tree")
	file := firstFile(t, tree)
	for _, d := range dirs {
		treetest.AssertEqual(t, src, d)
		a, err1 := os.Stat(filepath.Join(tree, file))
		b, err2 := os.Stat(filepath.Join(d, file))
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			t.Fatalf("%s is not hardlinked to the local tree (%v, %v)", d, err1, err2)
		}
	}
	// One tree: every DIR's file is the same inode, so its link count
	// is the tree's own plus one per DIR.
	fi, err := os.Stat(filepath.Join(tree, file))
	if err != nil {
		t.Fatal(err)
	}
	if n := fi.Sys().(*syscall.Stat_t).Nlink; n != 5 {
		t.Fatalf("link count %d, want 5: the tree was made more than once", n)
	}
	if staging := listDir(t, filepath.Join(e["TIERCACHE_DIR"], "staging")); len(staging) != 0 {
		t.Fatalf("staging holds %v", staging)
	}
}

// TestPruneDropsLocalTreesFirst: over the local byte limit, prune removes
// the trees --link made beside archives before any entry, and the
// entries still restore from their archives.
func TestPruneDropsLocalTreesFirst(t *testing.T) {
	e := newEnv(t, bucket(t))
	for _, k := range []string{"a", "b"} {
		mustRun(t, e, "push", k, smallTree(t, k))
		mustRun(t, e, "pull", "--link", k, filepath.Join(t.TempDir(), "dst"))
	}
	out, _ := mustRun(t, e, "ls", "--json", "--tier", "local")
	var entries []struct {
		Key    string `json:"key"`
		Size   int64  `json:"size"`
		Stored int64  `json:"stored"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	var archives int64
	for _, en := range entries {
		if en.Stored <= en.Size {
			t.Fatalf("%s: stored %d for a tree of %d; want archive plus tree", en.Key, en.Stored, en.Size)
		}
		archives += en.Stored - en.Size
	}
	// A tree used within the grace (ten minutes) may be being read, and
	// stays: make them an hour old, as on a machine that lives on.
	for _, k := range []string{"a", "b"} {
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(versionPath(t, e, k), old, old); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, e, "prune", "--max-bytes", strconv.FormatInt(archives, 10))
	for _, k := range []string{"a", "b"} {
		v := versionPath(t, e, k)
		if exists(filepath.Join(v, "tree")) {
			t.Errorf("%s: the tree survived the prune", k)
		}
		if !exists(filepath.Join(v, "archive.tar.zst")) {
			t.Errorf("%s: the archive was evicted", k)
		}
		d := filepath.Join(t.TempDir(), "again")
		out, _ := mustRun(t, e, "pull", "--json", "--fail-on-miss", k, d)
		var hit pullJSON
		decodeJSON(t, out, &hit)
		if hit.Tier != "local" {
			t.Errorf("%s after prune: %+v; want a local hit", k, hit)
		}
		if tag, err := treetest.CheckSmall(d); err != nil || tag != k {
			t.Errorf("%s after prune: tag %q, %v", k, tag, err)
		}
	}
}
