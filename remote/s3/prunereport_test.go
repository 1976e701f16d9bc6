package s3

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// TestPruneReportsEvictionsOnly: Prune reports to OnEvict the entries it
// evicted by the limits, least recently used first, and not the garbage
// it collects on the way; an evicted entry of a long key whose manifest
// does not parse is reported with Key "", as its key is unknown.
func TestPruneReportsEvictionsOnly(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	long := stemFor(strings.Repeat("/", 512)) // a fallback stem
	e.putRaw(t, "ci/"+manifestsDir+long+manifestSuffix, []byte("{not json"))
	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	for _, k := range []string{"old", "kept"} {
		if _, err := s.Put(bg, remote.Meta{Key: k, Size: 7}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	const id = "0000000000000001-0000000000000001-0000000000000005.tar.zst"
	garbage := []string{"ci/" + dataDir + "nokey/" + id, "ci/" + accessDir + "gone"}
	for _, name := range garbage {
		e.putRaw(t, name, nil)
	}
	time.Sleep(1100 * time.Millisecond)

	var got []policy.Item
	n, err := s.Prune(bg, policy.Limits{MaxEntries: 1, OnEvict: func(it policy.Item) { got = append(got, it) }})
	if err != nil || n != 2 {
		t.Fatalf("Prune(1 entry) = %d, %v; want 2", n, err)
	}
	if len(got) != 2 || got[0].Key != "" || got[1].Key != "old" || got[1].Size != 7 {
		t.Errorf("Prune(1 entry) reported %+v; want the unreadable entry (key \"\"), then old with 7 bytes", got)
	}
	left := e.objects(t, "")
	for _, name := range garbage {
		if slices.Contains(left, name) {
			t.Errorf("garbage %q not collected", name)
		}
	}
	assertKeys(t, s, "kept")
}
