package tiered

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestLocalHitLargerThanRoomBeside: a local entry kept as an
// archive, whose tree is larger than the free space beside DIR, is
// skipped before anything is written, as a download of it is: a miss
// listing it in Hit.Refused, DIR not created, the entry kept (found by
// a restore key with the remote down too); with room, it is restored.
func TestLocalHitLargerThanRoomBeside(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	push(t, c, "deps-big", "big")
	// A pull into dir finds one byte free beside it; elsewhere, the
	// disk's real room.
	base := t.TempDir()
	dir := filepath.Join(base, "dir")
	real := freeBeside
	freeBeside = func(p string) (int64, error) {
		if p == base {
			return 1, nil
		}
		return real(p)
	}
	t.Cleanup(func() { freeBeside = real })

	for _, how := range []string{"local", "local, remote down", "no-local"} {
		cc := c
		switch how {
		case "local, remote down":
			f := &faultyStore{Store: store}
			f.down.Store(true)
			var err error
			if cc, err = New(c.Local(), Options{Remote: f}); err != nil {
				t.Fatal(err)
			}
		case "no-local":
			cc = newTiered(t, store, Options{NoLocal: true})
		}
		key, prefixes := "deps-big", []string(nil)
		if how == "local, remote down" {
			// Found by a restore key once the remote failed on the key:
			// from the local tier alone.
			key, prefixes = "deps-new", []string{"deps-"}
		}
		h, ok, err := cc.Pull(t.Context(), key, prefixes, dir, PullOptions{})
		if ok || err != nil && !IsRemote(err) {
			t.Fatalf("%s: pull of a tree larger than the room beside DIR: %+v, %v, %v; want a miss", how, h, ok, err)
		}
		if len(h.Refused) != 1 || !errors.Is(h.Refused[0], ErrNoRoom) || !strings.Contains(h.Refused[0].Error(), "free beside "+dir) {
			t.Errorf("%s: refused %v; want the entry skipped for the room beside %s", how, h.Refused, dir)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: DIR was created: %v", how, err)
		}
	}
	if _, ok, err := c.Local().Peek(t.Context(), "deps-big"); !ok || err != nil {
		t.Errorf("the local entry is gone after it was skipped: %v, %v", ok, err)
	}
	freeBeside = func(p string) (int64, error) {
		if p == base {
			return 1 << 40, nil
		}
		return real(p)
	}
	if h, ok, err := c.Pull(t.Context(), "deps-big", nil, dir, PullOptions{}); err != nil || !ok || h.Tier != "local" {
		t.Fatalf("pull with room: %+v, %v, %v", h, ok, err)
	}
}
