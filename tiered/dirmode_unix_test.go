//go:build unix

package tiered

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPullKeepsDirSpecialBits: an existing DIR keeps its setgid and
// sticky bits through a pull, whichever way the tree gets in (renamed
// into an empty DIR, merged into a full one, hardlinked from the local
// tier's tree), as tar -x keeps them. A group's shared directory that
// lost setgid would give the next files another group.
func TestPullKeepsDirSpecialBits(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	if _, err := c.Push(t.Context(), "k", smallTree(t, "special"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []fs.FileMode{0o775 | fs.ModeSetgid, 0o777 | fs.ModeSticky} {
		for _, tc := range []struct {
			name string
			full bool
			opts PullOptions
		}{
			{name: "empty"},
			{name: "full", full: true},
			{name: "link", opts: PullOptions{Link: true}},
		} {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "dir")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if tc.full {
					if err := os.WriteFile(filepath.Join(dir, "mine"), []byte("mine"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Chmod(dir, mode); err != nil {
					t.Fatal(err)
				}
				if _, ok, err := c.Pull(t.Context(), "k", nil, dir, tc.opts); err != nil || !ok {
					t.Fatalf("Pull: ok=%v err=%v", ok, err)
				}
				fi, err := os.Stat(dir)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky); got != mode {
					t.Errorf("DIR's mode after the pull is %v, want %v", got, mode)
				}
			})
		}
	}
}
