// Command tiercache caches directory trees in two tiers, a local directory
// fronting an S3-compatible bucket, so that CI jobs start warm.
//
//	tiercache pull gomod-$(sha256sum go.sum | cut -c1-16) --restore-key gomod- ~/go/pkg/mod
//	... build ...
//	tiercache push gomod-$(sha256sum go.sum | cut -c1-16) ~/go/pkg/mod
//
// Run `tiercache --help` for the commands, flags, environment variables and
// exit codes.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// memoryLimit is the soft heap limit of a run unless GOMEMLIMIT says
// otherwise. A transfer's live memory is bounded by its buffers (about
// 100 MiB for parallel ranged downloads); without a limit the garbage
// collector lets the heap grow to twice that before collecting.
const memoryLimit = 160 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// SIGHUP too: a job whose terminal or SSH session goes away must
	// clean up as one cancelled does; unless it was started to ignore it
	// (nohup), which Notify would undo.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	go func() {
		// After the first signal, restore the default handling so a
		// second Ctrl-C kills a run that is slow to stop.
		<-ctx.Done()
		stop()
	}()
	code, trash := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	if trash != "" {
		emptyTrashDetached(trash)
	}
	os.Exit(code)
}

// emptyTrashDetached starts `tiercache empty-trash` on dir detached from
// this process (see detached) and does not wait for it: deleting what a
// push or pull retired can take seconds, which the job should not wait
// for. If the process is killed (say, with the job), the next run
// finishes the deletion.
func emptyTrashDetached(dir string) {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	cmd := exec.Command(exe, "empty-trash", "--cache-dir", dir, "--quiet")
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err == nil {
		_ = cmd.Process.Release()
	}
}

// run executes one CLI invocation and returns its exit code. It is main
// without the process: tests call it with their own streams and
// environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	code, _ := runMain(ctx, args, stdout, stderr, func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	})
	return code
}

// runMain is run that also returns the cache directory whose trash the
// command left for a detached deletion ("" for none). lookupEnv is
// os.LookupEnv's kind: it tells a variable set empty from one unset.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (int, string) {
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	secrets := secretValues(getenv)
	stdout = &redactWriter{w: stdout, secrets: secrets}
	stderr = &redactWriter{w: stderr, secrets: secrets}
	a := newApp(getenv)
	a.lookupEnv = lookupEnv
	root := newRootCommand(a)
	root.SetArgs(args)
	out := &countingWriter{w: stdout}
	root.SetOut(out)
	root.SetErr(stderr)
	addCompletion(root)
	cmd, err := root.ExecuteContextC(ctx)
	code := a.exitCode(err)
	if err != nil {
		line := errorLine(err)
		fmt.Fprintln(stderr, printable(line))
		if code == exitUsage {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		// TIERCACHE_JSON too: an error before the environment was
		// applied (a bad flag or argument) must not lose the object.
		envJSON, _ := strconv.ParseBool(strings.TrimSpace(getenv("TIERCACHE_JSON")))
		if (a.flags.json || envJSON) && out.n == 0 {
			// A script parsing --json gets an object on failure too.
			b, _ := json.Marshal(struct {
				Error    string `json:"error"`
				ExitCode int    `json:"exit_code"`
			}{strings.TrimPrefix(line, "tiercache: "), code})
			fmt.Fprintf(out, "%s\n", b)
		}
	}
	return code, a.trashDir
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// secretEnv lists the variables whose values are secrets. The CLI never
// prints the environment, but the redaction below also catches a secret
// echoed back by a server or a library in an error message.
var secretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", envSigningKey}

// minSecretLen keeps redaction from mangling output when a variable holds
// something short and common.
const minSecretLen = 8

func secretValues(getenv func(string) string) [][]byte {
	var out [][]byte
	for _, name := range secretEnv {
		if v := getenv(name); len(v) >= minSecretLen {
			out = append(out, []byte(v))
		}
	}
	return out
}

// redactWriter replaces every secret in what is written with a marker. The
// CLI writes whole lines or whole JSON documents per call, so a secret is
// never split across two writes.
type redactWriter struct {
	w       io.Writer
	secrets [][]byte
}

var redacted = []byte("[REDACTED]")

func (r *redactWriter) Write(p []byte) (int, error) {
	out := p
	for _, s := range r.secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, redacted)
		}
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
