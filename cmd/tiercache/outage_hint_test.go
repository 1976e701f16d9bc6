//go:build unix

package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutageErrorsHint: the commands that fail on a remote outage (rm,
// fsck, prune, and pull or push with --strict) end their one error line
// with the hint the other commands' warnings give for it.
func TestOutageErrorsHint(t *testing.T) {
	const want = "; check that the endpoint is up and reachable (--endpoint, TIERCACHE_S3_ENDPOINT)\n"
	e := fakeRemote(refusedEndpoint)(t)
	for _, args := range [][]string{
		{"rm", "k-1"},
		{"fsck"},
		{"prune", "--remote-max-entries", "1"},
		{"pull", "--strict", "k-1", filepath.Join(t.TempDir(), "d")},
		{"push", "--strict", "k-2", smallTree(t, "hint")},
	} {
		r := boundedCLI(t, e, args...)
		if r.code != exitFailure || !strings.HasSuffix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and one error line ending %q", strings.Join(args, " "), r.code, r.stderr, want)
		}
	}
}

// TestPruneWarnsOfUploadsLeft: credentials that may not list multipart
// uploads prune the entries all the same, with a warning that the stale
// uploads were left, and what to do.
func TestPruneWarnsOfUploadsLeft(t *testing.T) {
	denyUploads := func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		if !r.URL.Query().Has("uploads") {
			return false
		}
		s3Error(http.StatusForbidden, "AccessDenied")(w, r)
		return true
	}
	e := minioThrough(denyUploads)(t)
	r := boundedCLI(t, e, "prune", "--remote-max-entries", "0", "--remote-max-age", "1h")
	if r.code != 0 || !strings.Contains(r.stderr, "tiercache: warning: prune: stale multipart uploads left in place (the bucket's lifecycle rule") ||
		!strings.Contains(r.stderr, "the README lists the permissions tiercache needs") {
		t.Errorf("prune: exit %d, stderr %q; want 0 and a warning that the uploads were left, with the hint", r.code, r.stderr)
	}
	// fsck checks the entries all the same, and says what it could not.
	r = boundedCLI(t, e, "fsck")
	if r.code != 0 || !strings.Contains(r.stderr, "tiercache: warning: fsck: remote tier: stale multipart uploads were not looked for: ") {
		t.Errorf("fsck: exit %d, stderr %q; want 0 and a warning that the uploads were not looked for", r.code, r.stderr)
	}
}
