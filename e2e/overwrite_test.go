//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

const (
	// overwriteRounds × overwritePulls is the measurement: 18
	// cold pulls racing a push that overwrites their key.
	overwriteRounds = 3
	overwritePulls  = 6
	// overwriteBlobs × overwriteBlobSize of incompressible bytes make an
	// archive of three 16 MiB ranges (the default part size), so a pull
	// needs the data object again after its first range.
	overwriteBlobs    = 4
	overwriteBlobSize = 10 << 20
	// overwriteWait bounds how long the gate holds a request; it only
	// matters when something is broken.
	overwriteWait = 90 * time.Second
)

// overwriteTree builds a tagged tree of small files plus incompressible
// blobs.
func overwriteTree(t testing.TB, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src-"+tag)
	treetest.Small(t, dir, 100, tag)
	var seed [32]byte
	copy(seed[:], tag)
	r := rand.NewChaCha8(seed)
	blob := make([]byte, overwriteBlobSize)
	for i := range overwriteBlobs {
		_, _ = r.Read(blob)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%d.bin", i)), blob, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// overwriteGate forces, for one round, the interleaving that made readers
// miss, with no timing involved: the push's commit (its PUT of the
// manifest) waits until every pull has asked for the first range of the
// data object (so every pull has read the old manifest), and every other
// range a pull asks for waits until the push has exited (so it reaches
// the server after the push replaced the key and did whatever cleanup
// follows). Each pull and the push talk to MinIO through their own proxy.
type overwriteGate struct {
	t      *testing.T
	target *url.URL

	mu         sync.Mutex
	started    map[int]bool
	allStarted chan struct{} // closed once every pull asked for its first range
	pushDone   chan struct{} // closed when the push has exited
}

func newOverwriteGate(t *testing.T) *overwriteGate {
	target, err := url.Parse(server(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return &overwriteGate{
		t: t, target: target,
		started:    make(map[int]bool),
		allStarted: make(chan struct{}),
		pushDone:   make(chan struct{}),
	}
}

// proxy starts a proxy that applies hold to each request before
// forwarding it (requests keep their Host, so signatures verify).
func (g *overwriteGate) proxy(hold func(r *http.Request)) string {
	rp := httputil.NewSingleHostReverseProxy(g.target)
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hold(r)
		rp.ServeHTTP(w, r)
	}))
	g.t.Cleanup(ps.Close)
	return ps.URL
}

// wait blocks until ch is closed, or fails the test after overwriteWait.
func (g *overwriteGate) wait(r *http.Request, ch <-chan struct{}, what string) {
	select {
	case <-ch:
	case <-r.Context().Done():
	case <-time.After(overwriteWait):
		g.t.Errorf("gate: %s %s waited %v for %s", r.Method, r.URL.Path, overwriteWait, what)
	}
}

// pullEndpoint returns the endpoint of pull i.
func (g *overwriteGate) pullEndpoint(i int) string {
	return g.proxy(func(r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/data/") {
			return
		}
		if strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
			g.mu.Lock()
			g.started[i] = true
			if len(g.started) == overwritePulls {
				close(g.allStarted)
			}
			g.mu.Unlock()
			return
		}
		g.wait(r, g.pushDone, "the push to exit")
	})
}

// pushEndpoint returns the endpoint of the push.
func (g *overwriteGate) pushEndpoint() string {
	return g.proxy(func(r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			g.wait(r, g.allStarted, "every pull to start reading")
		}
	})
}

// cliResult is the outcome of a tiercache run in the background.
type cliResult struct {
	stdout, stderr string
	code           int
	err            error // the run itself failed (not an exit code)
}

// runBackground runs the binary like runCLI, but reports instead of
// failing the test, so it can run in any goroutine.
func runBackground(e env, args ...string) cliResult {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errOut.String(), code: cmd.ProcessState.ExitCode()}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		res.err = err
	}
	return res
}

// TestOverwriteReadersNeverMiss is the measurement made exact: in
// each round, six cold pulls (half with --no-local, half through a fresh
// local tier) read the key's manifest and start downloading while a push
// replaces the key with another tree, and need the old data object again
// after the push exited. Every pull must hit and restore the version it
// started on, the old one: a replaced version stays readable for the
// grace. fsck must find nothing wrong with the versions kept for readers.
func TestOverwriteReadersNeverMiss(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	const key = "overwrite"
	trees := []string{overwriteTree(t, "A"), overwriteTree(t, "B")}
	mustRun(t, e.with("TIERCACHE_NO_LOCAL", "true"), "push", key, trees[0])

	misses, wrong := 0, 0
	for round := range overwriteRounds {
		old, next := trees[round%2], trees[(round+1)%2]
		g := newOverwriteGate(t)
		results := make([]cliResult, overwritePulls)
		dsts := make([]string, overwritePulls)
		var wg sync.WaitGroup
		for i := range overwritePulls {
			pe := e.freshMachine(t).with("TIERCACHE_S3_ENDPOINT", g.pullEndpoint(i))
			if i%2 == 0 {
				pe = pe.with("TIERCACHE_NO_LOCAL", "true")
			}
			dsts[i] = filepath.Join(t.TempDir(), fmt.Sprintf("pull-%d-%d", round, i))
			wg.Go(func() { results[i] = runBackground(pe, "pull", "--json", key, dsts[i]) })
		}
		var push cliResult
		wg.Go(func() {
			defer close(g.pushDone)
			push = runBackground(e.with("TIERCACHE_NO_LOCAL", "true", "TIERCACHE_S3_ENDPOINT", g.pushEndpoint()), "push", key, next)
		})
		wg.Wait()
		if push.err != nil || push.code != 0 {
			t.Fatalf("round %d: push: exit %d, %v\n%s", round, push.code, push.err, push.stderr)
		}
		for i, r := range results {
			if r.err != nil || r.code != 0 {
				t.Fatalf("round %d: pull %d: exit %d, %v\n%s", round, i, r.code, r.err, r.stderr)
			}
			var res pullJSON
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("round %d: pull %d: %v in %q", round, i, err, r.stdout)
			}
			if !res.Hit {
				misses++
				t.Errorf("round %d: pull %d missed while the key was overwritten: %s", round, i, strings.TrimSpace(r.stderr))
				continue
			}
			// Every pull started on the old version (the gate saw it ask
			// for that version's data before the push committed).
			if diffs, err := treetest.Diff(old, dsts[i]); err != nil || len(diffs) != 0 {
				wrong++
				t.Errorf("round %d: pull %d restored a tree that is not the version it started on: %v %q", round, i, err, diffs[:min(len(diffs), 5)])
			}
		}
	}
	t.Logf("%d pulls, %d misses, %d wrong trees", overwriteRounds*overwritePulls, misses, wrong)

	// The replaced versions are kept for their readers, and fsck (with
	// the default grace) does not count them as problems.
	if _, data := manifestsAndData(t, b); len(data) != overwriteRounds+1 {
		t.Errorf("data objects after %d replacements: %q, want the current one and the %d replaced ones", overwriteRounds, data, overwriteRounds)
	}
	if out, _ := mustFsck(t, e); strings.TrimSpace(out) != "" {
		t.Errorf("fsck found problems in versions kept for readers:\n%s", out)
	}
	// The key holds the last tree pushed.
	dst := filepath.Join(t.TempDir(), "final")
	mustRun(t, e.freshMachine(t), "pull", "--fail-on-miss", key, dst)
	treetest.AssertEqual(t, trees[overwriteRounds%2], dst)
}
