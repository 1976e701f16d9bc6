package s3

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// staleID is a well-formed data object id.
const staleID = "0000000000000001-0000000000000001-0000000000000005.tar.zst"

// startUpload starts a multipart upload of name, as a push killed
// mid-upload leaves one.
func (e *env) startUpload(t *testing.T, name string) {
	t.Helper()
	if _, err := e.raw.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: &e.bucket, Key: &name}); err != nil {
		t.Fatal(err)
	}
}

// uploads returns the names of the bucket's multipart uploads, sorted.
func (e *env) uploads(t *testing.T) []string {
	t.Helper()
	out, err := e.raw.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &e.bucket})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range out.Uploads {
		names = append(names, aws.ToString(u.Key))
	}
	slices.Sort(names)
	return names
}

// TestPruneAbortsStaleUploads: Prune aborts the multipart uploads of its
// own data objects started longer than the grace ago (a push killed
// mid-upload), even when it evicts nothing, and leaves alone a younger
// one (a push in progress) and those outside its prefix (another
// tiercache prefix sharing the bucket, another tool). A read-only store
// aborts nothing.
func TestPruneAbortsStaleUploads(t *testing.T) {
	e := newEnv(t)
	const grace = 2 * time.Second
	s := e.store(t, func(c *Config) { c.OrphanGrace = grace })
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	stale := "ci/" + dataDir + "killed/" + staleID
	foreign := []string{"ci2/" + dataDir + "killed/" + staleID, "other/" + dataDir + "killed/" + staleID, "tool/big.bin"}
	for _, name := range append([]string{stale}, foreign...) {
		e.startUpload(t, name)
	}
	// Past the grace, by the server's clock of 1 s resolution.
	time.Sleep(grace + 1500*time.Millisecond)
	young := "ci/" + dataDir + "running/" + staleID
	e.startUpload(t, young)

	ro := remote.ReadOnly(s)
	if _, err := ro.Prune(bg, policy.Limits{MaxEntries: 10}); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("read-only Prune: %v, want ErrReadOnly", err)
	}
	if got := e.uploads(t); !slices.Contains(got, stale) {
		t.Fatalf("uploads after a read-only Prune: %q, want %s kept", got, stale)
	}

	if n, err := s.Prune(bg, policy.Limits{MaxEntries: 10}); err != nil || n != 0 {
		t.Fatalf("Prune = %d, %v; want nothing evicted", n, err)
	}
	want := append([]string{young}, foreign...)
	slices.Sort(want)
	if got := e.uploads(t); !slices.Equal(got, want) {
		t.Errorf("uploads after Prune: %q, want %q (the stale one aborted, the young and foreign ones kept)", got, want)
	}
	if back, err := readAll(t, s, "k"); err != nil || string(back) != "kept" {
		t.Errorf("entry after Prune: %q, %v", back, err)
	}
}

// TestPruneUploadsRefused: credentials that may not list or abort
// multipart uploads (a narrower policy than the README's) cost the
// aborts, never the prune of entries: Prune evicts as asked and returns
// no error.
func TestPruneUploadsRefused(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	stale := "ci/" + dataDir + "killed/" + staleID
	e.startUpload(t, stale)
	denied := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
	for _, c := range []struct {
		op, method, query string // the request refused
	}{
		{"list", http.MethodGet, "uploads"},
		{"abort", http.MethodDelete, "uploadId"},
	} {
		t.Run(c.op, func(t *testing.T) {
			for _, k := range []string{"old", "new"} {
				if _, err := s.Put(bg, remote.Meta{Key: k}, strings.NewReader(k)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
			}
			var refused atomic.Int32
			e.rec.setFault(func(req *http.Request, _ int) *http.Response {
				if req.Method != c.method || !req.URL.Query().Has(c.query) {
					return nil
				}
				refused.Add(1)
				return answer(req, http.StatusForbidden, denied)
			})
			defer e.rec.setFault(nil)
			var warned []error
			if n, err := s.Prune(bg, policy.Limits{MaxEntries: 1, OnWarn: func(err error) { warned = append(warned, err) }}); err != nil || n != 1 {
				t.Fatalf("Prune with the %s of uploads refused = %d, %v; want 1 evicted, no error", c.op, n, err)
			}
			// Said, so that the job's log shows what the prune could not do.
			if len(warned) != 1 || !errors.Is(warned[0], ErrAccessDenied) || !strings.Contains(warned[0].Error(), "stale multipart uploads left in place") {
				t.Errorf("Prune warned %v; want one warning of the uploads left, access denied", warned)
			}
			if refused.Load() == 0 {
				t.Fatalf("Prune did not try to %s uploads", c.op)
			}
			assertKeys(t, s, "new")
			if got := e.uploads(t); !slices.Equal(got, []string{stale}) {
				t.Errorf("uploads: %q, want %s left", got, stale)
			}
			if err := s.Delete(bg, "new"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckUploadsRefused: credentials that may not list multipart
// uploads cost fsck that part of the check alone: the entries are
// checked (a damaged one found, and repaired), and the report says the
// uploads were not looked at, rather than failing the whole check.
func TestCheckUploadsRefused(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	for _, k := range []string{"good", "bad"} {
		if _, err := s.Put(bg, remote.Meta{Key: k}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.raw.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: ptr(dataNameOf(t, s, "bad"))}); err != nil {
		t.Fatal(err)
	}
	denied := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method == http.MethodGet && req.URL.Query().Has("uploads") {
			return answer(req, http.StatusForbidden, denied)
		}
		return nil
	})
	defer e.rec.setFault(nil)
	r, err := s.Check(bg, remote.CheckOptions{Repair: true})
	if err != nil {
		t.Fatalf("Check with the listing of uploads refused: %v; want a report", err)
	}
	if r.Entries != 2 || len(r.Problems) != 1 || r.Problems[0].Key != "bad" || !r.Problems[0].Repaired {
		t.Errorf("report %+v; want 2 entries, bad's missing data found and repaired", r)
	}
	if len(r.Unchecked) != 1 || !strings.Contains(r.Unchecked[0], "multipart uploads") || !strings.Contains(r.Unchecked[0], "Access Denied") {
		t.Errorf("unchecked %q; want the uploads named, and why", r.Unchecked)
	}
}
