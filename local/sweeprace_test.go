package local

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
)

// TestSweepRaceWithReplace plays a stale retired record (a crash between
// recording and swapping, or a failed pointer write) that names the
// current version and is past the grace. A Put replaces that version
// between the sweep's age check and its taking the stripe lock, which
// restarts the record's grace: the sweep must leave the version (and its
// record) for the grace, since a reader got its tree moments ago.
func TestSweepRaceWithReplace(t *testing.T) {
	const grace = time.Hour
	c := open(t, Options{Grace: grace})
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", smallSrc(t, "old"), ""); err != nil {
		t.Fatal(err)
	}
	old, _ := c.current(nameOf("k"))
	if err := c.retire(old); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(c.retiredDir, old)
	long := time.Now().Add(-2 * grace)
	if err := os.Chtimes(rec, long, long); err != nil {
		t.Fatal(err)
	}
	p, ok, err := c.Get(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	// The sweep's own step, with the Put slipped in where the age check
	// is done and the stripe lock not yet taken (which removal takes).
	s := &scan{c: c, stop: ctx.Err, grace: grace}
	replaced := false
	err = s.retired(func(pr *tiercache.Problem, remove func() error) error {
		if !replaced {
			replaced = true
			if _, err := c.Put(ctx, "k", smallSrc(t, "new"), ""); err != nil {
				t.Fatal(err)
			}
		}
		return remove()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !replaced {
		t.Fatal("the sweep did not hand over the stale record")
	}
	if _, err := os.Lstat(filepath.Join(c.dataDir, old)); err != nil {
		t.Fatalf("the version replaced just now was removed at once, not after the grace: %v", err)
	}
	if _, err := os.Lstat(rec); err != nil {
		t.Fatalf("the record of the version replaced just now was dropped: %v", err)
	}
	checkTag(t, p, "old")
	q, ok, err := c.Get(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("Get after the sweep: %v %v", ok, err)
	}
	checkTag(t, q, "new")
}
