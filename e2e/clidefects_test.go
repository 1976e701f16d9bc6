package e2e

import (
	"strings"
	"testing"
)

// TestCLIRmSaysNotStored: rm reports a key held only by the remote tier as
// removed, and one that neither tier holds as not stored, exit 0.
func TestCLIRmSaysNotStored(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "rm-remote-1", smallTree(t, "rm"))

	// Another machine: the key is only in the remote tier.
	other := e.freshMachine(t)
	_, stderr := mustRun(t, other, "rm", "rm-remote-1", "rm-never-1")
	if !strings.Contains(stderr, `removed "rm-remote-1"`) || !strings.Contains(stderr, `"rm-never-1": not stored`) {
		t.Errorf("rm stderr: %q", stderr)
	}
	out, _ := mustRun(t, e, "rm", "--json", "rm-remote-1")
	var rm map[string][]string
	decodeJSON(t, out, &rm)
	// The first machine still held it locally.
	if len(rm["removed"]) != 1 || len(rm["not_stored"]) != 0 {
		t.Errorf("rm --json on the pushing machine: %v", rm)
	}
	out, _ = mustRun(t, e, "rm", "--json", "rm-remote-1")
	decodeJSON(t, out, &rm)
	if len(rm["removed"]) != 0 || len(rm["not_stored"]) != 1 {
		t.Errorf("rm --json of a removed key: %v", rm)
	}
	if objs := objects(t, b, remotePrefix+"manifests/"); len(objs) != 0 {
		t.Errorf("manifests left after rm: %v", objs)
	}
}
