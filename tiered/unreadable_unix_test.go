//go:build unix

package tiered

import (
	"archive/tar"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote/memstore"
)

// unreadableModes are the modes of the entry putUnreadable stores, by
// path: what root may push, and its owner then cannot read.
var unreadableModes = map[string]fs.FileMode{
	"d000":       0o000,
	"d000/sub":   0o755,
	"d300":       0o300,
	"f000":       0o000,
	"d300/f":     0o644,
	"d000/sub/f": 0o644,
}

// putUnreadable stores under key an archive of directories and a file
// their owner may not read, as root's trees hold (built by hand: an
// ordinary user could not archive them).
func putUnreadable(t *testing.T, store *memstore.Store, key string) {
	t.Helper()
	var ms []handMember
	for _, m := range []struct {
		name string
		dir  bool
	}{{"d000", true}, {"d000/sub", true}, {"d000/sub/f", false}, {"d300", true}, {"d300/f", false}, {"f000", false}} {
		h := tar.Header{Typeflag: tar.TypeReg, Name: m.name, Mode: int64(unreadableModes[m.name])}
		body := m.name
		if m.dir {
			h.Typeflag, h.Name, body = tar.TypeDir, m.name+"/", ""
		}
		ms = append(ms, handMember{hdr: h, body: body})
	}
	putHandArchive(t, store, key, ms...)
}

// TestPullUnreadableEntry: an entry holding directories and a file that
// their owner may not read (mode 000, a 0300 directory) restores with
// those modes on every pull, not just the first: merging a pull's stage
// into a DIR that holds the entry already enters them, and a pull from
// the tree the local tier keeps (for Link, or after one) restores from
// the archive when the tree cannot be read. Run as root this proves
// little; make test-unprivileged runs it as an ordinary user.
func TestPullUnreadableEntry(t *testing.T) {
	store := memstore.New()
	putUnreadable(t, store, "k")
	c := newTiered(t, store, Options{})
	base := t.TempDir()
	t.Cleanup(func() {
		_ = fsutil.RemoveAll(base)
		_ = fsutil.RemoveAll(c.local.Root()) // its tree holds d000 too
	})
	check := func(t *testing.T, dir string) {
		t.Helper()
		for name, want := range unreadableModes {
			fi, err := os.Lstat(filepath.Join(dir, name))
			if err != nil {
				// Below a directory of mode 000: look with it opened.
				if err := os.Chmod(filepath.Join(dir, "d000"), 0o700); err != nil {
					t.Fatal(err)
				}
				fi, err = os.Lstat(filepath.Join(dir, name))
				_ = os.Chmod(filepath.Join(dir, "d000"), 0)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %v, want %v", name, got, want)
			}
		}
	}
	dir := filepath.Join(base, "dir")
	for i, step := range []struct {
		name string
		opts PullOptions
	}{
		{name: "download into an absent DIR"},
		{name: "local archive into the same DIR"},
		{name: "link", opts: PullOptions{Link: true}},
		{name: "expanded tree into the same DIR"},
		{name: "link into a new DIR", opts: PullOptions{Link: true}},
	} {
		if i == 4 {
			dir = filepath.Join(base, "dir2")
		}
		h, ok, err := c.Pull(t.Context(), "k", nil, dir, step.opts)
		if err != nil || !ok {
			t.Fatalf("%s: hit %v, %v", step.name, ok, err)
		}
		if i > 0 && h.Tier != "local" {
			t.Errorf("%s: restored from %s, want the local tier", step.name, h.Tier)
		}
		check(t, dir)
	}
	// The expanded tree the link pulls left is sound, readable or not.
	rep, err := c.local.Verify(t.Context(), local.VerifyOptions{Deep: true})
	if err != nil || len(rep.Problems) != 0 {
		t.Errorf("fsck --deep of the local tier: %v, problems %+v; want none", err, rep.Problems)
	}
}
