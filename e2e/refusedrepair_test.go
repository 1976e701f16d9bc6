//go:build unix

package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRefusedEntryRepairedByNextJob runs a CI job's loop over an entry
// whose data object was damaged in the bucket behind its intact
// manifest: the pull refuses it (a miss with a warning), the job pushes
// the same tree, and the next machine's pull must find it. Before the
// fix, the push found the manifest's digest equal to its own archive's
// and skipped the upload, so every later job missed too.
func TestRefusedEntryRepairedByNextJob(t *testing.T) {
	cases := []struct {
		name   string
		damage func([]byte) []byte
		// removed: the pull removes the entry (its bytes fail the
		// manifest's SHA-256, or the object is of another size, found
		// before any byte is read); otherwise the push replaces it.
		removed bool
	}{
		{"flipped byte", flipByte, true},
		{"truncated", func(d []byte) []byte { return d[:len(d)-100] }, true},
	}
	b := bucket(t)
	e := newEnv(t, b)
	for i, tc := range cases {
		for j, flags := range [][]string{{"no-local=false"}, {"no-local=true"}, {"no-local=false", "--if-absent"}, {"no-local=true", "--if-absent"}} {
			noLocal := flags[0] == "no-local=true"
			t.Run(tc.name+"/"+strings.Join(flags, ","), func(t *testing.T) {
				key := fmt.Sprintf("refused-%d-%d", i, j)
				src := smallTree(t, key)
				mustRun(t, e, "push", "-q", key, src)
				plantedKey{t, b, key}.damageData(tc.damage)

				job := e.freshMachine(t).with("TIERCACHE_NO_LOCAL", fmt.Sprint(noLocal))
				_, stderr, code := runCLI(t, job, "pull", key, filepath.Join(t.TempDir(), "d"))
				w := warnings(stderr)
				if code != 0 || len(w) != 1 || !strings.Contains(w[0], "integrity") {
					t.Fatalf("pull of the damaged entry: exit %d, warnings %q; want 0 and one integrity warning", code, w)
				}
				if said := strings.Contains(w[0], "removed from the remote"); said != tc.removed {
					t.Errorf("warning %q: says the entry was removed: %v, want %v", w[0], said, tc.removed)
				}
				if !tc.removed && !strings.Contains(w[0], "tiercache rm") {
					t.Errorf("warning %q gives no fix", w[0])
				}

				out, _ := mustRun(t, job, append([]string{"push", "--json"}, append(flags[1:], key, src)...)...)
				var push map[string]any
				decodeJSON(t, out, &push)
				if push["uploaded"] != true || push["upload_skipped"] != false {
					t.Fatalf("push of the same tree after the refusal: %v; want it uploaded", push)
				}

				dir := filepath.Join(t.TempDir(), "next")
				_, stderr = mustRun(t, e.freshMachine(t), "pull", key, dir)
				if w := warnings(stderr); len(w) != 0 {
					t.Errorf("next job's pull warned: %q", w)
				}
				assertTag(t, dir, key)
			})
		}
	}
}

// TestRefusedEntryReadOnlyKept: a read-only job refuses the damaged
// entry without a single write to the bucket, and its warning says who
// can clear it.
func TestRefusedEntryReadOnlyKept(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "ro-bad", smallTree(t, "ro"))
	plantedKey{t, b, "ro-bad"}.damageData(flipByte)
	before := objects(t, b, "")
	for _, noLocal := range []bool{false, true} {
		ro := e.freshMachine(t).with("TIERCACHE_READ_ONLY", "true", "TIERCACHE_NO_LOCAL", fmt.Sprint(noLocal))
		_, stderr, code := runCLI(t, ro, "pull", "ro-bad", filepath.Join(t.TempDir(), "d"))
		w := warnings(stderr)
		if code != 0 || len(w) != 1 || !strings.Contains(w[0], "integrity") || !strings.Contains(w[0], "writable") || !strings.Contains(w[0], "tiercache rm") {
			t.Errorf("no-local=%v: read-only pull: exit %d, warnings %q; want 0 and one integrity warning naming who can clear it", noLocal, code, w)
		}
	}
	if after := objects(t, b, ""); !slices.Equal(before, after) {
		t.Errorf("read-only pulls changed the bucket:\nbefore %v\nafter  %v", before, after)
	}
}
