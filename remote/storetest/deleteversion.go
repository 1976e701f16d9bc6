package storetest

import (
	"testing"
	"time"

	"github.com/tiercache/tiercache/remote"
)

// testDeleteVersion: DeleteVersion deletes a key's entry only if it
// still holds the version given. Of the current version (as List gives
// it, its access time stale) it deletes the entry and reports it gone;
// of a version replaced since, or one differing in digest or size, it
// keeps the current one and reports it not gone; of a missing key it
// reports gone. A re-put of the same bytes is another version.
func (s *suite) testDeleteVersion(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	mustPut(t, st, remote.Meta{Key: "k/n"}, []byte("neighbour"))
	v1 := mustPut(t, st, remote.Meta{Key: "k", Description: "one"}, []byte("same bytes"))
	time.Sleep(step)
	mustPut(t, st, remote.Meta{Key: "k", Description: "two"}, []byte("same bytes"))
	metas, err := st.List(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	var v2 remote.Meta
	for _, m := range metas {
		if m.Key == "k" {
			v2 = m
		}
	}
	if v2.Description != "two" {
		t.Fatalf("List(%q) = %+v; want k's second version", "k", metas)
	}
	if v1.SameVersion(v2) {
		t.Fatalf("two puts of k share SHA-256, size and commit time %v; want distinct commit times", v2.Created)
	}
	time.Sleep(step)
	if err := st.Touch(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	otherDigest, otherSize := v2, v2
	otherDigest.SHA256 = sha([]byte("other bytes"))
	otherSize.ArchiveSize++
	for name, stale := range map[string]remote.Meta{"replaced": v1, "other digest": otherDigest, "other size": otherSize} {
		gone, err := st.DeleteVersion(ctx, "k", stale)
		if err != nil || gone {
			t.Errorf("DeleteVersion of a %s version: gone %v, %v; want not gone, no error", name, gone, err)
		}
		if back, m := mustRead(t, st, "k"); string(back) != "same bytes" || !sameMeta(m, v2) {
			t.Fatalf("after DeleteVersion of a %s version, k reads %q, %+v; want the current version %+v kept", name, back, m, v2)
		}
	}
	gone, err := st.DeleteVersion(ctx, "k", v2)
	if err != nil || !gone {
		t.Fatalf("DeleteVersion of the current version: gone %v, %v; want gone", gone, err)
	}
	mustMiss(t, st, "k")
	assertKeys(t, st, "k/n")
	if back, _ := mustRead(t, st, "k/n"); string(back) != "neighbour" {
		t.Errorf("neighbour reads %q after DeleteVersion", back)
	}
	if gone, err := st.DeleteVersion(ctx, "k", v2); err != nil || !gone {
		t.Errorf("DeleteVersion of a missing key: gone %v, %v; want gone", gone, err)
	}
	// The key is free for a new version.
	want := mustPut(t, st, remote.Meta{Key: "k", Description: "again"}, []byte("new"))
	if back, m := mustRead(t, st, "k"); string(back) != "new" || !sameMeta(m, want) {
		t.Errorf("put after DeleteVersion reads %q, %+v", back, m)
	}
}
