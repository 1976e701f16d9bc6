package tiered

import (
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
)

// TestPruneScopeEvictsListedVersion: PruneScope evicts from the local
// tier only the version it listed. A push of the victim committed
// between the listing and the eviction stays, and an entry invalidated
// meanwhile is not reported as evicted.
func TestPruneScopeEvictsListedVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		meddle  func(t *testing.T, c *Cache)
		wantTag string // "" for a miss
	}{
		{"pushed meanwhile", func(t *testing.T, c *Cache) { push(t, c, "a", "new-a") }, "new-a"},
		{"invalidated meanwhile", func(t *testing.T, c *Cache) {
			if err := c.local.Invalidate(t.Context(), "a"); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTiered(t, nil, Options{Scope: "pr"})
			push(t, c, "a", "old-a")
			time.Sleep(10 * time.Millisecond)
			push(t, c, "b", "b")
			meddled := false
			testHookPruneListed = func(tier tiercache.Tier) {
				if tier == tiercache.TierLocal && !meddled {
					meddled = true
					tc.meddle(t, c)
				}
			}
			t.Cleanup(func() { testHookPruneListed = nil })
			var hooked []string
			res, err := c.PruneScope(t.Context(), policy.Limits{MaxEntries: 1, OnEvict: func(it policy.Item) { hooked = append(hooked, it.Key) }}, policy.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !meddled {
				t.Fatal("the hook did not run between the listing and the eviction")
			}
			if res.Local != 0 || len(res.Evicted) != 0 || len(hooked) != 0 {
				t.Errorf("PruneScope = %+v, OnEvict got %q; want nothing evicted, the listed version of a being gone already", res, hooked)
			}
			if _, tag, ok := pullTag(t, c, "a", nil, PullOptions{}); tag != tc.wantTag {
				t.Errorf("after the prune, a: hit %v, tree %q; want tree %q", ok, tag, tc.wantTag)
			}
			if _, tag, ok := pullTag(t, c, "b", nil, PullOptions{}); !ok || tag != "b" {
				t.Errorf("after the prune, b: hit %v, tree %q; want it kept", ok, tag)
			}
		})
	}
}
