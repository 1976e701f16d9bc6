package local

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tiercache/tiercache/policy"
)

// ageEntry moves key's current version back in time by d: its creation
// and its last access, as if it had been stored d earlier and not used
// since.
func ageEntry(t *testing.T, c *Cache, key string, d time.Duration) {
	t.Helper()
	version, err := c.current(nameOf(key))
	if err != nil || version == "" {
		t.Fatalf("no version of %q: %v", key, err)
	}
	vdir := filepath.Join(c.dataDir, version)
	m, err := readMeta(filepath.Join(vdir, metaFile))
	if err != nil {
		t.Fatal(err)
	}
	m.Created = m.Created.Add(-d)
	if err := writeVersionFiles(vdir, m); err != nil {
		t.Fatal(err)
	}
}

func listKeys(t *testing.T, c *Cache) []string {
	t.Helper()
	es, err := c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range es {
		keys = append(keys, e.Key)
	}
	slices.Sort(keys)
	return keys
}

// TestPruneMaxAge: the entries not used for longer than MaxAge go, those
// used since stay, a Peek is not a use, and the other limits then apply
// to what is left.
func TestPruneMaxAge(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	for _, k := range []string{"old", "used", "new"} {
		if _, err := c.Put(ctx, k, smallSrc(t, k), ""); err != nil {
			t.Fatal(err)
		}
	}
	const week = 7 * 24 * time.Hour
	ageEntry(t, c, "old", week+time.Hour)
	ageEntry(t, c, "used", week+time.Hour)
	if _, ok, err := c.Lookup(ctx, "used"); err != nil || !ok {
		t.Fatalf("Lookup(used) = %v, %v", ok, err)
	}
	if _, ok, err := c.Peek(ctx, "old"); err != nil || !ok {
		t.Fatalf("Peek(old) = %v, %v", ok, err)
	}
	if n, err := c.PruneLimits(ctx, policy.Limits{MaxAge: 2 * week}); err != nil || n != 0 {
		t.Fatalf("PruneLimits(2 weeks) = %d, %v; want 0", n, err)
	}
	if n, err := c.PruneLimits(ctx, policy.Limits{MaxAge: week}); err != nil || n != 1 {
		t.Fatalf("PruneLimits(1 week) = %d, %v; want 1", n, err)
	}
	if got := listKeys(t, c); !slices.Equal(got, []string{"new", "used"}) {
		t.Fatalf("after the age limit: %q, want new and used", got)
	}
	// Combined: the age limit evicts nothing more, the count limit the
	// least recently used of the rest.
	ageEntry(t, c, "new", time.Hour)
	if n, err := c.PruneLimits(ctx, policy.Limits{MaxAge: week, MaxEntries: 1}); err != nil || n != 1 {
		t.Fatalf("PruneLimits(1 week, 1 entry) = %d, %v; want 1", n, err)
	}
	if got := listKeys(t, c); !slices.Equal(got, []string{"used"}) {
		t.Fatalf("after both limits: %q, want used", got)
	}
}
