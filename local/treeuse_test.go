package local

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treetest"
)

// TestGetOfTreeMadeWhileWaitingIsAnAccess: a Get that waited on the key's
// lock while another process made the tree returns that tree, and that
// Get is a use of it: Prune keeps the tree for the grace period after it,
// however long ago the other process made it.
func TestGetOfTreeMadeWhileWaitingIsAnAccess(t *testing.T) {
	c := open(t, Options{Grace: time.Hour})
	ctx := t.Context()
	src := smallSrc(t, "a")
	s := putArchive(t, c, "k", src)
	vdir := filepath.Dir(s.Archive)
	longAgo := time.Now().Add(-2 * time.Hour)
	must(t, os.Chtimes(vdir, longAgo, longAgo))

	// Another process is making the tree: it holds the key's lock.
	unlock, err := c.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		path string
		ok   bool
		err  error
	}
	done := make(chan got, 1)
	go func() {
		var g got
		g.path, g.ok, g.err = c.Get(ctx, "k")
		done <- g
	}()
	// The Get's Lookup records its access (no tree yet) under the stripe
	// lock; once we hold that lock, the Get is past it, waiting for the
	// key's lock.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if fi, err := os.Stat(vdir); err == nil && fi.ModTime().After(longAgo.Add(time.Hour)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Get never looked the entry up")
		}
	}
	stripe, err := c.lockStripe(ctx, c.nameOf("k"))
	if err != nil {
		t.Fatal(err)
	}
	// The other process makes the tree, which was then last used long
	// ago: it held the key's lock for longer than the grace since.
	f, err := os.Open(s.Archive)
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(vdir, treeDir)
	must(t, os.Mkdir(tree, 0o755))
	if _, err := archive.Extract(ctx, f, tree, archive.ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	must(t, os.Chtimes(vdir, longAgo, longAgo))
	must(t, stripe.Unlock())
	unlock()

	g := <-done
	if g.err != nil || !g.ok || g.path != tree {
		t.Fatalf("Get = %q, %v, %v; want the tree %s", g.path, g.ok, g.err, tree)
	}
	// Over the byte limit by the tree: only a tree unused for the grace
	// may go, and this one was just returned.
	if _, err := c.Prune(ctx, 0, s.ArchiveSize); err != nil {
		t.Fatal(err)
	}
	if !hasTree(vdir) {
		t.Fatalf("Prune removed the tree Get returned a moment ago (grace %v)", c.Grace())
	}
	treetest.AssertEqual(t, src, g.path)
}
