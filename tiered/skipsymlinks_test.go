package tiered

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestLinkPullSkipSymlinks: a Link pull with SkipSymlinks of an entry
// holding a symlink succeeds where symlinks cannot be made (Windows
// without the privilege, Wine): the tree to link from would need the
// link, so it copies from the archive, skipping it. Where they can be
// made, the link is restored.
func TestLinkPullSkipSymlinks(t *testing.T) {
	store := memstore.New()
	putHandArchive(t, store, "k",
		handMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "f.txt", Mode: 0o644}, body: "f"},
		handMember{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "f.txt", Mode: 0o777}},
	)
	c := newTiered(t, store, Options{})
	// A download, then a local hit.
	for _, name := range []string{"cold", "warm"} {
		dir := filepath.Join(t.TempDir(), name)
		h, ok, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{Link: true, SkipSymlinks: true})
		if err != nil || !ok {
			t.Fatalf("%s pull --link --skip-symlinks: %v %v", name, ok, err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "f.txt")); err != nil || string(b) != "f" {
			t.Errorf("%s: f.txt: %q %v", name, b, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "l")); err != nil && h.SkippedSymlinks != 1 {
			t.Errorf("%s: the symlink is neither restored (%v) nor counted skipped (%d)", name, err, h.SkippedSymlinks)
		}
	}
}
