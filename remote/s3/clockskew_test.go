package s3

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// TestSkewedClientClock: an entry committed by a machine whose clock is
// 30 days behind is, to Stat, List and a prune by age, as old as the
// server's clock says, as an unscoped prune already judged it; one
// within clockSkew keeps the time it records.
func TestSkewedClientClock(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	for _, k := range []string{"skewed", "fine"} {
		if _, err := s.Put(bg, remote.Meta{Key: k}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	name := "ci/manifests/skewed.json"
	out, err := e.raw.GetObject(bg, &s3.GetObjectInput{Bucket: &e.bucket, Key: &name})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)
	meta := m["meta"].(map[string]any)
	meta["created"], meta["last_access"] = past, past
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	e.putRaw(t, name, b)

	recent := func(what string, m remote.Meta) {
		t.Helper()
		if d := time.Since(m.Created); d < -time.Minute || d > time.Minute || m.LastAccess.Before(m.Created) {
			t.Errorf("%s of %q: created %v, last access %v; want the server's time of the commit", what, m.Key, m.Created, m.LastAccess)
		}
	}
	st, err := s.Stat(bg, "skewed")
	if err != nil {
		t.Fatal(err)
	}
	recent("Stat", st)
	ms, err := s.List(bg, "")
	if err != nil || len(ms) != 2 {
		t.Fatalf("List: %v, %v", ms, err)
	}
	for _, m := range ms {
		recent("List", m)
	}
	if n, err := s.Prune(bg, policy.Limits{MaxAge: 14 * 24 * time.Hour}); err != nil || n != 0 {
		t.Errorf("Prune by age: %d, %v; want nothing evicted", n, err)
	}
}
