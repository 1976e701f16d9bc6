package local

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache/policy"
)

// TestPruneKeepsTreesOfEntriesItKeeps: the bytes of an entry that
// another limit evicts anyway (MaxEntries, MaxAge) count for nothing
// when Prune picks the trees to drop: evicting it alone brings the cache
// within MaxBytes, so the tree of the entry that stays is kept.
func TestPruneKeepsTreesOfEntriesItKeeps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits func(maxBytes int64) policy.Limits
	}{
		{"max-entries", func(b int64) policy.Limits { return policy.Limits{MaxEntries: 1, MaxBytes: b} }},
		{"max-age", func(b int64) policy.Limits { return policy.Limits{MaxAge: 3 * time.Hour, MaxBytes: b} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, Options{Grace: time.Millisecond})
			ctx := t.Context()
			putArchive(t, c, "old", smallSrc(t, "old")) // never used: an archive alone
			kept := putArchive(t, c, "kept", smallSrc(t, "kept"))
			if _, ok, err := c.Get(ctx, "kept"); !ok || err != nil {
				t.Fatalf("Get kept: %v, %v", ok, err)
			}
			ageEntry(t, c, "old", 4*time.Hour)
			ageEntry(t, c, "kept", time.Hour)
			keptDir := filepath.Dir(kept.Archive)
			var evicted []string
			l := tc.limits(kept.ArchiveSize + kept.Entry.Size)
			l.OnEvict = func(it policy.Item) { evicted = append(evicted, it.Key) }
			n, err := c.PruneLimits(ctx, l)
			if err != nil || n != 1 || len(evicted) != 1 || evicted[0] != "old" {
				t.Fatalf("PruneLimits = %d, %v, evicted %q; want old evicted", n, err, evicted)
			}
			if !hasTree(keptDir) {
				t.Fatal("Prune dropped the tree of the entry it keeps, though evicting old alone brings the cache within its byte limit")
			}
		})
	}
}
