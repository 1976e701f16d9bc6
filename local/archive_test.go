package local

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/tiertest"
)

// putArchive stores src under key as an entry kept as an archive, the way
// a push does.
func putArchive(t *testing.T, c *Cache, key, src string) Stored {
	t.Helper()
	s, err := c.PutArchive(t.Context(), key, Info{Description: "d"}, false, func(ctx context.Context, w io.Writer, tree string) (archive.Result, error) {
		if tree != "" {
			t.Errorf("fill got tree %q without withTree", tree)
		}
		return archive.Write(ctx, w, src, archive.WriteOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// archiveBackend is the local tier storing every Put as an archive, the
// way pushes now store entries, so the Backend suite runs on such entries.
type archiveBackend struct{ *Cache }

func (b archiveBackend) Put(ctx context.Context, key, src, description string) (string, error) {
	if src == "" {
		return "", tiercache.ErrInvalidArgument
	}
	s, err := b.PutArchive(ctx, key, Info{Description: description}, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
		return archive.Write(ctx, w, src, archive.WriteOptions{})
	})
	if err != nil {
		return "", err
	}
	return b.Tree(ctx, s)
}

func TestConformanceArchives(t *testing.T) {
	tiertest.Run(t, func(t *testing.T) tiercache.Backend { return archiveBackend{open(t, Options{})} })
}

// TestArchiveEntry: an entry kept as an archive is found by Lookup
// without a tree; the first Get makes the tree from the archive, later
// ones return it; Entry.Stored counts what is on disk.
func TestArchiveEntry(t *testing.T) {
	c := open(t, Options{})
	src := srcDir(t)
	treetest.Fidelity(t, src, treetest.FidelityOptions{})
	s := putArchive(t, c, "k", src)
	if s.Tree != "" || s.Archive == "" || s.ArchiveSize == 0 || s.Entry.Stored != s.ArchiveSize {
		t.Fatalf("PutArchive = %+v", s)
	}
	l, ok, err := c.Lookup(t.Context(), "k")
	if err != nil || !ok || l.Tree != "" || l.Archive != s.Archive || l.SHA256 != s.SHA256 {
		t.Fatalf("Lookup = %+v, %v, %v", l, ok, err)
	}
	p, ok, err := c.Get(t.Context(), "k")
	if err != nil || !ok || p != filepath.Join(filepath.Dir(s.Archive), "tree") {
		t.Fatalf("Get = %q, %v, %v", p, ok, err)
	}
	treetest.AssertEqual(t, src, p)
	p2, ok, err := c.Get(t.Context(), "k")
	if err != nil || !ok || p2 != p {
		t.Fatalf("second Get = %q, %v, %v; want %q", p2, ok, err, p)
	}
	es, err := c.List(t.Context())
	if err != nil || len(es) != 1 || es[0].Stored != s.ArchiveSize+es[0].Size {
		t.Fatalf("List = %+v, %v; want Stored = archive + tree", es, err)
	}
	st, err := c.Stats(t.Context())
	if err != nil || st.Stored != es[0].Stored || st.Bytes != es[0].Size {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}

// TestPutArchiveChecksFill: a fill whose reported size or digest does not
// match what it wrote commits nothing.
func TestPutArchiveChecksFill(t *testing.T) {
	c := open(t, Options{})
	src := smallSrc(t, "a")
	cases := map[string]func(archive.Result) archive.Result{
		"size":   func(r archive.Result) archive.Result { r.ArchiveSize++; return r },
		"digest": func(r archive.Result) archive.Result { r.SHA256 = "xyz"; return r },
		"shape":  func(r archive.Result) archive.Result { r.Files = -1; return r },
	}
	for name, spoil := range cases {
		_, err := c.PutArchive(t.Context(), "k", Info{}, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
			r, err := archive.Write(ctx, w, src, archive.WriteOptions{})
			return spoil(r), err
		})
		if !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: PutArchive error %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, ok, err := c.Lookup(t.Context(), "k"); ok || err != nil {
		t.Fatalf("a failed PutArchive left an entry: %v, %v", ok, err)
	}
	if names := names(t, filepath.Join(c.Root(), "data")); len(names) != 0 {
		t.Fatalf("data/ holds %v", names)
	}
}

// TestDamagedArchiveDropped: an archive damaged on disk fails its recorded
// SHA-256 when Get makes the tree; Get drops the entry and misses, and
// nothing of the tree is left.
func TestDamagedArchiveDropped(t *testing.T) {
	c := open(t, Options{})
	s := putArchive(t, c, "k", smallSrc(t, "a"))
	b, err := os.ReadFile(s.Archive)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.Chmod(s.Archive, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Archive, b, 0o444); err != nil {
		t.Fatal(err)
	}
	p, ok, err := c.Get(t.Context(), "k")
	if ok || !errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), s.Archive) {
		t.Fatalf("Get of a damaged archive = %q, %v, %v; want a miss with ErrIntegrity naming the archive", p, ok, err)
	}
	if strings.Count(err.Error(), tiercache.ErrIntegrity.Error()) != 1 {
		t.Errorf("the error says %q more than once: %v", tiercache.ErrIntegrity, err)
	}
	if p, ok, err := c.Get(t.Context(), "k"); ok || err != nil {
		t.Fatalf("Get once the damaged entry is dropped = %q, %v, %v; want a plain miss", p, ok, err)
	}
	if _, ok, err := c.Lookup(t.Context(), "k"); ok || err != nil {
		t.Fatalf("the damaged entry is still there: %v, %v", ok, err)
	}
	if hasTree(filepath.Dir(s.Archive)) {
		t.Fatal("a tree was made from a damaged archive")
	}
}

// TestTreeMadeOnce: goroutines asking Get for an entry kept as an archive
// all get the one tree, made once.
func TestTreeMadeOnce(t *testing.T) {
	c := open(t, Options{})
	src := smallSrc(t, "a")
	putArchive(t, c, "k", src)
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Go(func() {
			// A Cache per goroutine, as separate processes would have.
			ci, err := Open(c.Root(), Options{})
			if err != nil {
				errs[i] = err
				return
			}
			var ok bool
			paths[i], ok, errs[i] = ci.Get(t.Context(), "k")
			if !ok && errs[i] == nil {
				errs[i] = errors.New("miss")
			}
		})
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("Get %d = %q, %v; want %q", i, paths[i], errs[i], paths[0])
		}
	}
	treetest.AssertEqual(t, src, paths[0])
	// Only the one tree: no second extraction left anything behind.
	if got := names(t, filepath.Join(c.Root(), "staging")); len(got) != 0 {
		t.Fatalf("staging holds %v", got)
	}
}

// TestPruneDropsTreesFirst: over the byte limit, Prune removes trees made
// beside archives (least recently used first, none used within the
// grace) before evicting any entry; the archives still restore.
func TestPruneDropsTreesFirst(t *testing.T) {
	c := open(t, Options{Grace: time.Millisecond})
	a := putArchive(t, c, "a", smallSrc(t, "a"))
	b := putArchive(t, c, "b", smallSrc(t, "b"))
	for _, k := range []string{"a", "b"} {
		if _, ok, err := c.Get(t.Context(), k); !ok || err != nil {
			t.Fatalf("Get %s: %v, %v", k, ok, err)
		}
	}
	time.Sleep(5 * time.Millisecond) // past the grace
	n, err := c.Prune(t.Context(), 0, a.ArchiveSize+b.ArchiveSize)
	if err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v; want the trees dropped and no entry evicted", n, err)
	}
	for _, k := range []string{"a", "b"} {
		s, ok, err := c.Lookup(t.Context(), k)
		if err != nil || !ok || s.Tree != "" {
			t.Fatalf("after Prune, %s = %+v, %v, %v; want the archive alone", k, s, ok, err)
		}
	}
	// Trees used within the grace stay: over the limit, entries go.
	c2 := reopen(t, c, Options{})
	if _, ok, err := c2.Get(t.Context(), "b"); !ok || err != nil {
		t.Fatalf("Get b: %v, %v", ok, err)
	}
	n, err = c2.Prune(t.Context(), 0, b.ArchiveSize+b.Entry.Size)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want one entry evicted", n, err)
	}
	if s, ok, _ := c2.Lookup(t.Context(), "b"); !ok || s.Tree == "" {
		t.Fatalf("b = %+v, %v; want it kept with its young tree", s, ok)
	}
	if _, ok, _ := c2.Lookup(t.Context(), "a"); ok {
		t.Fatal("a, the least recently used, was not evicted")
	}
}

// TestLayout1Upgraded: a cache made when every entry was a tree opens,
// keeps its entries, and is marked with the new layout, which a
// tiercache knowing only the old one refuses.
func TestLayout1Upgraded(t *testing.T) {
	c := open(t, Options{})
	src := smallSrc(t, "a")
	if _, err := c.Put(t.Context(), "old", src, ""); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(c.Root(), markerName)
	if err := os.WriteFile(marker, []byte(markerLayout1), 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := reopen(t, c, Options{})
	if b, err := os.ReadFile(marker); err != nil || string(b) != markerContent {
		t.Fatalf("marker after Open: %q, %v", b, err)
	}
	p, ok, err := c2.Get(t.Context(), "old")
	if err != nil || !ok {
		t.Fatalf("Get of a layout-1 entry: %v, %v", ok, err)
	}
	treetest.AssertEqual(t, src, p)
}

// TestDropTreeKeepsLastAccess: Prune dropping the tree made beside an
// archive is no use of the entry. (Renaming tree/ out of the version
// directory sets its mtime, the entry's last access: the least recently
// used entry would become the most recent, and the next Prune would evict
// another.)
func TestDropTreeKeepsLastAccess(t *testing.T) {
	c := open(t, Options{Grace: time.Millisecond})
	a := putArchive(t, c, "a", smallSrc(t, "a"))
	b := putArchive(t, c, "b", smallSrc(t, "b"))
	if _, ok, err := c.Get(t.Context(), "a"); !ok || err != nil {
		t.Fatalf("Get a: %v, %v", ok, err)
	}
	now := time.Now()
	aDir, bDir := filepath.Dir(a.Archive), filepath.Dir(b.Archive)
	// a used two hours ago, b one hour ago.
	must(t, os.Chtimes(aDir, now.Add(-2*time.Hour), now.Add(-2*time.Hour)))
	must(t, os.Chtimes(bDir, now.Add(-time.Hour), now.Add(-time.Hour)))
	// Over the byte limit only by a's tree: the tree goes, no entry.
	n, err := c.Prune(t.Context(), 0, a.ArchiveSize+b.ArchiveSize)
	if err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v; want a's tree dropped and nothing evicted", n, err)
	}
	if hasTree(aDir) {
		t.Fatal("a's tree was not dropped")
	}
	if fi, err := os.Stat(aDir); err != nil || time.Since(fi.ModTime()) < time.Hour {
		t.Errorf("dropping a's tree moved its last access to %v; want it two hours ago", fi.ModTime())
	}
	// One entry may stay: a, the least recently used, must go.
	if n, err := c.Prune(t.Context(), 1, 0); err != nil || n != 1 {
		t.Fatalf("Prune(1) = %d, %v", n, err)
	}
	if got := listKeys(t, c); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after Prune(1) the cache holds %v; want [b] (a was least recently used)", got)
	}
}

// TestMissingArchiveOfCurrentVersion: an archive gone from disk while
// its version is still current is damage, like a flipped byte: Get drops
// the entry (else List, Stats and Prune would count it forever), and Tree
// does not claim the version was replaced.
func TestMissingArchiveOfCurrentVersion(t *testing.T) {
	c := open(t, Options{})
	s := putArchive(t, c, "k", smallSrc(t, "a"))
	must(t, os.Remove(s.Archive))
	if _, err := c.Tree(t.Context(), s); err == nil || strings.Contains(err.Error(), "replaced and removed meanwhile") {
		t.Errorf("Tree of the current version with its archive missing: %v; want an integrity error, not a replacement", err)
	}
	if p, ok, err := c.Get(t.Context(), "k"); ok || err != nil {
		t.Fatalf("Get = %q, %v, %v; want a miss", p, ok, err)
	}
	if _, ok, err := c.Lookup(t.Context(), "k"); ok || err != nil {
		t.Fatalf("the entry whose archive is missing is still there after Get: %v, %v", ok, err)
	}
}

// TestMarkLinkedTwice: a tree linked out again (every later --link pull
// of the version) marks it again without error, though the mark is
// read-only (which only root, not Windows, would write anyway), and
// Lookup reports it Linked.
func TestMarkLinkedTwice(t *testing.T) {
	c := open(t, Options{})
	putArchive(t, c, "k", smallSrc(t, "a"))
	if _, ok, err := c.Get(t.Context(), "k"); err != nil || !ok {
		t.Fatalf("Get: %v, %v", ok, err)
	}
	for i := range 2 {
		s, ok, err := c.Lookup(t.Context(), "k")
		if err != nil || !ok || s.Tree == "" || s.Linked != (i > 0) {
			t.Fatalf("Lookup %d: %+v, %v, %v; want a tree, linked after the first mark", i, s, ok, err)
		}
		if err := c.MarkLinked(s); err != nil {
			t.Fatalf("mark %d: %v", i, err)
		}
	}
}
