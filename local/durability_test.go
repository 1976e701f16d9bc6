package local

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
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

func recordedBoot(t *testing.T, tree string) string {
	t.Helper()
	m, err := readMeta(filepath.Join(filepath.Dir(tree), metaFile))
	if err != nil {
		t.Fatal(err)
	}
	return m.UnsyncedBoot
}

// TestUnflushedEntryFromEarlierBootIsDropped: an entry published before
// its data reached the disk must not be trusted after a crash, which a new
// boot ID reveals; in the same boot it is a normal entry.
func TestUnflushedEntryFromEarlierBootIsDropped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("the deferred flush is Linux-only; this test must run on Linux")
	}
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

func TestSyncDataRecordsNoBoot(t *testing.T) {
	for _, opts := range []Options{{SyncData: true}, {NoSync: true}} {
		c := open(t, opts)
		p, err := c.Put(t.Context(), "k", smallSrc(t, "a"), "")
		if err != nil {
			t.Fatal(err)
		}
		if got := recordedBoot(t, p); got != "" {
			t.Errorf("%+v: recorded boot %q, want none", opts, got)
		}
	}
}

func TestPutFuncRecordsGivenShape(t *testing.T) {
	c := open(t, Options{NoSync: true})
	p, err := c.PutFunc(t.Context(), "k", "d", func(_ context.Context, dir string) (tiercache.Shape, error) {
		return tiercache.Shape{Size: 5, Files: 1}, os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.EntryAt(p)
	if err != nil || e.Size != 5 || e.Files != 1 {
		t.Fatalf("EntryAt = %+v, %v; want 1 file of 5 bytes", e, err)
	}
	_, err = c.PutFunc(t.Context(), "bad", "", func(context.Context, string) (tiercache.Shape, error) { return tiercache.Shape{Size: -1}, nil })
	if !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("negative size: err = %v, want ErrInvalidArgument", err)
	}
	boom := errors.New("boom")
	_, err = c.PutFunc(t.Context(), "failed", "", func(context.Context, string) (tiercache.Shape, error) { return tiercache.Shape{}, boom })
	if !errors.Is(err, boom) {
		t.Errorf("failing fill: err = %v", err)
	}
	for _, k := range []string{"bad", "failed"} {
		if _, ok := lookup(t, c, k); ok {
			t.Errorf("%q was committed", k)
		}
	}
}

// TestKeepTrash: with KeepTrash, sweeps move what they remove to trash
// and stop there; EmptyTrash deletes it.
func TestKeepTrash(t *testing.T) {
	c := open(t, Options{NoSync: true, KeepTrash: true, Grace: time.Millisecond})
	ctx := t.Context()
	for _, tag := range []string{"a", "b"} {
		if _, err := c.Put(ctx, "k", smallSrc(t, tag), ""); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond) // past the grace of the replaced version
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.HasTrash() {
		t.Fatalf("trash empty after a KeepTrash sweep of a replaced version: %q", names(t, c.trashDir))
	}
	if err := c.EmptyTrash(ctx); err != nil {
		t.Fatal(err)
	}
	if c.HasTrash() {
		t.Fatalf("trash after EmptyTrash: %q", names(t, c.trashDir))
	}
	if _, ok, err := c.Get(ctx, "k"); err != nil || !ok {
		t.Fatalf("the current version: %v, %v", ok, err)
	}
}
