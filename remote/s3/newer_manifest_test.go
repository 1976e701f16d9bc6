package s3

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// rewriteManifest reads key's manifest with the raw client, lets edit
// change its JSON fields and writes it back.
func (e *env) rewriteManifest(t *testing.T, key string, edit func(map[string]any)) {
	t.Helper()
	name := "ci/manifests/" + key + manifestSuffix
	out, err := e.raw.GetObject(bg, &s3.GetObjectInput{Bucket: &e.bucket, Key: &name})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	e.putRaw(t, name, b)
}

// TestNewerManifestLeftAlone: entries a newer tiercache wrote into a
// shared bucket, in a manifest format version this code does not know,
// are reported by fsck as such and never repaired, and neither fsck
// --repair nor Prune's collection of leftovers deletes their manifests,
// data objects or markers. Unknown fields in a manifest of the known
// version are ignored.
func TestNewerManifestLeftAlone(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	for _, key := range []string{"sound", "extra-field", "newer", "newer-shaped"} {
		if _, err := s.Put(bg, remote.Meta{Key: key}, strings.NewReader("tree of "+key)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Touch(bg, "newer"); err != nil {
		t.Fatal(err)
	}
	e.rewriteManifest(t, "extra-field", func(m map[string]any) { m["future"] = map[string]any{"x": 1} })
	// The next version, with the fields of this one and more.
	e.rewriteManifest(t, "newer", func(m map[string]any) {
		m["version"] = manifestVersion + 1
		m["parts"] = []string{"0000000000000001-0000000000000001-0000000000000005.tar.zst"}
	})
	// A data object only the newer format knows about.
	e.putRaw(t, "ci/data/newer/0000000000000001-0000000000000001-0000000000000005.tar.zst", []byte("newer"))
	// The one after, shaped so this version cannot parse it at all.
	e.rewriteManifest(t, "newer-shaped", func(m map[string]any) {
		m["version"] = manifestVersion + 2
		m["meta"] = "elsewhere"
		m["data"] = []int{1, 2}
	})
	// A newer entry whose data lives where this code does not look.
	e.putRaw(t, "ci/manifests/newer-elsewhere.json", []byte(`{"version":9,"meta":{"key":"newer-elsewhere"},"chunks":["a","b"]}`))
	before := e.objects(t, "")

	if _, err := readAll(t, s, "newer"); !errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), "newer tiercache") {
		t.Errorf("Open of a newer entry: %v, want an integrity error saying a newer tiercache wrote it", err)
	}
	if back, err := readAll(t, s, "extra-field"); err != nil || string(back) != "tree of extra-field" {
		t.Errorf("a manifest with an unknown field: %q, %v; want it read as usual", back, err)
	}

	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	r, err := s.Check(bg, remote.CheckOptions{Repair: true, Deep: true, Grace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"newer-manifest newer", "newer-manifest newer-elsewhere", "newer-manifest newer-shaped"}
	if got := problemSet(r); !slices.Equal(got, want) {
		t.Errorf("fsck --repair found %q, want %q", got, want)
	}
	for _, p := range r.Problems {
		if p.Repaired || !strings.Contains(p.Detail, "newer tiercache") {
			t.Errorf("problem %+v: want it unrepaired, saying a newer tiercache wrote it", p)
		}
	}
	if r.Entries != 5 || r.Verified != 2 {
		t.Errorf("%d entries, %d verified; want 5 and 2", r.Entries, r.Verified)
	}
	if after := e.objects(t, ""); !slices.Equal(after, before) {
		t.Fatalf("fsck --repair changed the bucket:\nbefore %q\nafter  %q", before, after)
	}

	if n, err := s.Prune(bg, policy.Limits{}); err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v; want nothing evicted", n, err)
	}
	if after := e.objects(t, ""); !slices.Equal(after, before) {
		t.Fatalf("Prune changed the bucket:\nbefore %q\nafter  %q", before, after)
	}
}
