//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote"
)

// Stress settings: 8 processes in loops on 4 keys for 45 seconds.
const (
	stressWorkers  = 8
	stressKeys     = 4
	stressDuration = 45 * time.Second
	stressFiles    = 10 // per tree: small, since replaced versions pile up for the grace
)

// stressRun runs the binary to completion from a worker goroutine, where
// t.Fatal is not allowed: failures to run at all come back as err.
func stressRun(e env, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		return "", "", -1, err
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode(), nil
}

// stressTree is a tagged tree ready to be pushed.
type stressTree struct{ dir, tag string }

// TestStressProcesses runs 8 tiercache processes at a time, in loops, doing
// a random mix of push, pull, rm and prune on 4 keys, all with one cache
// directory and one bucket, for 45 seconds. Every push stores a tree with a
// tag of its own; every command must succeed, and every tree a pull
// restores must be complete and carry a tag pushed under that key. Then
// fsck --deep must find nothing torn, and fsck --repair --grace 0 must
// leave the bucket with exactly one data object per manifest.
func TestStressProcesses(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	keys := make([]string, stressKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("stress-%d", i)
	}
	var (
		mu     sync.Mutex
		pushed = map[string]map[string]bool{} // key -> tags ever pushed
	)
	for _, k := range keys {
		pushed[k] = map[string]bool{}
	}
	wasPushed := func(key, tag string) bool {
		mu.Lock()
		defer mu.Unlock()
		return pushed[key][tag]
	}
	var counts struct{ push, pull, hit, remoteHit, rm, prune atomic.Int64 }

	// Trees are made here, in the test's goroutine (treetest reports
	// errors with t.Fatal), and handed to the workers.
	trees := make(chan stressTree, stressWorkers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	treeRoot := t.TempDir()
	deadline := time.Now().Add(stressDuration)
	for w := range stressWorkers {
		wg.Go(func() {
			fail := func(format string, args ...any) { t.Errorf("worker %d: "+format, append([]any{w}, args...)...) }
			run := func(args ...string) (string, bool) {
				stdout, stderr, code, err := stressRun(e, args...)
				if err != nil || code != 0 {
					fail("tiercache %s: exit %d, %v\n%s", strings.Join(args, " "), code, err, stderr)
					return "", false
				}
				return stdout, true
			}
			for n := 0; time.Now().Before(deadline); n++ {
				key := keys[rand.IntN(len(keys))]
				switch op := rand.IntN(100); {
				case op < 30:
					var tr stressTree
					select {
					case tr = <-trees:
					case <-stop:
						return
					}
					// Recorded before the push starts: a pull may see
					// the tree before the push exits.
					mu.Lock()
					pushed[key][tr.tag] = true
					mu.Unlock()
					counts.push.Add(1)
					run("push", key, tr.dir)
					_ = fsutil.RemoveAll(tr.dir)
				case op < 75:
					counts.pull.Add(1)
					dst := filepath.Join(treeRoot, fmt.Sprintf("pull-w%d-%d", w, n))
					out, ok := run("pull", "--json", key, dst)
					if !ok {
						continue
					}
					var res pullJSON
					if err := json.Unmarshal([]byte(out), &res); err != nil {
						fail("pull --json: %v: %q", err, out)
						continue
					}
					if res.Hit {
						counts.hit.Add(1)
						if res.Tier == "remote" {
							counts.remoteHit.Add(1)
						}
						tag, err := treetest.CheckSmall(dst)
						switch {
						case err != nil:
							fail("pull %q restored a torn tree: %v", key, err)
						case !wasPushed(key, tag):
							fail("pull %q restored tag %q, which was never pushed under it", key, tag)
						}
					}
					_ = fsutil.RemoveAll(dst)
				case op < 87:
					counts.rm.Add(1)
					run("rm", key)
				default:
					counts.prune.Add(1)
					run("prune", "--max-entries", "3", "--remote-max-entries", "3")
				}
			}
		})
	}
	for seq := 0; time.Now().Before(deadline); seq++ {
		tag := fmt.Sprintf("t%d", seq)
		dir := filepath.Join(treeRoot, tag)
		treetest.Small(t, dir, stressFiles, tag)
		select {
		case trees <- stressTree{dir, tag}:
		case <-time.After(time.Until(deadline)):
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d pushes, %d pulls (%d hits, %d from the remote), %d rms, %d prunes",
		counts.push.Load(), counts.pull.Load(), counts.hit.Load(), counts.remoteHit.Load(), counts.rm.Load(), counts.prune.Load())
	if counts.push.Load() < 50 || counts.hit.Load() < 50 {
		t.Fatalf("too little work to prove anything: %d pushes, %d hits", counts.push.Load(), counts.hit.Load())
	}

	// Nothing torn in either tier, without repair.
	if out, _ := mustFsck(t, e, "--deep"); out != "" {
		t.Fatalf("fsck --deep after the stress found:\n%s", out)
	}
	// The leftovers of racing writers are all collected.
	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	mustFsck(t, e, "--repair", "--grace", "0")
	m, data := manifestsAndData(t, b)
	if len(m) != len(data) || len(m) > stressKeys {
		t.Fatalf("after fsck --repair: manifests %q, data %q; want one data object per manifest", m, data)
	}
	if ups := incompleteUploads(t, b); len(ups) != 0 {
		t.Fatalf("incomplete uploads: %q", ups)
	}
	// Every key still stored reads back whole, from a fresh machine too.
	fresh := e.freshMachine(t)
	for _, key := range keys {
		for _, pe := range []env{e, fresh} {
			dst := filepath.Join(t.TempDir(), "final")
			stdout, _ := mustRun(t, pe, "pull", "--json", key, dst)
			var res pullJSON
			decodeJSON(t, stdout, &res)
			if !res.Hit {
				continue
			}
			if tag, err := treetest.CheckSmall(dst); err != nil || !wasPushed(key, tag) {
				t.Errorf("final pull of %q: tag %q, %v", key, tag, err)
			}
		}
	}
	if out, _ := mustFsck(t, fresh, "--deep"); out != "" {
		t.Errorf("fsck of the fresh machine:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(e["TIERCACHE_DIR"], "staging")); err != nil {
		t.Fatal(err)
	}
	if left := dirNames(t, e, "staging"); len(left) != 0 {
		t.Errorf("staging after the stress: %q", left)
	}
}

// TestStressFsckFindsLyingManifest plants what a push racing an rm of its
// key could store (see the stress test): an intact archive under a
// manifest that records an empty tree, so every pull fails. A metadata
// check cannot see it; fsck --deep reads the archive's members and
// reports it, and --repair turns it into a miss.
func TestStressFsckFindsLyingManifest(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	src := smallTree(t, "x")
	mustRun(t, e, "push", "honest", src)
	var buf bytes.Buffer
	if _, err := archive.Write(t.Context(), &buf, src, archive.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	store := newStore(t, b, &transport{}, machineOpts{})
	if _, err := store.Put(t.Context(), remote.Meta{Key: "lying"}, &buf); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, e.freshMachine(t), "--strict", "pull", "lying", filepath.Join(t.TempDir(), "d")); code != 1 {
		t.Fatalf("pull of the lying entry: exit %d, want 1 (%s)", code, stderr)
	}
	mustFsck(t, e) // the metadata alone is consistent
	stdout, _, code := runCLI(t, e, "fsck", "--deep")
	want := `remote: content-mismatch: ` + remotePrefix + `manifests/lying.json (key "lying"): `
	if code != 1 || !strings.HasPrefix(stdout, want) || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("fsck --deep: exit %d, stdout:\n%s\nwant one line starting %q", code, stdout, want)
	}
	stdout, _ = mustFsck(t, e, "--deep", "--repair")
	if !strings.HasSuffix(strings.TrimSpace(stdout), "[repaired]") {
		t.Errorf("fsck --deep --repair: %q", stdout)
	}
	fresh := e.freshMachine(t)
	out, _ := mustRun(t, fresh, "pull", "--json", "lying", filepath.Join(t.TempDir(), "d"))
	var res pullJSON
	if decodeJSON(t, out, &res); res.Hit {
		t.Errorf("the repaired entry still hits")
	}
	dst := filepath.Join(t.TempDir(), "d")
	mustRun(t, fresh, "pull", "--fail-on-miss", "honest", dst)
	treetest.AssertEqual(t, src, dst)
}
