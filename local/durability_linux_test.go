//go:build !tiercache_portable

package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// setBoot rewrites the boot ID recorded in the meta.json of the version
// holding tree, as if the entry had been written in another boot.
func setBoot(t *testing.T, tree, boot string) {
	t.Helper()
	path := filepath.Join(filepath.Dir(tree), metaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["unsynced_boot"] = boot
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUnflushedEntryFromEarlierBootIsDropped: an entry published before
// its data reached the disk must not be trusted after a crash, which a new
// boot ID reveals; in the same boot it is a normal entry. Linux only:
// elsewhere (and with tiercache_portable) no boot ID is read and every
// put flushes its data before publishing.
func TestUnflushedEntryFromEarlierBootIsDropped(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	p, err := c.Put(ctx, "unflushed", smallSrc(t, "a"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := recordedBoot(t, p); got == "" || got != bootID() {
		t.Fatalf("recorded boot %q, want this boot %q", got, bootID())
	}
	kept, err := c.Put(ctx, "flushed", smallSrc(t, "b"), "")
	if err != nil {
		t.Fatal(err)
	}
	setBoot(t, kept, "") // as if written with SyncData
	if _, ok, err := c.Get(ctx, "unflushed"); err != nil || !ok {
		t.Fatalf("same boot: Get = %v, %v; want a hit", ok, err)
	}

	setBoot(t, p, "a-boot-before-a-crash")
	if _, ok, err := c.Get(ctx, "unflushed"); err != nil || ok {
		t.Fatalf("after a new boot: Get = %v, %v; want a miss", ok, err)
	}
	es, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Key != "flushed" {
		t.Fatalf("List = %+v, want only the flushed entry", es)
	}
	if _, err := c.Prune(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := c.current(nameOf("unflushed")); err != nil || v != "" {
		t.Fatalf("after Prune the lost entry's pointer is %q (%v), want none", v, err)
	}
	if _, ok, err := c.Get(ctx, "flushed"); err != nil || !ok {
		t.Fatalf("flushed entry: Get = %v, %v; want a hit", ok, err)
	}
}

// TestTreeOfFlushedEntryIsFlushed: a tree made from the archive of an
// entry that was flushed (stored with SyncData) is flushed too, even by
// a cache that does not flush its own puts; one made from an entry
// written unflushed in this boot is not, since a crash loses it whole.
func TestTreeOfFlushedEntryIsFlushed(t *testing.T) {
	c := open(t, Options{})
	root := c.Root()
	syncing, err := Open(root, Options{SyncData: true})
	if err != nil {
		t.Fatal(err)
	}
	a := putArchive(t, syncing, "flushed", smallSrc(t, "a"))
	b := putArchive(t, c, "unflushed", smallSrc(t, "b"))
	if !c.flushTreeOf(a.meta) {
		t.Error("a tree of an entry stored with SyncData would be published unflushed")
	}
	if c.flushTreeOf(b.meta) {
		t.Error("a tree of an entry written unflushed in this boot would be flushed")
	}
	if !syncing.flushTreeOf(b.meta) {
		t.Error("a SyncData cache would publish a tree unflushed")
	}
}
