package s3

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// readManifestOf returns key's manifest as stored.
func readManifestOf(t *testing.T, s *Store, key string) manifest {
	t.Helper()
	n, err := s.namesFor(key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.readManifest(bg, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// editManifest rewrites key's manifest with edit applied: the tests use
// it to move replacement times, which only the passage of time moves
// otherwise.
func editManifest(t *testing.T, e *env, s *Store, key string, edit func(*manifest)) {
	t.Helper()
	m := readManifestOf(t, s, key)
	edit(&m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.namesFor(key)
	e.putRaw(t, n.manifest, b)
}

// TestReaderFinishesReplacedVersion: a reader that opened a version keeps
// reading it to the end after a Put replaced the key, including ranges
// it requests only after the replacement, and a new reader gets the new
// version.
func TestReaderFinishesReplacedVersion(t *testing.T) {
	e := newEnv(t)
	// One range ahead: most of the old object is requested after the Put.
	s := e.store(t, func(c *Config) { c.Concurrency = 1 })
	v1, v2 := randBytes(21, 6*MinPartSize), randBytes(22, 1000)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	rc, meta, err := s.Open(bg, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v2)); err != nil {
		t.Fatal(err)
	}
	e.rec.reset()
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading the replaced version after the Put: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, v1) || meta.SHA256 != sha(v1) {
		t.Fatalf("the reader got %d bytes that are not the version it opened", len(got))
	}
	if gets := e.rec.requests(func(r request) bool { return r.method == "GET" && r.isData() }); len(gets) < 3 {
		t.Fatalf("%d data GETs after the Put, want the ranges left (the test must read after the replacement)", len(gets))
	}
	if back, err := readAll(t, s, "k"); err != nil || !bytes.Equal(back, v2) {
		t.Fatalf("a new reader: %v, want the new version", err)
	}
}

// TestReplacedDataKeptForGrace: Prune and Check judge a replaced data
// object by when it was replaced, not when it was uploaded. With a 1 ns
// grace and an upload a second old, an object replaced "after the
// cutoff" (a replacement time ahead of the server's clock: the only time
// within a 1 ns grace) is kept and not reported; once its replacement
// time is past the cutoff, Check reports it and Prune collects it.
func TestReplacedDataKeptForGrace(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	v2 := []byte("version two")
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("version one")); err != nil {
		t.Fatal(err)
	}
	id1 := readManifestOf(t, s, "k").Data
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v2)); err != nil {
		t.Fatal(err)
	}
	replacedAt := readManifestOf(t, s, "k").Replaced[0].At
	n, _ := s.namesFor("k")
	old := n.data(id1)
	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution: the upload is now older than the cutoff

	editManifest(t, e, s, "k", func(m *manifest) { m.Replaced[0].At = time.Now().Add(time.Hour) })
	if r, err := s.Check(bg, remote.CheckOptions{}); err != nil || r.Entries != 1 || len(r.Problems) != 0 {
		t.Fatalf("Check with a version in its grace: %+v, %v; want 1 entry, no problem", r, err)
	}
	if n, err := s.Prune(bg, policy.Limits{}); err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if objs := e.objects(t, "ci/data/"); !slices.Contains(objs, old) || len(objs) != 2 {
		t.Fatalf("data objects after Prune in the grace: %q, want %s kept", objs, old)
	}

	editManifest(t, e, s, "k", func(m *manifest) { m.Replaced[0].At = replacedAt })
	r, err := s.Check(bg, remote.CheckOptions{})
	if err != nil || len(r.Problems) != 1 || r.Problems[0].Kind != remote.ProblemOrphanData || r.Problems[0].Object != old ||
		!strings.Contains(r.Problems[0].Detail, "replaced") {
		t.Fatalf("Check past the grace: %+v, %v; want %s reported as orphan data, replaced", r, err, old)
	}
	if n, err := s.Prune(bg, policy.Limits{}); err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if objs := e.objects(t, "ci/data/"); slices.Contains(objs, old) || len(objs) != 1 {
		t.Fatalf("data objects after Prune past the grace: %q, want %s collected", objs, old)
	}
	if back, err := readAll(t, s, "k"); err != nil || !bytes.Equal(back, v2) {
		t.Fatalf("current version after Prune: %v", err)
	}
	if r, err := s.Check(bg, remote.CheckOptions{}); err != nil || len(r.Problems) != 0 {
		t.Fatalf("Check after Prune: %+v, %v", r, err)
	}
}

// TestPutCollectsExpiredVersions: a Put deletes the versions its history
// holds past the grace, so a key pushed often stays bounded without
// Prune, and keeps the one it replaces.
func TestPutCollectsExpiredVersions(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil) // default grace: 1h
	var ids []string
	for i := range 2 {
		if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(randBytes(uint64(30+i), 100))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, readManifestOf(t, s, "k").Data)
	}
	editManifest(t, e, s, "k", func(m *manifest) { m.Replaced[0].At = time.Now().Add(-2 * time.Hour) })
	m3, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("three"))
	if err != nil {
		t.Fatal(err)
	}
	m := readManifestOf(t, s, "k")
	n, _ := s.namesFor("k")
	want := []string{n.data(ids[1]), n.data(m.Data)}
	slices.Sort(want)
	if objs := e.objects(t, "ci/data/"); !slices.Equal(objs, want) {
		t.Errorf("data objects: %q, want %q (the expired version deleted, the replaced one kept)", objs, want)
	}
	if len(m.Replaced) != 1 || m.Replaced[0].Data != ids[1] || !m.Replaced[0].At.Equal(m3.Created) {
		t.Errorf("history: %+v, want only %s replaced at %v", m.Replaced, ids[1], m3.Created)
	}
}

// TestNextHistory: the history a Put writes starts with the version it
// replaces, keeps the others within the grace, newest first, at most
// maxReplaced, and hands back for deletion what it drops, except entries
// that name no data object.
func TestNextHistory(t *testing.T) {
	now := time.Now()
	cutoff := now.Add(-time.Hour)
	newID := newDataID(1)
	old := manifest{Data: newDataID(1)}
	var recent []string // within the grace, newest first
	for i := range maxReplaced + 5 {
		id := newDataID(1)
		recent = append(recent, id)
		old.Replaced = append(old.Replaced, replacedData{Data: id, At: now.Add(-time.Duration(i+1) * time.Minute / 2)})
	}
	slices.Reverse(old.Replaced) // oldest first: nextHistory sorts
	expiredID := newDataID(1)
	old.Replaced = append(old.Replaced,
		replacedData{Data: expiredID, At: cutoff.Add(-time.Second)},
		replacedData{Data: "not-an-id", At: now},
		replacedData{Data: recent[0], At: now.Add(-time.Hour / 4)}, // a duplicate: the first one counts
		replacedData{Data: old.Data, At: now},                      // the current one
		replacedData{Data: newID, At: now},                         // the new one
	)

	keep, expired := nextHistory(old, newID, now, cutoff)
	if len(keep) != maxReplaced || keep[0] != (replacedData{Data: old.Data, At: now}) {
		t.Fatalf("history of %d entries starting %+v; want %d starting with the replaced version", len(keep), keep[0], maxReplaced)
	}
	for i, r := range keep[1:] {
		if r.Data != recent[i] {
			t.Fatalf("entry %d is %s, want %s (newest first)", i+1, r.Data, recent[i])
		}
	}
	want := append([]string{expiredID}, recent[maxReplaced-1:]...)
	slices.Sort(want)
	slices.Sort(expired)
	if !slices.Equal(expired, want) {
		t.Fatalf("dropped %q, want %q (past the grace, then the oldest beyond %d)", expired, want, maxReplaced)
	}
}
