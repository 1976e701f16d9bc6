package tiered

import (
	"errors"
	"testing"

	"github.com/tiercache/tiercache"
)

// TestListAndStatsRemoteDown: the local tier never needs the remote.
// With the remote down, ListTiers and TierStats still return the local
// tier's entries and aggregates, with the remote's failure as a
// *RemoteError; List, which promises both tiers, fails.
func TestListAndStatsRemoteDown(t *testing.T) {
	f, c := newFaulty(t)
	for _, k := range []string{"a", "b"} {
		if _, err := c.Put(t.Context(), k, smallTree(t, k), ""); err != nil {
			t.Fatal(err)
		}
	}
	c.Wait()
	f.down.Store(true)

	locals, remotes, err := c.ListTiers(t.Context())
	if !IsRemote(err) || !errors.Is(err, errDown) {
		t.Fatalf("ListTiers with the remote down: err = %v, want the remote's failure as a RemoteError", err)
	}
	if len(locals) != 2 || locals[0].Tier != tiercache.TierLocal || remotes != nil {
		t.Fatalf("ListTiers with the remote down: locals %v, remotes %v; want the 2 local entries only", locals, remotes)
	}

	ts, err := c.TierStats(t.Context())
	if !IsRemote(err) || !errors.Is(err, errDown) {
		t.Fatalf("TierStats with the remote down: err = %v, want the remote's failure as a RemoteError", err)
	}
	if ts.Local.Entries != 2 || ts.Local.Bytes <= 0 || ts.Remote != nil {
		t.Fatalf("TierStats with the remote down = %+v, want the local tier's 2 entries and no remote", ts)
	}

	if _, err := c.List(t.Context()); !IsRemote(err) {
		t.Fatalf("List with the remote down: %v, want the remote's failure", err)
	}

	// Back up: both tiers again, no error.
	f.down.Store(false)
	ts, err = c.TierStats(t.Context())
	if err != nil || ts.Remote == nil || ts.Remote.Entries != 2 {
		t.Fatalf("TierStats with the remote up = %+v, %v", ts, err)
	}
}
