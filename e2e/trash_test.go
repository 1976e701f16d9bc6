//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// TestCLIDeletesTrashInBackground: what a push's sweep removes (here the
// staging of a dead process) is moved to trash at once and deleted by a
// detached process after the push has exited, not on its way.
func TestCLIDeletesTrashInBackground(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	treetest.Small(t, src, 20, "x")
	mustRun(t, e, "push", "first", src) // creates the cache

	cache := e["TIERCACHE_DIR"]
	dead := filepath.Join(cache, "staging", "00000000deadbeef")
	must(t, os.MkdirAll(filepath.Join(dead, "ver", "tree"), 0o755))
	treetest.Small(t, filepath.Join(dead, "ver", "tree"), 200, "dead")
	must(t, os.WriteFile(dead+".lock", nil, 0o644)) // unlocked: its owner died

	mustRun(t, e, "push", "second", src)
	if _, err := os.Lstat(dead); err == nil {
		t.Fatalf("the dead staging is still in staging/ after a push")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := dirNames(t, e, "trash")
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trash still holds %q 30 s after the push", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
