//go:build unix

package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
)

// deltaPullJSON is the subset of `pull --json` the delta tests read.
type deltaPullJSON struct {
	Hit             bool   `json:"hit"`
	Tier            string `json:"tier"`
	DownloadedBytes int64  `json:"downloaded_bytes"`
	Base            string `json:"base"`
	FromBaseBytes   int64  `json:"from_base_bytes"`
}

// deltaPull pulls key into dir with e through p, and returns what pull
// said and how many response body bytes crossed p meanwhile.
func deltaPull(t *testing.T, e env, p *faultProxy, key, dir string, args ...string) (deltaPullJSON, int64) {
	t.Helper()
	before := p.respBytes()
	out, _ := mustRun(t, e, append(append([]string{"pull", "--json"}, args...), key, dir)...)
	var r deltaPullJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("pull --json: %v\n%s", err, out)
	}
	return r, p.respBytes() - before
}

// TestPullDownloadsOnlyWhatChanged: a machine that pulled v1 pulls v2
// (v1 with a file inserted, pushed elsewhere with v1 as base) and
// downloads only the frames v1 does not hold, counted at the transport,
// reading the others from its local archive of v1; v2 is restored
// exactly. Another machine with v1, pulling with --no-base, downloads
// all of v2.
func TestPullDownloadsOnlyWhatChanged(t *testing.T) {
	b, p, e, src, _, _ := reuseSetup(t, "v1")
	machineB, machineC := e.freshMachine(t), e.freshMachine(t)
	dirB, dirC := filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	for _, m := range []struct {
		e   env
		dir string
	}{{machineB, dirB}, {machineC, dirC}} {
		if r, _ := deltaPull(t, m.e, p, "v1", m.dir); !r.Hit || r.Base != "" {
			t.Fatalf("pull v1: %+v", r)
		}
	}
	v2 := filepath.Join(t.TempDir(), "v2")
	if err := exec.Command("cp", "-a", src, v2).Run(); err != nil {
		t.Fatal(err)
	}
	reuseWrite(t, filepath.Join(v2, "d4", "new", "inserted"), make([]byte, 300<<10))
	if r, _ := reusePush(t, e, p, "v2", v2, "--base", "v1"); r.Base != "v1" {
		t.Fatalf("push v2: %+v", r)
	}
	_, size := reuseManifest(t, b, "v2")

	// Into the directory v1 was pulled into: the pull record names v1.
	r, got := deltaPull(t, machineB, p, "v2", dirB)
	t.Logf("pull v2 with v1 local: %+v, %d bytes received, archive %d", r, got, size)
	if !r.Hit || r.Tier != "remote" || r.Base != "v1" || r.DownloadedBytes+r.FromBaseBytes != size {
		t.Errorf("pull v2: %+v; want v1 as base, downloaded + from base = %d", r, size)
	}
	if limit := size / 3; got > limit || got < r.DownloadedBytes {
		t.Errorf("%d bytes crossed the transport, %d reported downloaded, for a %d-byte archive; want between them and %d", got, r.DownloadedBytes, size, limit)
	}
	treetest.AssertEqual(t, v2, dirB)

	// The same with --no-base: every byte comes from the remote.
	r, got = deltaPull(t, machineC, p, "v2", dirC, "--no-base")
	if !r.Hit || r.Base != "" || r.FromBaseBytes != 0 || r.DownloadedBytes != size || got < size {
		t.Errorf("pull v2 --no-base: %+v, %d bytes received; want all %d downloaded", r, got, size)
	}
	treetest.AssertEqual(t, v2, dirC)

	// A new machine has no base, and downloads it all too.
	fresh := filepath.Join(t.TempDir(), "fresh")
	r, got = deltaPull(t, e.freshMachine(t), p, "v2", fresh, "--restore-key", "v")
	if !r.Hit || r.Base != "" || got < size {
		t.Errorf("pull v2 on a fresh machine: %+v, %d bytes received; want all %d downloaded", r, got, size)
	}
	treetest.AssertEqual(t, v2, fresh)
}
