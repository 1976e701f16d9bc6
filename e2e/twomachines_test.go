//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// TestRestoreKeySameOnTwoMachines: the machine that pushed and a fresh
// one restore the same entry for a restore key, after a re-push whose
// upload was skipped and after a hydration, both of which make the local
// entry newer than the remote one.
func TestRestoreKeySameOnTwoMachines(t *testing.T) {
	b := bucket(t)
	pusher := newEnv(t, b)
	fresh := pusher.freshMachine(t)
	srcA := smallTree(t, "k-a")
	mustRun(t, pusher, "push", "-q", "k-a", srcA)
	mustRun(t, pusher, "push", "-q", "k-b", smallTree(t, "k-b"))
	out, _ := mustRun(t, pusher, "push", "--json", "k-a", srcA)
	var push struct {
		UploadSkipped bool `json:"upload_skipped"`
	}
	decodeJSON(t, out, &push)
	if !push.UploadSkipped {
		t.Fatalf("re-push of k-a: %s\nwant the upload skipped", out)
	}

	restore := func(name string, e env) string {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "dst")
		out, _ := mustRun(t, e, "pull", "--json", "--restore-key", "k-", "k-zzz", dst)
		var hit pullJSON
		decodeJSON(t, out, &hit)
		if tag, err := treetest.CheckSmall(dst); !hit.Hit || err != nil || tag != hit.Key {
			t.Fatalf("%s: pull %+v restored tree %q (%v)", name, hit, tag, err)
		}
		return hit.Key
	}
	onPusher, onFresh := restore("pusher", pusher), restore("fresh machine", fresh)
	if onPusher != onFresh || onFresh != "k-b" {
		t.Fatalf("restore key k- picks %s on the pusher and %s on a fresh machine, want k-b (uploaded last) on both", onPusher, onFresh)
	}
	// A third machine hydrates k-a first: still k-b.
	third := pusher.freshMachine(t)
	mustRun(t, third, "pull", "-q", "k-a", filepath.Join(t.TempDir(), "a"))
	if got := restore("machine that hydrated k-a", third); got != "k-b" {
		t.Fatalf("after hydrating k-a, restore key k- picks %s, want k-b", got)
	}
}

// TestPullNoLocalKeepsDirMetadata: pull --no-local into an existing DIR,
// empty or not, leaves DIR's own mode and mtime as they were (the
// archives tiercache makes hold no root entry).
func TestPullNoLocalKeepsDirMetadata(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b).with("TIERCACHE_NO_LOCAL", "true")
	mustRun(t, e, "push", "-q", "meta-1", smallTree(t, "meta-1"))
	mtime := time.Date(2003, 4, 5, 6, 7, 8, 9, time.UTC)
	for name, mine := range map[string]bool{"empty": false, "non-empty": true} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dir")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if mine {
				if err := os.WriteFile(filepath.Join(dir, "mine"), []byte("mine"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, 0o751); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(dir, time.Time{}, mtime); err != nil {
				t.Fatal(err)
			}
			mustRun(t, e, "pull", "-q", "meta-1", dir)
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o751 || !fi.ModTime().Equal(mtime) {
				t.Errorf("DIR after pull --no-local: mode %v mtime %v, want %v %v as before", fi.Mode().Perm(), fi.ModTime(), os.FileMode(0o751), mtime)
			}
			if mine {
				if _, err := os.Stat(filepath.Join(dir, "mine")); err != nil {
					t.Errorf("DIR's own file: %v", err)
				}
				if err := os.Remove(filepath.Join(dir, "mine")); err != nil {
					t.Fatal(err)
				}
			}
			if tag, err := treetest.CheckSmall(dir); err != nil || tag != "meta-1" {
				t.Errorf("pulled tree: %q, %v", tag, err)
			}
		})
	}
}
