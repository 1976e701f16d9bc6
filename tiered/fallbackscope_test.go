package tiered

import (
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestFallbackHitNamesScope: after the remote failed, an entry the
// local tier alone supplies is still reported in the scope it was found
// in (Hit.Scope), by Pull, Restore and a lookup; and the record of the
// pull, which chooses the next push's base, names that scope too.
func TestFallbackHitNamesScope(t *testing.T) {
	const main = "refs/heads/main"
	f := &faultyStore{Store: memstore.New()}
	mainC, err := New(newLocal(t), Options{Remote: f, Scope: main})
	if err != nil {
		t.Fatal(err)
	}
	push(t, mainC, "deps-1", "main-deps-1")
	pr, err := New(newLocal(t), Options{Remote: f, Scope: "pr-1", ReadScopes: []string{main}})
	if err != nil {
		t.Fatal(err)
	}
	// pr's local tier now keeps main's deps-1.
	if h, ok, err := pr.Pull(t.Context(), "deps-1", nil, filepath.Join(t.TempDir(), "warm"), PullOptions{}); err != nil || !ok || h.Scope != main {
		t.Fatalf("pull of main's deps-1: %+v, %v, %v", h, ok, err)
	}
	f.down.Store(true)
	for _, how := range []string{"pull", "lookup", "restore"} {
		var h Hit
		var ok bool
		paths := []string{filepath.Join(t.TempDir(), "d")}
		switch how {
		case "pull", "lookup":
			h, ok, err = pr.PullPaths(t.Context(), "deps-2", []string{"deps-"}, paths, PullOptions{LookupOnly: how == "lookup"})
		case "restore":
			h, ok, err = pr.Restore(t.Context(), "deps-2", []string{"deps-"})
		}
		if err != nil || !ok || h.Key != "deps-1" || !IsRemote(h.RemoteErr) {
			t.Fatalf("%s with the remote down: %+v, %v, %v; want main's deps-1 from the local tier", how, h, ok, err)
		}
		if h.Scope != main {
			t.Errorf("%s with the remote down: the hit is reported in scope %q, want %q", how, h.Scope, main)
		}
		if how == "pull" {
			if scope, k, ok, err := pr.Local().LastPull(paths); err != nil || !ok || scope != main || k != "deps-1" {
				t.Errorf("the pull was recorded as %q in scope %q (%v, %v); want deps-1 in %q", k, scope, ok, err, main)
			}
		}
	}
}
