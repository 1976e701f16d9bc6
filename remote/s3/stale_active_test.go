package s3

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// startUploadID starts a multipart upload of name and returns its id.
func (e *env) startUploadID(t *testing.T, name string) string {
	t.Helper()
	out, err := e.raw.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: &e.bucket, Key: &name})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.UploadId)
}

// uploadPart uploads part n of upload id of name, as a push in progress
// does.
func (e *env) uploadPart(t *testing.T, name, id string, n int32) {
	t.Helper()
	if _, err := e.raw.UploadPart(t.Context(), &s3.UploadPartInput{
		Bucket: &e.bucket, Key: &name, UploadId: &id, PartNumber: &n, Body: strings.NewReader("part"),
	}); err != nil {
		t.Fatal(err)
	}
}

// TestStaleUploadStillActive: an upload started longer than the grace
// ago that had a part uploaded within the grace is a slow push still
// running, not a killed one. Prune and Check with Repair leave it alone,
// and abort it once it has gone a grace with no new part. The parts are
// listed two to a page, so the part that shows it active is on the second.
func TestStaleUploadStillActive(t *testing.T) {
	const grace = 2 * time.Second
	pastGrace := func() { time.Sleep(grace + 1500*time.Millisecond) } // the server clock has 1 s resolution
	for _, c := range []struct {
		name  string
		clean func(t *testing.T, s *Store)
	}{
		{"prune", func(t *testing.T, s *Store) {
			if _, err := s.Prune(bg, policy.Limits{MaxEntries: 10}); err != nil {
				t.Fatalf("Prune: %v", err)
			}
		}},
		{"fsck", func(t *testing.T, s *Store) {
			r, err := s.Check(bg, remote.CheckOptions{Repair: true, Grace: grace})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if n := r.Unrepaired(); n != 0 {
				t.Fatalf("Check left %d problems unrepaired: %+v", n, r.Problems)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.store(t, func(c *Config) { c.OrphanGrace = grace })
			s.pageSize = 2
			name := "ci/" + dataDir + "slow-push/" + staleID
			id := e.startUploadID(t, name)
			e.uploadPart(t, name, id, 1)
			e.uploadPart(t, name, id, 2)
			pastGrace()
			e.uploadPart(t, name, id, 3)

			c.clean(t, s)
			if got := e.uploads(t); !slices.Equal(got, []string{name}) {
				t.Fatalf("uploads after a %s while a part was uploaded within the grace: %q, want %s kept", c.name, got, name)
			}

			pastGrace()
			c.clean(t, s)
			if got := e.uploads(t); len(got) != 0 {
				t.Fatalf("uploads after a %s once a grace passed with no new part: %q, want it aborted", c.name, got)
			}
		})
	}
}

// TestStaleUploadPartsRefused: credentials that may not list an upload's
// parts cannot tell a slow push from a dead one, so nothing is aborted.
// Prune still prunes and returns no error; Check reports the upload,
// saying why it was left alone, and does not abort it with Repair.
func TestStaleUploadPartsRefused(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	name := "ci/" + dataDir + "unknown/" + staleID
	e.startUpload(t, name)
	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	denied := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
	var refused atomic.Int32
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method != http.MethodGet || !req.URL.Query().Has("uploadId") {
			return nil
		}
		refused.Add(1)
		return answer(req, http.StatusForbidden, denied)
	})
	defer e.rec.setFault(nil)

	if _, err := s.Prune(bg, policy.Limits{MaxEntries: 10}); err != nil {
		t.Fatalf("Prune with the listing of parts refused: %v, want no error", err)
	}
	if refused.Load() == 0 {
		t.Fatal("Prune did not list the parts of the old upload")
	}
	if got := e.uploads(t); !slices.Equal(got, []string{name}) {
		t.Fatalf("uploads after Prune: %q, want %s kept", got, name)
	}
	rep, err := s.Check(bg, remote.CheckOptions{Repair: true, Grace: time.Nanosecond})
	if err != nil {
		t.Fatalf("Check with the listing of parts refused: %v", err)
	}
	var found bool
	for _, p := range rep.Problems {
		if p.Kind == remote.ProblemStaleUpload && strings.Contains(p.Object, name) {
			found = true
			if p.Repaired || !strings.Contains(p.Detail, "could not be checked") || !strings.Contains(p.Detail, "Access Denied") {
				t.Errorf("the unjudged upload's problem: %+v; want it unrepaired, saying why", p)
			}
		}
	}
	if !found {
		t.Errorf("Check did not report the upload it could not judge: %+v", rep.Problems)
	}
	if got := e.uploads(t); !slices.Equal(got, []string{name}) {
		t.Fatalf("uploads after Check: %q, want %s kept", got, name)
	}
}
