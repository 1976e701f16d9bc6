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
// straight through the remote, lists, removes and prunes the remote with
// an empty local tier, and every method that needs the local tier fails
// with ErrInvalidArgument instead of crashing.
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
		"Get":     func() error { _, _, err := c.Get(ctx, "deps-1"); return err },
		"Restore": func() error { _, _, err := c.Restore(ctx, "x", []string{"deps-"}); return err },
		"Put":     func() error { _, err := c.Put(ctx, "deps-3", src, ""); return err },
		"Fsck":    func() error { _, err := c.Fsck(ctx, FsckOptions{}); return err },
	} {
		if err := call(); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s on a remote-only cache: %v, want ErrInvalidArgument", name, err)
		}
	}
	// Nothing of that reached the remote.
	if _, err := store.Stat(ctx, "deps-3"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Put on a remote-only cache stored deps-3 remotely: %v", err)
	}

	// The local tier reads as empty; the remote is listed, pruned and
	// invalidated.
	if _, err := c.Push(ctx, "deps-4", smallTree(t, "ro4"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if locals, remotes, err := c.ListTiers(ctx); err != nil || len(locals) != 0 || len(remotes) != 2 {
		t.Errorf("ListTiers = %v, %v, %v; want no local and 2 remote entries", locals, remotes, err)
	}
	if st, err := c.TierStats(ctx); err != nil || st.Local.Entries != 0 || st.Remote == nil || st.Remote.Entries != 2 {
		t.Errorf("TierStats = %+v, %v", st, err)
	}
	if res, err := c.PruneTiers(ctx, policy.Limits{MaxEntries: 1}, policy.Limits{MaxEntries: 1}); err != nil || res.Local != 0 || res.Remote != 1 {
		t.Errorf("PruneTiers = %+v, %v; want 1 remote entry evicted", res, err)
	}
	if res, err := c.PruneScope(ctx, policy.Limits{MaxEntries: 1}, policy.Limits{}); err != nil || res.Local != 0 {
		t.Errorf("PruneScope with local limits = %+v, %v", res, err)
	}
	es, err := c.List(ctx)
	if err != nil || len(es) != 1 {
		t.Fatalf("List = %v, %v; want the entry left", es, err)
	}
	if err := c.Invalidate(ctx, es[0].Key); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Stat(ctx, es[0].Key); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Invalidate on a remote-only cache left %q remotely: %v", es[0].Key, err)
	}
	// The memory store cannot check itself (the CLI's tests check S3).
	if _, err := c.Fsck(ctx, FsckOptions{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("Fsck over a store that cannot check itself: %v, want ErrInvalidArgument", err)
	}
}
