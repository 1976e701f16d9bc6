package tiered

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPullPathsCopyProgress: a pull of an entry of several paths
// from the local tier's tree (Link, or a later pull once the tree
// exists) reports its copy as a pull of one directory does: Op "copy",
// Done rising to Total, the entry's tree bytes, never beyond.
func TestPullPathsCopyProgress(t *testing.T) {
	var mu sync.Mutex
	var last Progress
	var events, bad int
	c := newTiered(t, memstore.New(), Options{Progress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Op != "copy" {
			return
		}
		// Files are copied concurrently: Done may arrive out of order.
		if p.Done > p.Total || p.Key != "k" {
			bad++
		}
		events++
		if p.Done > last.Done {
			last = p
		}
	}})
	srcDir, srcFile := pathsSource(t)
	res, err := c.PushPaths(t.Context(), "k", []string{srcDir, srcFile}, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []PullOptions{{Link: true}, {}} {
		mu.Lock()
		last, events, bad = Progress{}, 0, 0
		mu.Unlock()
		base := t.TempDir()
		h, ok, err := c.PullPaths(t.Context(), "k", nil, []string{filepath.Join(base, "d"), filepath.Join(base, "f")}, opts)
		if err != nil || !ok || h.Tier != "local" || h.Copy.Files == 0 {
			t.Fatalf("pull (link %v) from the local tree: %+v, %v, %v", opts.Link, h, ok, err)
		}
		mu.Lock()
		if events == 0 || bad != 0 || last.Total != res.Entry.Size || last.Done != last.Total {
			t.Errorf("pull (link %v): %d copy events (%d beyond Total or of another key), the furthest %+v; want Done rising to Total = %d", opts.Link, events, bad, last, res.Entry.Size)
		}
		mu.Unlock()
	}
}
