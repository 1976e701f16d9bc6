//go:build unix

package local

import (
	"os"
	"path/filepath"
	"testing"
)

// TestVerifyUnreadableTree: fsck --deep --repair leaves a tree-only entry
// whose tree holds a directory its owner may not read (root's trees hold
// such): it cannot be counted, which is no sign of damage.
func TestVerifyUnreadableTree(t *testing.T) {
	c, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	src := smallSrc(t, "u")
	tree, err := c.Put(t.Context(), "k", src, "")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(tree)
	if err != nil {
		t.Fatal(err)
	}
	var locked string
	for _, e := range ents {
		if e.IsDir() {
			locked = filepath.Join(tree, e.Name())
			break
		}
	}
	if locked == "" {
		t.Fatal("the source has no directory to lock")
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(locked, 0o755) })
	rep, err := c.Verify(t.Context(), VerifyOptions{Deep: true, Repair: true})
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Verify: %v, problems %+v; want none", err, rep.Problems)
	}
	if keys := listKeys(t, c); len(keys) != 1 {
		t.Errorf("keys after the repair: %v, want k kept", keys)
	}
}
