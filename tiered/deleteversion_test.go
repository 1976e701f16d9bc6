package tiered

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPruneScopeKeepsRemoteVersionPushedMeanwhile: PruneScope evicts
// from the remote only the version it listed. A push of the victim
// committed between the listing and the eviction stays, and is not
// reported as evicted.
func TestPruneScopeKeepsRemoteVersionPushedMeanwhile(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{Scope: "pr"})
	push(t, c, "a", "old-a")
	time.Sleep(10 * time.Millisecond)
	push(t, c, "b", "b")
	meddled := false
	testHookPruneListed = func(tier tiercache.Tier) {
		if tier == tiercache.TierRemote && !meddled {
			meddled = true
			push(t, c, "a", "new-a")
		}
	}
	t.Cleanup(func() { testHookPruneListed = nil })
	var hooked []string
	res, err := c.PruneScope(t.Context(), policy.Limits{}, policy.Limits{MaxEntries: 1, OnEvict: func(it policy.Item) { hooked = append(hooked, it.Key) }})
	if err != nil {
		t.Fatal(err)
	}
	if !meddled {
		t.Fatal("the hook did not run between the remote listing and the eviction")
	}
	if res.Remote != 0 || len(res.Evicted) != 0 || len(hooked) != 0 {
		t.Errorf("PruneScope = %+v, OnEvict got %q; want nothing evicted, the listed version of a being replaced already", res, hooked)
	}
	// A fresh machine reads the remote.
	fresh := newTiered(t, store, Options{Scope: "pr"})
	for key, want := range map[string]string{"a": "new-a", "b": "b"} {
		if _, tag, ok := pullTag(t, fresh, key, nil, PullOptions{}); !ok || tag != want {
			t.Errorf("after the prune, remote %s: hit %v, tree %q; want tree %q", key, ok, tag, want)
		}
	}
}

// racingRemovalStore pushes a new version of the key once the pull that
// refuses the damaged one has re-read the key (Stat) or is about to
// remove it: between the pull's judgement and the removal.
type racingRemovalStore struct {
	*memstore.Store
	opened bool
	race   func()
}

func (s *racingRemovalStore) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	s.opened = true
	return s.Store.Open(ctx, key)
}

func (s *racingRemovalStore) fire() {
	if s.opened && s.race != nil {
		s.race()
		s.race = nil
	}
}

func (s *racingRemovalStore) Stat(ctx context.Context, key string) (remote.Meta, error) {
	m, err := s.Store.Stat(ctx, key)
	s.fire()
	return m, err
}

func (s *racingRemovalStore) DeleteVersion(ctx context.Context, key string, v remote.Meta) (bool, error) {
	s.fire()
	return s.Store.DeleteVersion(ctx, key, v)
}

// TestRefusedEntryRePushedDuringRemovalKept: a pull refusing a damaged
// remote version removes that version only: a push committed while the
// removal runs keeps its new version.
func TestRefusedEntryRePushedDuringRemovalKept(t *testing.T) {
	store := memstore.New()
	w := newTiered(t, store, Options{})
	if _, err := w.Push(t.Context(), "k", smallTree(t, "old"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	store.Corrupt("k", damages["flipped byte"])
	src := smallTree(t, "new")
	rs := &racingRemovalStore{Store: store, race: func() {
		if _, err := w.Push(t.Context(), "k", src, PushOptions{}); err != nil {
			t.Error(err)
		}
	}}
	c := newTiered(t, nil, Options{Remote: rs})
	h, ok, err := c.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
	if ok || err != nil || len(h.Refused) != 1 {
		t.Fatalf("pull: ok=%v err=%v refused=%v; want the damaged version refused", ok, err, h.Refused)
	}
	if rs.race != nil {
		t.Fatal("the push did not run during the removal")
	}
	var ce *CorruptError
	if !errors.As(h.Refused[0], &ce) || ce.Removed || ce.Kept == nil {
		t.Errorf("refusal %v: want a *CorruptError that removed nothing", h.Refused[0])
	}
	dir := filepath.Join(t.TempDir(), "next")
	if _, ok, err := newTiered(t, store, Options{}).Pull(t.Context(), "k", nil, dir, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull of the version pushed during the removal: ok=%v err=%v; want a hit", ok, err)
	}
	treetest.AssertEqual(t, src, dir)
}
