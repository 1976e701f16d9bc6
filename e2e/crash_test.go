//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// Helpers shared by the crash, stress and disk-full tests.

// crashProc is a tiercache process started in the background.
type crashProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startCLI starts the binary with args and exactly the environment e.
func startCLI(t testing.TB, e env, args ...string) *crashProc {
	t.Helper()
	p := &crashProc{cmd: exec.Command(binPath, args...)}
	for k, v := range e {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting tiercache %s: %v", strings.Join(args, " "), err)
	}
	return p
}

// killAfter sends SIGKILL after d unless the process has exited, and
// reports whether the kill is what ended it.
func (p *crashProc) killAfter(d time.Duration) (killed bool, err error) {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return false, err
	case <-time.After(d):
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err = <-done
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true, nil
	}
	return false, err // it finished on its own just before the signal
}

// mustFsck runs tiercache fsck with args and fails t unless it exits 0.
func mustFsck(t testing.TB, e env, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, e, append([]string{"fsck"}, args...)...)
	if code != 0 {
		t.Fatalf("tiercache fsck %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, stderr
}

// dirNames lists a directory of the local tier ("staging", "trash"...).
func dirNames(t testing.TB, e env, sub string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(e["TIERCACHE_DIR"], sub))
	if _, rerr := os.Lstat(e["TIERCACHE_DIR"]); errors.Is(rerr, fs.ErrNotExist) {
		// Killed before the local tier was made; fsck does not make it.
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range entries {
		out = append(out, d.Name())
	}
	return out
}

// incompleteUploads lists the multipart uploads in flight in bucket.
func incompleteUploads(t testing.TB, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	// MinIO lists uploads by exact object name, or all without a prefix.
	for u := range minioClient(t).ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("listing uploads in %s: %v", bucket, u.Err)
		}
		out = append(out, u.Key)
	}
	return out
}

// manifestsAndData returns the manifests and data objects in bucket.
func manifestsAndData(t testing.TB, bucket string) (manifests, data []string) {
	t.Helper()
	return objects(t, bucket, remotePrefix+"manifests/"), objects(t, bucket, remotePrefix+"data/")
}

// uncommittedData returns the data objects in bucket that no manifest
// names, as its current version or as a replaced one kept for readers.
func uncommittedData(t testing.TB, bucket string) []string {
	t.Helper()
	manifests, data := manifestsAndData(t, bucket)
	named := map[string]bool{}
	for _, name := range manifests {
		obj, err := minioClient(t).GetObject(context.Background(), bucket, name, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Data     string `json:"data"`
			Replaced []struct {
				Data string `json:"data"`
			} `json:"replaced"`
		}
		err = json.NewDecoder(obj).Decode(&m)
		_ = obj.Close()
		if err != nil {
			continue // deleted since the listing, or not ours
		}
		named[m.Data] = true
		for _, r := range m.Replaced {
			named[r.Data] = true
		}
	}
	var out []string
	for _, name := range data {
		if !named[path.Base(name)] {
			out = append(out, name)
		}
	}
	return out
}

// matchTree returns the index of the tree in srcs that dir equals, or -1.
func matchTree(t testing.TB, dir string, srcs []string) int {
	t.Helper()
	for i, src := range srcs {
		d, err := treetest.Diff(src, dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) == 0 {
			return i
		}
	}
	return -1
}

// writeCrashTree builds a tree of nSmall small text files and nBig files
// of bigSize random (incompressible) bytes, all derived from seed, so
// trees of different seeds differ in every file.
func writeCrashTree(t testing.TB, dir string, seed uint64, nSmall, nBig, bigSize int) {
	t.Helper()
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	rnd := rand.NewChaCha8(key)
	big := make([]byte, bigSize)
	for i := range nSmall + nBig {
		rel := filepath.Join(fmt.Sprintf("d%d", i%8), fmt.Sprintf("f%03d", i))
		var data []byte
		switch {
		case i < nBig*7/10:
			// The same in every tree, so a push that replaces one
			// tree by another copies these files' frames from the
			// version it replaces (server-side), and kills land in
			// composed uploads too.
			_, _ = rand.NewChaCha8([32]byte{0xcc, byte(i)}).Read(big)
			data = big
		case i < nBig:
			_, _ = rnd.Read(big)
			data = big
		default:
			data = []byte(strings.Repeat(fmt.Sprintf("seed %d file %d\n", seed, i), 1+i%200))
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// crashShape is the size of the trees one lane of the crash test uses.
type crashShape struct {
	name          string
	nSmall, nBig  int
	bigSize       int
	wantMultipart bool
}

var (
	// About 17.5 MiB of random data: more than the CLI's 16 MiB part
	// size, so pushes are multipart uploads that a kill can leave
	// incomplete.
	crashBig = crashShape{name: "big", nSmall: 190, nBig: 10, bigSize: 1750 << 10, wantMultipart: true}
	// About 3 MiB: one PutObject.
	crashMedium = crashShape{name: "medium", nSmall: 190, nBig: 10, bigSize: 300 << 10}
)

// crashKills is how many times each lane kills its command; two lanes
// each for push and pull make more than 50 kills of each.
const crashKills = 26

// crashCheckEvery is how many kills pass between full invariant checks.
const crashCheckEvery = 5

// crashStats counts where kills landed, as far as the state left tells.
type crashStats struct {
	kills, finished     atomic.Int64
	staging, uploads    atomic.Int64 // kills that left staging / an upload
	orphans, afterLocal atomic.Int64 // an uploaded, uncommitted object / came after the local commit
}

// TestCrashPushAndPull kills the real binary with SIGKILL at random
// moments of push and of pull, against MinIO, more than 50 times each,
// in four lanes running at once (each with its own cache directory and
// bucket, so a lane's `fsck --grace 0` cannot touch another's work). After
// kills it checks the invariants: fsck --deep finds every local entry and
// every remote manifest complete (exit 0 without --repair); the staging a
// kill left is gone after the next command; fsck --repair --grace 0
// leaves no incomplete multipart upload and no orphaned object; and a
// pull, local and from a fresh machine, yields exactly one of the trees
// pushed.
func TestCrashPushAndPull(t *testing.T) {
	server(t)
	srcRoot := t.TempDir()
	trees := map[string][]string{}
	for _, shape := range []crashShape{crashBig, crashMedium} {
		for i := range 3 {
			dir := filepath.Join(srcRoot, fmt.Sprintf("%s-%d", shape.name, i))
			writeCrashTree(t, dir, uint64(100*len(shape.name)+i), shape.nSmall, shape.nBig, shape.bigSize)
			trees[shape.name] = append(trees[shape.name], dir)
		}
	}
	var push, pull crashStats
	// The lanes run at once. They are plain subtests started from
	// goroutines rather than parallel ones, which -parallel (GOMAXPROCS
	// by default) would run two at a time on a small machine.
	var wg sync.WaitGroup
	for _, shape := range []crashShape{crashBig, crashMedium} {
		wg.Go(func() {
			t.Run("push-"+shape.name, func(t *testing.T) { crashPushLane(t, shape, trees[shape.name], &push) })
		})
		wg.Go(func() {
			t.Run("pull-"+shape.name, func(t *testing.T) { crashPullLane(t, trees[shape.name], &pull) })
		})
	}
	wg.Wait()
	t.Logf("push: %d kills (%d left staging, %d an incomplete upload, %d an uncommitted object, %d came after the local commit), %d runs finished first",
		push.kills.Load(), push.staging.Load(), push.uploads.Load(), push.orphans.Load(), push.afterLocal.Load(), push.finished.Load())
	t.Logf("pull: %d kills (%d left staging), %d runs finished first", pull.kills.Load(), pull.staging.Load(), pull.finished.Load())
	if t.Failed() {
		return
	}
	if push.kills.Load() < 50 || pull.kills.Load() < 50 {
		t.Fatalf("%d push and %d pull kills, want at least 50 each", push.kills.Load(), pull.kills.Load())
	}
	// Kills must have landed in several phases, not all before or after
	// the work: during the local copy (staging left) and after the local
	// commit, during the upload.
	if push.staging.Load() == 0 || push.afterLocal.Load()+push.uploads.Load()+push.orphans.Load() == 0 {
		t.Errorf("push kills never interrupted the local copy or the upload: the delays miss the work")
	}
	if pull.staging.Load() == 0 {
		t.Errorf("pull kills never interrupted a hydration: the delays miss the work")
	}
}

// timed runs the CLI to completion and returns how long it took.
func timed(t testing.TB, e env, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	mustRun(t, e, args...)
	return time.Since(start)
}

// crashDelay picks a kill delay spread over a typical run of length d.
func crashDelay(d time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// crashAdapt moves the typical run length d halfway to the length of a
// run that finished before its kill: the machine's load (other tests,
// other lanes) changes how long runs take, and delays longer than the
// run waste it.
func crashAdapt(d, run time.Duration) time.Duration { return (d + run) / 2 }

func crashPushLane(t *testing.T, shape crashShape, srcs []string, st *crashStats) {
	b := bucket(t)
	e := newEnv(t, b)
	const key = "crash-push"
	mustRun(t, e, "push", key, srcs[0])
	// A replacement costs more than a first push (a same-shape tree is
	// hashed before it is uploaded): measure that.
	d := timed(t, e, "push", key, srcs[1])
	if shape.wantMultipart {
		// Prove the lane exercises multipart uploads at all. The
		// replaced version is kept for its readers; names sort by
		// upload time.
		_, data := manifestsAndData(t, b)
		if len(data) != 2 {
			t.Fatalf("data objects after two pushes: %q", data)
		}
		info, err := minioClient(t).StatObject(context.Background(), b, data[1], minio.StatObjectOptions{})
		if err != nil || !strings.Contains(info.ETag, "-") {
			t.Fatalf("the archive was not a multipart upload (ETag %q, %v)", info.ETag, err)
		}
	}
	var lastKill time.Time
	last := 1 // the tree pushed last
	for kills, runs := 0, 0; kills < crashKills; runs++ {
		if runs > 6*crashKills {
			t.Fatalf("only %d kills in %d runs: the runs end before the kill", kills, runs)
		}
		before := localVersion(t, e, key)
		// Never the tree the last run pushed, so most runs really
		// upload rather than find the remote holds their tree already.
		last = (last + 1 + rand.IntN(len(srcs)-1)) % len(srcs)
		start := time.Now()
		p := startCLI(t, e, "push", key, srcs[last])
		killed, err := p.killAfter(crashDelay(d))
		if !killed {
			if err != nil {
				t.Fatalf("push not killed failed: %v\n%s", err, p.stderr.String())
			}
			st.finished.Add(1)
			d = crashAdapt(d, time.Since(start))
			continue
		}
		kills++
		st.kills.Add(1)
		lastKill = time.Now()
		if len(dirNames(t, e, "staging")) > 0 {
			st.staging.Add(1)
		}
		if len(incompleteUploads(t, b)) > 0 {
			st.uploads.Add(1)
		}
		if len(uncommittedData(t, b)) > 0 {
			st.orphans.Add(1)
		}
		if after := localVersion(t, e, key); after != before {
			st.afterLocal.Add(1)
		}
		if kills%crashCheckEvery == 0 || kills == crashKills {
			cur := crashCheck(t, e, b, key, srcs, lastKill)
			// Re-measure a real replacement under the current load, so
			// the delays keep spanning the whole run.
			last = (cur + 1) % len(srcs)
			d = timed(t, e, "push", key, srcs[last])
		}
	}
}

// localVersion returns the version the local pointer of key names.
func localVersion(t testing.TB, e env, key string) string {
	t.Helper()
	v, err := os.Readlink(filepath.Join(e["TIERCACHE_DIR"], "index", key))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return v
}

// crashCheck checks the invariants after kills in a lane whose cache
// directory and bucket nothing else uses, and returns the index of the
// tree stored under key in the remote tier.
func crashCheck(t *testing.T, e env, b, key string, srcs []string, lastKill time.Time) int {
	t.Helper()
	// Every entry is complete, locally and remotely, without repair:
	// what kills leave behind is young, or staging that the next command
	// removes (this fsck is that command).
	mustFsck(t, e, "--deep")
	if left := dirNames(t, e, "staging"); len(left) != 0 {
		t.Fatalf("staging of killed runs not cleaned by the next command: %q", left)
	}
	// The server's clock has a resolution of one second: wait until
	// everything the kills left is older than "now - 0".
	time.Sleep(time.Until(lastKill.Add(1100 * time.Millisecond)))
	for pass := 1; ; pass++ {
		out, _ := mustFsck(t, e, "--repair", "--grace", "0")
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" && !strings.HasSuffix(l, "[repaired]") {
				t.Errorf("fsck --repair left: %s", l)
			}
		}
		ups := incompleteUploads(t, b)
		m, data := manifestsAndData(t, b)
		if len(ups) == 0 && len(m) == 1 && len(data) == 1 {
			break
		}
		// A request the killed run had already sent can reach MinIO's
		// handler after the kill, on a loaded machine more than a
		// second later, and start an upload or write an object younger
		// than this pass's cutoff. A second pass, once that is old too,
		// must remove it; what survives two passes is a real leftover.
		if pass == 2 {
			t.Fatalf("after two fsck --repair passes: incomplete uploads %q, manifests %q, data %q; want no upload and exactly the entry's objects", ups, m, data)
		}
		t.Logf("after fsck --repair: incomplete uploads %q, manifests %q, data %q; running a second pass", ups, m, data)
		time.Sleep(1100 * time.Millisecond)
	}
	for _, sub := range []string{"staging", "trash"} {
		if left := dirNames(t, e, sub); len(left) != 0 {
			t.Fatalf("%s after fsck --repair: %q", sub, left)
		}
	}
	if vs := dirNames(t, e, "data"); len(vs) != 1 {
		t.Fatalf("local versions after fsck --repair --grace 0: %q, want the current one", vs)
	}
	// A pull, local and from a fresh machine, yields one of the trees
	// (not always the same: a push killed between its local commit and
	// its remote one leaves the new tree local and the old one remote).
	cur := -1
	for _, pe := range []env{e, e.freshMachine(t)} {
		dst := filepath.Join(t.TempDir(), "dst")
		mustRun(t, pe, "pull", "--fail-on-miss", key, dst)
		if cur = matchTree(t, dst, srcs); cur < 0 {
			t.Fatalf("pulled tree (cache %s) equals none of the pushed trees", pe["TIERCACHE_DIR"])
		}
		if err := fsutil.RemoveAll(dst); err != nil {
			t.Fatal(err)
		}
		if pe["TIERCACHE_DIR"] != e["TIERCACHE_DIR"] {
			if err := fsutil.RemoveAll(pe["TIERCACHE_DIR"]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return cur
}

func crashPullLane(t *testing.T, srcs []string, st *crashStats) {
	b := bucket(t)
	e := newEnv(t, b)
	const key = "crash-pull"
	src := srcs[0]
	mustRun(t, e, "push", key, src)
	d := timed(t, e.freshMachine(t), "pull", key, filepath.Join(t.TempDir(), "dst"))
	for kills, runs := 0, 0; kills < crashKills; runs++ {
		if runs > 6*crashKills {
			t.Fatalf("only %d kills in %d runs: the runs end before the kill", kills, runs)
		}
		// A fresh machine each time, so every pull hydrates.
		m := e.freshMachine(t)
		dst := filepath.Join(t.TempDir(), "dst")
		start := time.Now()
		p := startCLI(t, m, "pull", key, dst)
		killed, err := p.killAfter(crashDelay(d))
		switch {
		case !killed && err != nil:
			t.Fatalf("pull not killed failed: %v\n%s", err, p.stderr.String())
		case !killed:
			st.finished.Add(1)
			d = crashAdapt(d, time.Since(start))
		default:
			kills++
			st.kills.Add(1)
			if _, err := os.Stat(filepath.Join(m["TIERCACHE_DIR"], "staging")); err == nil && len(dirNames(t, m, "staging")) > 0 {
				st.staging.Add(1)
			}
		}
		// The next command cleans the staging; the local entry, if the
		// hydration committed, is complete.
		mustFsck(t, m, "--deep")
		if left := dirNames(t, m, "staging"); len(left) != 0 {
			t.Fatalf("staging of a killed pull not cleaned by the next command: %q", left)
		}
		if kills%crashCheckEvery == 0 {
			// A pull on the same machine completes the job.
			dst2 := filepath.Join(t.TempDir(), "dst")
			mustRun(t, m, "pull", "--fail-on-miss", key, dst2)
			treetest.AssertEqual(t, src, dst2)
			_ = fsutil.RemoveAll(dst2)
			// Re-measure a whole pull under the current load, so the
			// delays keep spanning the whole run.
			fresh := e.freshMachine(t)
			d = timed(t, fresh, "pull", key, dst2)
			for _, dir := range []string{dst2, fresh["TIERCACHE_DIR"]} {
				if err := fsutil.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, dir := range []string{dst, m["TIERCACHE_DIR"]} {
			if err := fsutil.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Pulls write nothing remotely but access records: nothing to repair.
	out, _ := mustFsck(t, e, "--deep", "--repair", "--grace", "0")
	if strings.TrimSpace(out) != "" {
		t.Errorf("fsck after pull kills found problems:\n%s", out)
	}
	if m, data := manifestsAndData(t, b); len(m) != 1 || len(data) != 1 {
		t.Errorf("objects after pull kills: manifests %q data %q", m, data)
	}
}
