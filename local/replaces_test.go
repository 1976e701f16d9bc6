package local

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache/archive"
)

// TestPutArchiveReplaces: a write with Info.Replaces becomes current only
// if key still has the version Current returned. Overtaken by another
// process's write, it is published as replaced: readable for the grace,
// then swept, never current.
func TestPutArchiveReplaces(t *testing.T) {
	const grace = 2 * time.Second
	c := open(t, Options{Grace: grace})
	other := reopen(t, c, Options{Grace: grace})
	ctx := t.Context()
	put := func(c *Cache, tag string, was Version) Stored {
		t.Helper()
		src := smallSrc(t, tag)
		s, err := c.PutArchive(ctx, "k", Info{Description: tag, Replaces: was}, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
			return archive.Write(ctx, w, src, archive.WriteOptions{})
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	current := func(want string) {
		t.Helper()
		p, ok, err := c.Get(ctx, "k")
		if err != nil || !ok {
			t.Fatalf("Get: %v %v", ok, err)
		}
		checkTag(t, p, want)
	}

	was, err := c.Current("k")
	if err != nil {
		t.Fatal(err)
	}
	put(other, "pushed", Version{})
	old := put(c, "downloaded", was)
	current("pushed")
	tree, err := c.Tree(ctx, old)
	if err != nil {
		t.Fatalf("the overtaken version's tree: %v", err)
	}
	checkTag(t, tree, "downloaded")
	if e, err := c.EntryAt(tree); err != nil || e.Description != "downloaded" {
		t.Fatalf("EntryAt(overtaken) = %+v, %v", e, err)
	}

	// Not overtaken: it replaces the version it names.
	if was, err = c.Current("k"); err != nil {
		t.Fatal(err)
	}
	put(c, "fresh", was)
	current("fresh")

	time.Sleep(grace + 50*time.Millisecond)
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Dir(old.Archive)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the overtaken version is still there after its grace: %v", err)
	}
	if n := names(t, c.dataDir); len(n) != 1 {
		t.Errorf("data holds %q, want the current version only", n)
	}
	if n := names(t, c.retiredDir); len(n) != 0 {
		t.Errorf("retired records %q left after the sweep", n)
	}
	current("fresh")
}
