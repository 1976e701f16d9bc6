//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// agreeingTiers pulls key on the machine e from its local tier, then
// from the remote alone, and fails t unless both restore the tree tagged
// want: a runner restoring its own tree while every other restores
// another is the defect.
func agreeingTiers(t *testing.T, e env, key, want string) {
	t.Helper()
	tags := map[string]string{}
	for _, how := range [][]string{{"pull", "--json"}, {"pull", "--json", "--no-local"}} {
		dst := filepath.Join(t.TempDir(), "dst")
		out, _ := mustRun(t, e, append(how, key, dst)...)
		var hit pullJSON
		decodeJSON(t, out, &hit)
		tag, err := treetest.CheckSmall(dst)
		if !hit.Hit || err != nil {
			t.Fatalf("tiercache %s: hit %v, %v", strings.Join(how, " "), hit.Hit, err)
		}
		tags[strings.Join(how, " ")+" from the "+hit.Tier+" tier"] = tag
	}
	for how, tag := range tags {
		if tag != want {
			t.Fatalf("after concurrent pushes of %s, the pulls restored %v; want %q from both tiers (%s differs)", key, tags, want, how)
		}
	}
}

// TestCLIConcurrentPushesOneMachineAgree pushes two trees under one key
// at once from two processes of one machine (one TIERCACHE_DIR). First
// with the interleaving that split the tiers forced: the first push's
// commit of its manifest is held until the second push has either
// finished or said it waits for the first. Then a few rounds left to the
// scheduler, as the audit ran them. The local tier and the bucket must
// end with the same tree.
func TestCLIConcurrentPushesOneMachineAgree(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	one, two := smallTree(t, "one"), smallTree(t, "two")

	// The forced round: push one's manifest PUT waits at its proxy.
	target, err := url.Parse(server(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var heldOnce, releaseOnce sync.Once
	rp := httputil.NewSingleHostReverseProxy(target)
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			heldOnce.Do(func() { close(held) })
			select {
			case <-release:
			case <-r.Context().Done():
			case <-time.After(90 * time.Second):
				t.Errorf("the held manifest PUT was never released")
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	let := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(let)

	firstDone := make(chan error, 1)
	go func() {
		_, stderr, code := runCLI(t, e.with("TIERCACHE_S3_ENDPOINT", ps.URL), "push", "ck0", one)
		if code != 0 {
			firstDone <- fmt.Errorf("push one: exit %d: %s", code, stderr)
			return
		}
		firstDone <- nil
	}()
	select {
	case <-held:
	case err := <-firstDone:
		t.Fatalf("push one ended before committing its manifest: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("push one never committed its manifest")
	}
	// Push one has committed its local copy: its upload commits only
	// after that. Push two runs free, its progress watched.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "push", "ck0", two)
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(pw, &stderr)
	waits := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "waiting for another tiercache process") {
				close(waits)
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	secondDone := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		secondDone <- err
	}()
	var secondErr error
	select {
	case <-waits:
		let()
		secondErr = <-secondDone
	case secondErr = <-secondDone:
		t.Log("push two ended while push one's commit was held")
		let()
	case <-time.After(60 * time.Second):
		t.Fatal("push two neither waited for push one nor ended")
	}
	if secondErr != nil {
		t.Fatalf("push two: %v: %s", secondErr, stderr.String())
	}
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	agreeingTiers(t, e, "ck0", "two")

	// Rounds left to the scheduler: either may win, the tiers agree.
	for i := 1; i <= 4; i++ {
		key := fmt.Sprintf("ck%d", i)
		var wg sync.WaitGroup
		for _, src := range []string{one, two} {
			wg.Go(func() {
				if _, stderr, code := runCLI(t, e, "push", key, src); code != 0 {
					t.Errorf("push %s %s: exit %d: %s", key, src, code, stderr)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		dst := filepath.Join(t.TempDir(), "remote")
		mustRun(t, e.freshMachine(t), "pull", key, dst)
		tag, err := treetest.CheckSmall(dst)
		if err != nil {
			t.Fatal(err)
		}
		agreeingTiers(t, e, key, tag)
	}
}
