//go:build unix

package e2e

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalsStopCleanly: a pull stopped by Ctrl-C (SIGINT), by the CI
// cancelling the job (SIGTERM), or by its terminal going away (SIGHUP)
// while it waits on the remote exits 1 saying it was interrupted, with
// DIR not created and no staging left beside it.
func TestSignalsStopCleanly(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "sig", smallTree(t, "sig"))
	p := newFaultProxy(t)
	p.add(faultRule{method: http.MethodGet, path: "/data/", times: -1, fault: faultSpec{kind: fLatency, delay: time.Minute}})
	m := e.freshMachine(t).with("TIERCACHE_S3_ENDPOINT", p.URL)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "d")
			before := p.count(http.MethodGet, "/data/")
			proc := startCLI(t, m, "pull", "sig", dir)
			waitForArchiveGet(t, p, before, proc)
			if err := proc.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- proc.cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = proc.cmd.Process.Kill()
				t.Fatalf("the pull did not stop within 30s of %v", sig)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(proc.stderr.String(), "interrupted") {
				t.Errorf("after %v: %v, stderr %q; want exit 1 saying it was interrupted", sig, err, proc.stderr.String())
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 0 {
				var names []string
				for _, d := range ents {
					names = append(names, d.Name())
				}
				t.Errorf("after %v, beside DIR: %q; want nothing (DIR not created, no staging)", sig, names)
			}
		})
	}

	// Started under nohup, which ignores SIGHUP, it goes on: handling
	// SIGHUP must not undo that.
	t.Run("nohup", func(t *testing.T) {
		nohup, err := exec.LookPath("nohup")
		if err != nil {
			t.Fatalf("nohup: %v", err)
		}
		before := p.count(http.MethodGet, "/data/")
		proc := &crashProc{cmd: exec.Command(nohup, binPath, "pull", "sig", filepath.Join(t.TempDir(), "d"))}
		for k, v := range m {
			proc.cmd.Env = append(proc.cmd.Env, k+"="+v)
		}
		proc.cmd.Stdout, proc.cmd.Stderr = &proc.stdout, &proc.stderr
		if err := proc.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitForArchiveGet(t, p, before, proc)
		_ = proc.cmd.Process.Signal(syscall.SIGHUP)
		done := make(chan error, 1)
		go func() { done <- proc.cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("under nohup, SIGHUP ended the pull: %v, stderr %q", err, proc.stderr.String())
		case <-time.After(time.Second):
		}
		_ = proc.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-done; err == nil {
			t.Errorf("the pull, then stopped with SIGTERM, exited 0")
		}
	})
}

// waitForArchiveGet waits until the proxy has seen a GET of a data object
// beyond the before it counted: the pull is then waiting on the remote.
func waitForArchiveGet(t *testing.T, p *faultProxy, before int, proc *crashProc) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); p.count(http.MethodGet, "/data/") == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = proc.cmd.Process.Kill()
			t.Fatalf("the pull never asked for the archive: %s", proc.stderr.String())
		}
	}
}
