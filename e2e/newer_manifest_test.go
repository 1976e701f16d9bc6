//go:build unix

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// TestFsckLeavesNewerManifestAlone: an entry whose manifest a newer
// tiercache wrote is reported by fsck, never repaired, and fails
// nothing: a nightly `fsck --repair` on a bucket shared with newer
// versions passes, and the entry stays. A pull refuses it as a miss;
// through a restore key whose newest match it is, the pull restores the
// next match, and the newer entry stays.
func TestFsckLeavesNewerManifestAlone(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "k-old", smallTree(t, "k-old"))
	time.Sleep(1100 * time.Millisecond) // newer by any server's clock
	mustRun(t, e, "push", "k", smallTree(t, "k"))
	editManifest(t, b, "", "k", func(m map[string]any) { m["version"] = 3 })

	for _, args := range [][]string{{"fsck"}, {"fsck", "--repair"}} {
		stdout, stderr, code := runCLI(t, e, args...)
		if code != 0 || !strings.Contains(stdout, "newer-manifest") || !strings.Contains(stderr, "left alone 1 entry written by a newer tiercache") {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s\nwant exit 0, the entry listed and said to be left alone", args, code, stdout, stderr)
		}
	}
	if m := readManifest(t, b, "", "k"); m["version"] != float64(3) {
		t.Errorf("the newer manifest was changed: %v", m)
	}
	_, stderr, code := runCLI(t, e.freshMachine(t), "pull", "k", t.TempDir()+"/dst")
	// Never "rm it": the entry is sound for the tiercache that wrote it.
	if code != 0 || !strings.Contains(stderr, "newer tiercache") || !strings.Contains(stderr, "upgrade this one to use it; treated as a miss") || strings.Contains(stderr, "rm KEY") {
		t.Errorf("pull of the newer entry: exit %d, stderr %q; want a miss naming the newer format, advising an upgrade", code, stderr)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	_, stderr, code = runCLI(t, e.freshMachine(t), "pull", "--restore-key", "k", "missing", dst)
	if tag, err := treetest.CheckSmall(dst); code != 0 || err != nil || tag != "k-old" {
		t.Errorf("pull --restore-key k: exit %d, restored %q (%v), stderr %q; want k-old, the newest match this tiercache reads", code, tag, err, stderr)
	}
	if !strings.Contains(stderr, `remote get "k"`) || !strings.Contains(stderr, "upgrade this one to use it; passed over") {
		t.Errorf("pull --restore-key k: stderr %q; want a warning that k, of a newer tiercache, was passed over", stderr)
	}
	if m := readManifest(t, b, "", "k"); m["version"] != float64(3) {
		t.Errorf("a restore-key pull changed the newer manifest: %v", m)
	}
}
