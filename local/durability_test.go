package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
)

func recordedBoot(t *testing.T, tree string) string {
	t.Helper()
	m, err := readMeta(filepath.Join(filepath.Dir(tree), metaFile))
	if err != nil {
		t.Fatal(err)
	}
	return m.UnsyncedBoot
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
