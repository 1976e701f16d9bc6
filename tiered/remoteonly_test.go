package tiered

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/policy"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestRemoteOnly: a Cache made with no local tier pushes and pulls
// straight through the remote, and every method that needs the local
// tier fails with ErrInvalidArgument instead of crashing.
func TestRemoteOnly(t *testing.T) {
	if _, err := New(nil, Options{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("New with neither tier: %v, want ErrInvalidArgument", err)
	}
	store := memstore.New()
	c, err := New(nil, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	if c.Local() != nil || !c.HasRemote() {
		t.Fatalf("remote-only cache: Local %v, HasRemote %v", c.Local(), c.HasRemote())
	}
	src := smallTree(t, "ro1")
	if res, err := c.Push(t.Context(), "deps-1", src, PushOptions{}); err != nil || !res.Uploaded || res.Path != "" {
		t.Fatalf("Push = %+v, %v", res, err)
	}
	dir := filepath.Join(t.TempDir(), "dst")
	h, ok, err := c.Pull(t.Context(), "deps-2", []string{"deps-"}, dir, PullOptions{})
	if err != nil || !ok || h.Key != "deps-1" || h.Path != dir || h.Tier != tiercache.TierRemote {
		t.Fatalf("Pull = %+v, %v, %v", h, ok, err)
	}
	treetest.AssertEqual(t, src, dir)
	c.Wait()

	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Get":        func() error { _, _, err := c.Get(ctx, "deps-1"); return err },
		"Restore":    func() error { _, _, err := c.Restore(ctx, "x", []string{"deps-"}); return err },
		"Put":        func() error { _, err := c.Put(ctx, "deps-3", src, ""); return err },
		"Invalidate": func() error { return c.Invalidate(ctx, "deps-1") },
		"Prune":      func() error { _, err := c.Prune(ctx, 1, 0); return err },
		"PruneTiers": func() error { _, err := c.PruneTiers(ctx, policy.Limits{}, policy.Limits{}); return err },
		"List":       func() error { _, err := c.List(ctx); return err },
		"Stats":      func() error { _, err := c.TierStats(ctx); return err },
		"Fsck":       func() error { _, err := c.Fsck(ctx, FsckOptions{}); return err },
	} {
		if err := call(); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s on a remote-only cache: %v, want ErrInvalidArgument", name, err)
		}
	}
	// Nothing of that reached the remote.
	if _, err := store.Stat(ctx, "deps-3"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Put on a remote-only cache stored deps-3 remotely: %v", err)
	}
	if _, err := store.Stat(ctx, "deps-1"); err != nil {
		t.Errorf("Invalidate on a remote-only cache removed deps-1 remotely: %v", err)
	}
}
