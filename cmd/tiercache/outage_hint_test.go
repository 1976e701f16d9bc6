//go:build unix

package main

import (
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
