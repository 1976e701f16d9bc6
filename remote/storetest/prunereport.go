package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// testPruneReports: Prune reports to Limits.OnEvict exactly the entries
// it evicted, once each, least recently used first, under their stored
// keys (of any scope, and however long, whatever names the store gives
// them) with their tree bytes; nothing when it evicts nothing. Through a
// scope's view too, whose Prune is the store's.
func (s *suite) testPruneReports(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	long := strings.Repeat("/", tiercache.MaxKeyLen)
	keys := []string{"a", tiercache.ScopedKey("pr-1", "b"), long, "c", tiercache.ScopedKey("pr-1", "d"), "e"}
	for i, k := range keys {
		// Tree sizes differ from the archives' (10 bytes each).
		mustPut(t, st, remote.Meta{Key: k, Size: int64(100 * (i + 1))}, randBytes(uint64(i), 10))
		time.Sleep(step)
	}
	var got []policy.Item
	l := policy.Limits{OnEvict: func(it policy.Item) { got = append(got, it) }}
	prune := func(st remote.Store, maxEntries int, want ...string) {
		t.Helper()
		got = nil
		l.MaxEntries = maxEntries
		n, err := st.Prune(ctx, l)
		if err != nil || n != len(want) {
			t.Fatalf("Prune(%d entries) = %d, %v; want %d", maxEntries, n, err, len(want))
		}
		var reported []string
		for _, it := range got {
			reported = append(reported, it.Key)
			i := slices.Index(keys, it.Key)
			if i < 0 || it.Size != int64(100*(i+1)) {
				t.Errorf("Prune(%d entries) reported %q with %d bytes, want a key put, with its tree bytes", maxEntries, it.Key, it.Size)
			}
		}
		if !slices.Equal(reported, want) {
			t.Fatalf("Prune(%d entries) reported %s, want %s", maxEntries, quoteAll(reported), quoteAll(want))
		}
	}
	prune(st, len(keys))
	prune(st, 3, keys[:3]...)
	assertKeys(t, st, slices.Clone(keys[3:])...)
	// The view's Prune ranks every scope's entries, as the store's does.
	prune(inScope(t, st, "pr-1"), 1, keys[3:5]...)
	assertKeys(t, st, keys[5])
}

// quoteAll quotes keys for a message, each cut to 40 bytes.
func quoteAll(keys []string) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(k) > 40 {
			k = k[:40] + "…"
		}
		fmt.Fprintf(&b, "%q", k)
	}
	return "[" + b.String() + "]"
}
