//go:build unix

package tiered

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestTierGuardPushSockets: a push reports the sockets it left out, the
// first as a path below the path pushed.
func TestTierGuardPushSockets(t *testing.T) {
	src := smallTree(t, "s")
	l, err := net.Listen("unix", filepath.Join(src, "d1", "s.sock"))
	if err != nil {
		t.Fatalf("cannot make a socket here: %v", err)
	}
	defer l.Close()
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	for _, opts := range []Options{{}, {Remote: store}, {Remote: store, NoLocal: true}} {
		c := newTiered(t, nil, opts)
		for _, paths := range [][]string{{src}, {file, src}} {
			res, err := c.PushPaths(t.Context(), "k", paths, PushOptions{})
			if want := filepath.Join(src, "d1", "s.sock"); err != nil || res.Sockets != 1 || res.FirstSocket != want {
				t.Errorf("push of %q (remote %v, NoLocal %v): %d sockets, first %q, %v; want 1, %q", paths, opts.Remote != nil, opts.NoLocal, res.Sockets, res.FirstSocket, err, want)
			}
		}
	}
}
