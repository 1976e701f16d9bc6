//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/miniotest"
	"github.com/tiercache/tiercache/internal/treetest"
)

const (
	// microBucket holds what the micro-benchmarks upload; each tree's
	// pairs upload to a bucket of their own (bench.bucket), so the keys
	// of one tree never meet another's.
	microBucket = "bench"
	// mcAlias is the mc alias of the MinIO server, defined through
	// MC_HOST_<alias> so no mc configuration file holds the credentials.
	mcAlias = "bench"
	// tcPrefix is the remote prefix of the tiercache CLI runs.
	tcPrefix = "tc"
)

// bench is the state of one run.
type bench struct {
	cfg     config
	root    string // repository root
	scratch string // scratch directory of the run
	// work is where the current tree's commands write: a directory of
	// its own under scratch.
	work     string
	trashDir string // under scratch, shared by every tree
	trashSeq int
	probeSeq int
	// bestCreate is the fastest file creation probeCreate measured, in µs.
	bestCreate float64
	// createFloor: see waitQuiet.
	createFloor float64
	// trashDeleted is trashSeq when the trash was last emptied.
	trashDeleted int
	// deleteBetween: the trash is deleted between pairs, not at the end.
	deleteBetween bool
	// slowAfterDelete: file creation is slow for minutes after a deletion.
	slowAfterDelete bool
	tiercache       string
	mc              string
	bash            string
	timeBin         string // GNU time, if installed
	srv             *miniotest.Server
	baseEnv         []string
	src             string // the tree measured
	tree            treeSpec
	// bucket receives the current tree's uploads.
	bucket string
	// profileDir is where --profile writes for the current tree.
	profileDir string
	res        *results
	// inputs are what the timed commands of the current pair read, read
	// back in after the page cache is dropped (--drop-caches).
	inputs []string
	// programs are the executables the timed commands run, read back in
	// with the inputs.
	programs []string
}

// sample is one timed command.
type sample struct {
	Round       int     `json:"round"`
	Seconds     float64 `json:"seconds"`
	UserSeconds float64 `json:"user_seconds"`
	SysSeconds  float64 `json:"sys_seconds"`
	// MaxRSSBytes is the peak resident set of the process, or of the
	// largest process of a shell pipeline (see runCmd).
	MaxRSSBytes int64 `json:"max_rss_bytes"`
	// BusyBefore is the share of the machine's CPU time spent busy (by
	// anything) in the half second before the command started: other
	// work competing with the measurement.
	BusyBefore float64 `json:"busy_before"`
	// CreateMicros is the time one file creation took right before the
	// command (see probeCreate): how slow the file system was then.
	CreateMicros float64 `json:"create_us_before"`
	// RSSExact is false when GNU time was missing and MaxRSSBytes is
	// only an upper bound (see runCmd).
	RSSExact bool `json:"rss_exact"`
	// MemStalls counts the times, during the command, that anything on
	// the machine had to stop and reclaim or compact memory before it
	// could allocate (allocstall and compact_stall of /proc/vmstat), or
	// is -1 where that is not known. With the page cache full of earlier
	// rounds' trees, these stalls can double a command's system time.
	MemStalls int64 `json:"mem_stalls"`
}

func (b *bench) path(format string, args ...any) string {
	return filepath.Join(b.work, fmt.Sprintf(format, args...))
}

// checkTools finds every program the run needs and says how to get the
// missing ones.
func (b *bench) checkTools() error {
	var missing []string
	exe := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
	}
	b.tiercache = b.cfg.tiercache
	if b.tiercache == "" {
		b.tiercache = filepath.Join(b.root, "bin", "tiercache")
	}
	if !exe(b.tiercache) {
		missing = append(missing, fmt.Sprintf("tiercache binary %s (run `make build`)", b.tiercache))
	}
	b.mc = b.cfg.mc
	if b.mc == "" {
		b.mc = filepath.Join(b.root, "bin", "mc")
	}
	if !exe(b.mc) {
		missing = append(missing, fmt.Sprintf("MinIO client %s (run `make mc`)", b.mc))
	}
	for _, t := range []struct{ name, hint string }{
		{"tar", "GNU tar (Debian/Ubuntu: apt-get install tar)"},
		{"zstd", "the zstd command (Debian/Ubuntu: apt-get install zstd; macOS: brew install zstd)"},
		{"bash", "bash, which runs the baseline pipelines"},
		{"cp", "cp (coreutils)"},
	} {
		p, err := exec.LookPath(t.name)
		if err != nil {
			missing = append(missing, t.hint)
			continue
		}
		if t.name == "bash" {
			b.bash = p
		}
		b.programs = append(b.programs, p)
	}
	// Only GNU time has -f and -o; BSD time is no use here.
	if p, err := exec.LookPath("time"); err == nil {
		if out, err := exec.Command(p, "--version").CombinedOutput(); err == nil && strings.Contains(string(out), "GNU") {
			b.timeBin = p
			b.programs = append(b.programs, p)
		}
	}
	if b.timeBin == "" {
		logf("GNU time not found (Debian/Ubuntu: apt-get install time): peak RSS is reported as an upper bound")
	}
	b.programs = append(b.programs, b.tiercache, b.mc)
	if len(missing) > 0 {
		return fmt.Errorf("missing tools:\n  %s", strings.Join(missing, "\n  "))
	}
	var err error
	if b.tiercache, err = filepath.Abs(b.tiercache); err != nil {
		return err
	}
	b.mc, err = filepath.Abs(b.mc)
	return err
}

// setEnv builds the environment every command runs with: the caller's,
// minus anything that could point tiercache, the AWS SDK or mc elsewhere.
func (b *bench) setEnv() {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		// GOMAXPROCS too: the default is Go's own, which --scaling
		// compares with GOMAXPROCS=1.
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "TIERCACHE_") || strings.HasPrefix(name, "MC_") || name == "GOMAXPROCS" {
			continue
		}
		b.baseEnv = append(b.baseEnv, kv)
	}
	none := b.path("no-such-aws-config")
	b.baseEnv = append(b.baseEnv,
		"AWS_CONFIG_FILE="+none,
		"AWS_SHARED_CREDENTIALS_FILE="+none,
		"AWS_EC2_METADATA_DISABLED=true",
		"MC_CONFIG_DIR="+b.path("mc-config"),
		"MC_HOST_"+mcAlias+"="+strings.Replace(b.srv.Endpoint, "://", "://"+b.srv.AccessKey+":"+b.srv.SecretKey+"@", 1),
	)
}

// tiercacheCmd runs the tiercache CLI with its local tier at tierDir and
// the benchmark's remote.
func (b *bench) tiercacheCmd(ctx context.Context, tierDir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.tiercache, append([]string{"--json", "--quiet"}, args...)...)
	cmd.Env = append(append([]string(nil), b.baseEnv...),
		"TIERCACHE_DIR="+tierDir,
		"TIERCACHE_REMOTE=s3://"+b.bucket+"/"+tcPrefix,
		"TIERCACHE_S3_ENDPOINT="+b.srv.Endpoint,
		"TIERCACHE_S3_PATH_STYLE=true",
		"TIERCACHE_NO_SYNC="+fmt.Sprint(b.cfg.noSync),
		"AWS_ACCESS_KEY_ID="+b.srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+b.srv.SecretKey,
		"AWS_REGION="+b.srv.Region,
	)
	return cmd
}

// shellCmd runs a pipeline under bash with pipefail, so any stage failing
// fails the command.
func (b *bench) shellCmd(ctx context.Context, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.bash, "-c", "set -o pipefail; "+script)
	cmd.Env = b.baseEnv
	return cmd
}

func (b *bench) plainCmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = b.baseEnv
	return cmd
}

// quote quotes s for bash.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exec runs cmd untimed and returns its stdout.
func (b *bench) exec(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	_, out, err := b.runCmd(ctx, cmd, 0, false)
	return out, err
}

// timed runs a measured command: see runCmd.
func (b *bench) timed(ctx context.Context, cmd *exec.Cmd, round int) (sample, []byte, error) {
	return b.runCmd(ctx, cmd, round, true)
}

// runCmd runs cmd after a sync, so writeback left by earlier work is not
// charged to it, and measures its wall time, CPU time and peak RSS.
//
// The peak RSS comes from GNU time when installed. The wait4 rusage Go
// reports is no good for it: Go starts children with vfork semantics, and
// Linux's execve records the old address space's high-water mark, which is
// the harness's own, as the child's peak. GNU time forks a small process of
// its own first, so its report is the command's alone (for a pipeline, the
// largest process of it: bash waits for every stage). Without GNU time the
// wait4 value is kept and flagged as an upper bound.
func (b *bench) runCmd(ctx context.Context, cmd *exec.Cmd, round int, measured bool) (sample, []byte, error) {
	what := describe(cmd)
	var rssFile string
	if b.timeBin != "" {
		f, err := os.CreateTemp(b.work, "time-*.txt")
		if err != nil {
			return sample{}, nil, err
		}
		// Kept until the scratch directory goes: even small deletions
		// are avoided during the run (see slowAfterDelete).
		rssFile = f.Name()
		_ = f.Close()
		cmd.Args = append([]string{b.timeBin, "-f", "%M %U %S", "-o", rssFile, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = b.timeBin
	}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	// Its own process group, so cancelling kills a whole pipeline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	syscall.Sync()
	var busy, create float64
	if measured {
		if b.cfg.dropCaches {
			if err := b.dropCaches(); err != nil {
				return sample{}, nil, err
			}
		}
		var err error
		if busy, create, err = b.waitQuiet(ctx); err != nil {
			return sample{}, nil, err
		}
	}
	stalls := memStalls()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if after := memStalls(); stalls >= 0 && after >= 0 {
		stalls = after - stalls
	} else {
		stalls = -1
	}
	if err != nil {
		return sample{}, nil, fmt.Errorf("%s: %w\n%s", what, err, strings.TrimSpace(stderr.String()))
	}
	s := sample{
		BusyBefore:   busy,
		CreateMicros: create,
		Round:        round,
		Seconds:      wall.Seconds(),
		UserSeconds:  cmd.ProcessState.UserTime().Seconds(),
		SysSeconds:   cmd.ProcessState.SystemTime().Seconds(),
		MemStalls:    stalls,
	}
	if rssFile != "" {
		out, err := os.ReadFile(rssFile)
		if err != nil {
			return sample{}, nil, err
		}
		// The last line; GNU time may put a status line before it.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var kb int64
		if _, err := fmt.Sscanf(lines[len(lines)-1], "%d %f %f", &kb, &s.UserSeconds, &s.SysSeconds); err != nil {
			return sample{}, nil, fmt.Errorf("%s: reading GNU time's report %q: %w", what, out, err)
		}
		s.MaxRSSBytes = kb << 10
		s.RSSExact = true
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.MaxRSSBytes = int64(ru.Maxrss)
		if runtime.GOOS != "darwin" { // kilobytes everywhere but macOS
			s.MaxRSSBytes *= 1024
		}
	}
	return s, stdout.Bytes(), nil
}

// describe renders a command for an error message, without its environment
// (which holds credentials).
func describe(cmd *exec.Cmd) string {
	args := cmd.Args
	if len(args) == 3 && args[1] == "-c" {
		return "bash -c " + quote(args[2])
	}
	return strings.Join(args, " ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// probeCreate creates probeFiles empty files in a new directory next to
// where the commands write, and returns the mean time per file in
// microseconds. It tells how slow file creation is at that moment: on ext4
// without a journal, inodes freed by anyone in the last minutes make it
// many times slower (see slowAfterDelete), and the commands measured create
// tens of thousands of files. The files go to the trash, like every tree.
func (b *bench) probeCreate() (float64, error) {
	b.probeSeq++
	dir := b.path("probe-%d", b.probeSeq)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := range probeFiles {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return 0, err
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
	}
	us := float64(time.Since(start).Microseconds()) / probeFiles
	return us, b.trash(dir)
}

// probeFiles is how many files probeCreate creates.
const probeFiles = 500

// trash moves a tree out of the way at once; it is deleted by emptyTrash
// between pairs, never while anything is timed.
func (b *bench) trash(p string) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// Moving a directory to another parent rewrites its "..", which needs
	// write permission on it (a restored read-only tree root has none).
	_ = os.Chmod(p, 0o700)
	b.trashSeq++
	return os.Rename(p, filepath.Join(b.trashDir, fmt.Sprint(b.trashSeq)))
}

// emptyTrash deletes the trash between pairs, syncs and pauses, when the
// run cannot keep every tree until its end (see chooseTrashPolicy).
// Otherwise it does nothing: on some file systems a large deletion slows
// the creation of files for minutes (see slowAfterDelete), which would
// fake the next results, so the fewer deletions before the end the better.
func (b *bench) emptyTrash(ctx context.Context) error {
	if !b.deleteBetween || b.trashSeq == b.trashDeleted {
		return nil
	}
	start := time.Now()
	if err := fsutil.RemoveAll(b.trashDir); err != nil {
		return err
	}
	if err := os.Mkdir(b.trashDir, 0o700); err != nil {
		return err
	}
	b.trashDeleted = b.trashSeq
	syscall.Sync()
	logf("deleted the trash in %s; pausing %s", time.Since(start).Round(time.Millisecond), b.cfg.pause)
	return sleep(ctx, b.cfg.pause)
}

// chooseTrashPolicy decides whether the trash is deleted between pairs:
// only when keeping every tree until the end (about 30 times the tree,
// MinIO's objects included, 36 with --scaling) would take more than half
// the free space, or when --delete-between-pairs asks for it.
func (b *bench) chooseTrashPolicy() {
	need := 30 * b.res.Tree.Bytes
	if b.cfg.scaling {
		need += 6 * b.res.Tree.Bytes // the restores at GOMAXPROCS=1
	}
	if b.cfg.reuse {
		need += reuseDiskNeed(b.res.Tree.Bytes, b.cfg.rounds)
	}
	var st unix.Statfs_t
	free := int64(-1)
	if unix.Statfs(b.work, &st) == nil {
		free = int64(st.Bavail) * int64(st.Bsize)
	}
	b.deleteBetween = b.cfg.deleteBetween || (free >= 0 && need > free/2)
	switch {
	case b.deleteBetween:
		b.res.Config.TrashPolicy = fmt.Sprintf("deleted between pairs, then sync and a %s pause", b.cfg.pause)
	default:
		b.res.Config.TrashPolicy = "kept until the end of the run (no deletion before any measurement)"
	}
	logf("trash %s (the run needs about %s, %s free)", b.res.Config.TrashPolicy, formatBytes(need), formatBytes(free))
}

// cleanupMarker is touched when a run deletes its scratch directory, so the
// next run can tell it starts on a file system still slowed by it.
func cleanupMarker() string { return filepath.Join(os.TempDir(), "tiercache-bench-cleanup") }

func markCleanup() {
	_ = os.WriteFile(cleanupMarker(), nil, 0o644)
	now := time.Now()
	_ = os.Chtimes(cleanupMarker(), now, now)
}

func sinceLastCleanup() (time.Duration, bool) {
	fi, err := os.Stat(cleanupMarker())
	if err != nil {
		return 0, false
	}
	return time.Since(fi.ModTime()), true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// verify fails unless the tree at got equals the source.
func (b *bench) verify(got, what string) error {
	start := time.Now()
	diffs, err := treetest.Diff(b.src, got)
	if err != nil {
		return fmt.Errorf("verify %s: %w", what, err)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s differs from the source in %d ways, first: %s", what, len(diffs), strings.Join(diffs[:min(len(diffs), 10)], "; "))
	}
	logf("verified %s equals the source (%s)", what, time.Since(start).Round(time.Millisecond))
	return nil
}

// parseJSON decodes a command's JSON output into v.
func parseJSON(out []byte, v any, what string) error {
	if err := json.Unmarshal(bytes.TrimSpace(out), v); err != nil {
		return fmt.Errorf("%s: parsing its JSON output %q: %w", what, out, err)
	}
	return nil
}

// cpuBusy returns the share of CPU time the whole machine spent busy over
// d, from /proc/stat, or -1 where that is not available.
func cpuBusy(ctx context.Context, d time.Duration) (float64, error) {
	read := func() (busy, total uint64, ok bool) {
		f, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, false
		}
		line, _, _ := strings.Cut(string(f), "\n")
		fields := strings.Fields(line)
		if len(fields) < 5 || fields[0] != "cpu" {
			return 0, 0, false
		}
		for i, v := range fields[1:] {
			var n uint64
			if _, err := fmt.Sscan(v, &n); err != nil {
				return 0, 0, false
			}
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		return busy, total, true
	}
	b0, t0, ok := read()
	if !ok {
		return -1, nil
	}
	if err := sleep(ctx, d); err != nil {
		return 0, err
	}
	b1, t1, ok := read()
	if !ok || t1 == t0 {
		return -1, nil
	}
	return float64(b1-b0) / float64(t1-t0), nil
}

// waitQuiet measures how busy the machine is and how fast files are
// created right before a timed command, after a sync. With --wait-idle it
// waits, up to maxIdleWait, until other work uses under a fifth of the
// CPU and creating a file takes no more than the larger of createFloor and
// three times the fastest creation seen in this run. A wait that times
// out raises the floor to what the file system managed meanwhile, so a
// disk that is simply slower than the floor costs one wait, not one per
// command.
func (b *bench) waitQuiet(ctx context.Context) (busy, create float64, err error) {
	if b.createFloor == 0 {
		b.createFloor = defaultCreateFloor
	}
	deadline := time.Now().Add(maxIdleWait)
	bestHere := math.Inf(1)
	for {
		if create, err = b.probeCreate(); err != nil {
			return 0, 0, err
		}
		bestHere = min(bestHere, create)
		if b.bestCreate == 0 || create < b.bestCreate {
			b.bestCreate = create
		}
		syscall.Sync()
		if busy, err = cpuBusy(ctx, 500*time.Millisecond); err != nil {
			return 0, 0, err
		}
		slowCreate := create > max(b.createFloor, 3*b.bestCreate)
		if !b.cfg.waitIdle || (busy < 0.2 && !slowCreate) {
			return busy, create, nil
		}
		if time.Now().After(deadline) {
			if slowCreate {
				b.createFloor = max(b.createFloor, 1.5*bestHere)
				logf("file creation stayed slow for %s; accepting %.0f µs from now on", maxIdleWait, b.createFloor)
			}
			return busy, create, nil
		}
		logf("waiting: other processes use %.0f%% of the CPU, creating a file takes %.0f µs", busy*100, create)
		if err := sleep(ctx, 10*time.Second); err != nil {
			return 0, 0, err
		}
	}
}

// defaultCreateFloor is the file creation time, in µs, that --wait-idle
// accepts at least: an idle local disk creates an empty file in tens of
// microseconds.
const defaultCreateFloor = 100

// maxIdleWait bounds how long --wait-idle waits before each command.
const maxIdleWait = 5 * time.Minute

// dropCachesFile is where root tells Linux to drop clean caches.
const dropCachesFile = "/proc/sys/vm/drop_caches"

// dropCaches writes back and drops the page cache, then reads b.inputs
// and b.programs back in: the command starts with its inputs and its
// executables cached, as without --drop-caches, and with the memory that
// earlier rounds' trees filled free again, as on a fresh CI machine.
// Dentries and inodes are kept. Reading the executables matters: a 27 MB
// tiercache binary loaded from disk costs a warm pull ~25 ms, which
// `cp`, small and shared with the rest of the system, never pays.
func (b *bench) dropCaches() error {
	syscall.Sync()
	if err := os.WriteFile(dropCachesFile, []byte("1\n"), 0); err != nil {
		return fmt.Errorf("--drop-caches: %w", err)
	}
	for _, in := range append(b.programs, b.inputs...) {
		if err := readTree(in); err != nil {
			return fmt.Errorf("--drop-caches: reading %s back in: %w", in, err)
		}
	}
	return nil
}

// readTree reads every regular file under root, four at a time. A root
// that does not exist (yet) has nothing to read.
func readTree(root string) error {
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var g errgroup.Group
	g.SetLimit(4)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		g.Go(func() error {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(io.Discard, f)
			return err
		})
		return nil
	})
	return errors.Join(err, g.Wait())
}

// memStalls returns the machine's count so far of allocations that had
// to wait for memory to be reclaimed or compacted, or -1 if unknown.
func memStalls() int64 {
	data, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return -1
	}
	var n int64
	for _, line := range strings.Split(string(data), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if ok && (strings.HasPrefix(name, "allocstall_") || name == "compact_stall") {
			v, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return -1
			}
			n += v
		}
	}
	return n
}
