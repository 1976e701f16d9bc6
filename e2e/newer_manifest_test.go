//go:build unix

package e2e

import (
	"strings"
	"testing"
)

// TestFsckLeavesNewerManifestAlone: an entry whose manifest a newer
// tiercache wrote is reported by fsck, never repaired, and fails
// nothing: a nightly `fsck --repair` on a bucket shared with newer
// versions passes, and the entry stays. A pull refuses it as a miss.
func TestFsckLeavesNewerManifestAlone(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "k", smallTree(t, "k"))
	editManifest(t, b, "", "k", func(m map[string]any) { m["version"] = 2 })

	for _, args := range [][]string{{"fsck"}, {"fsck", "--repair"}} {
		stdout, stderr, code := runCLI(t, e, args...)
		if code != 0 || !strings.Contains(stdout, "newer-manifest") || !strings.Contains(stderr, "left alone 1 entry written by a newer tiercache") {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s\nwant exit 0, the entry listed and said to be left alone", args, code, stdout, stderr)
		}
	}
	if m := readManifest(t, b, "", "k"); m["version"] != float64(2) {
		t.Errorf("the newer manifest was changed: %v", m)
	}
	_, stderr, code := runCLI(t, e.freshMachine(t), "pull", "k", t.TempDir()+"/dst")
	if code != 0 || !strings.Contains(stderr, "newer tiercache") {
		t.Errorf("pull of the newer entry: exit %d, stderr %q; want a miss naming the newer format", code, stderr)
	}
}
