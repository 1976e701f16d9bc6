//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tiercache/tiercache/internal/flock"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/miniotest"
	"github.com/tiercache/tiercache/local"
)

// pair is one comparison: tiercache (A) against a baseline (B).
type pair struct {
	Name      string   `json:"name"`
	CommandA  string   `json:"command_a"`
	CommandB  string   `json:"command_b"`
	A         []sample `json:"a"`
	B         []sample `json:"b"`
	MedianA   float64  `json:"median_seconds_a"`
	MedianB   float64  `json:"median_seconds_b"`
	Ratio     float64  `json:"ratio"` // MedianA / MedianB
	CPUA      float64  `json:"median_cpu_seconds_a"`
	CPUB      float64  `json:"median_cpu_seconds_b"`
	PeakRSSA  int64    `json:"peak_rss_bytes_a"`
	PeakRSSB  int64    `json:"peak_rss_bytes_b"`
	Verified  bool     `json:"verified"`
	VerifyLog string   `json:"verify,omitempty"`
	// CommandOneProc and OneProc, with --scaling: command A again with
	// GOMAXPROCS=1 in its environment, in the same rounds (A B C A B C
	// ...), so RatioOneProc, MedianA over MedianOneProc, shows how much
	// the default gains from every core.
	CommandOneProc string   `json:"command_gomaxprocs1,omitempty"`
	OneProc        []sample `json:"gomaxprocs1,omitempty"`
	MedianOneProc  float64  `json:"median_seconds_gomaxprocs1,omitempty"`
	CPUOneProc     float64  `json:"median_cpu_seconds_gomaxprocs1,omitempty"`
	PeakRSSOneProc int64    `json:"peak_rss_bytes_gomaxprocs1,omitempty"`
	RatioOneProc   float64  `json:"ratio_to_gomaxprocs1,omitempty"`
}

func (p *pair) summarize() {
	med := func(ss []sample, f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		return median(v)
	}
	wall := func(s sample) float64 { return s.Seconds }
	cpu := func(s sample) float64 { return s.UserSeconds + s.SysSeconds }
	p.MedianA, p.MedianB = med(p.A, wall), med(p.B, wall)
	p.CPUA, p.CPUB = med(p.A, cpu), med(p.B, cpu)
	if p.MedianB > 0 {
		p.Ratio = p.MedianA / p.MedianB
	}
	p.MedianOneProc, p.CPUOneProc = med(p.OneProc, wall), med(p.OneProc, cpu)
	if p.MedianOneProc > 0 {
		p.RatioOneProc = p.MedianA / p.MedianOneProc
	}
	for _, s := range p.OneProc {
		p.PeakRSSOneProc = max(p.PeakRSSOneProc, s.MaxRSSBytes)
	}
	for _, s := range p.A {
		p.PeakRSSA = max(p.PeakRSSA, s.MaxRSSBytes)
	}
	for _, s := range p.B {
		p.PeakRSSB = max(p.PeakRSSB, s.MaxRSSBytes)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pushKey is the tiercache key of push round r; cold and warm pulls read
// round 1's.
func pushKey(r int) string { return fmt.Sprintf("bench-r%d", r) }

// noLocalKey is the key of push --no-local round r.
func noLocalKey(r int) string { return fmt.Sprintf("bench-nolocal-r%d", r) }

// baseObject is the mc target of baseline push round r.
func (b *bench) baseObject(r int) string {
	return fmt.Sprintf("%s/%s/base/r%d.tar.zst", mcAlias, b.bucket, r)
}

// run is the whole benchmark: every tree of cfg.trees in turn, then the
// micro-benchmarks.
func run(ctx context.Context, cfg config) error {
	b := &bench{cfg: cfg}
	started := time.Now()
	var err error
	if b.root, err = repoRoot(); err != nil {
		return err
	}
	if err := b.checkTools(); err != nil {
		return err
	}
	// Before anything is measured, so a wrong tree fails at once.
	if err := b.resolveTrees(ctx); err != nil {
		return err
	}
	// Two benchmarks at once would falsify each other, and so would one
	// still deleting its trees: the lock is held until the very end.
	lock, ok, err := flock.TryLock(filepath.Join(os.TempDir(), "tiercache-bench.lock"))
	if err != nil {
		return err
	}
	if !ok {
		logf("another benchmark is running on this machine; waiting for it to finish")
		if lock, err = flock.Lock(ctx, filepath.Join(os.TempDir(), "tiercache-bench.lock")); err != nil {
			return err
		}
	}
	defer lock.Unlock()
	if cfg.workDir != "" {
		if err := os.MkdirAll(cfg.workDir, 0o755); err != nil {
			return err
		}
	}
	if b.scratch, err = os.MkdirTemp(cfg.workDir, "tiercache-bench-"); err != nil {
		return err
	}
	b.work = b.scratch
	if cfg.keep {
		logf("scratch directory %s (kept)", b.scratch)
	} else {
		// Once, after every tree: deleting one tree's scratch before
		// measuring the next would slow the next (see slowAfterDelete).
		defer func() {
			start := time.Now()
			if err := fsutil.RemoveAll(b.scratch); err != nil {
				logf("removing %s: %v", b.scratch, err)
				return
			}
			markCleanup()
			logf("removed the scratch directory in %s", time.Since(start).Round(time.Millisecond))
			if b.slowAfterDelete {
				logf("note: creating files on this file system is slow for several minutes after this deletion; wait before benchmarking again")
			}
		}()
	}
	pauseWhy := "--pause"
	var slowWhy string
	var warnings []string
	b.slowAfterDelete, slowWhy = slowAfterDelete(b.work)
	if cfg.pause < 0 {
		b.cfg.pause, pauseWhy = 5*time.Second, slowWhy
		if b.slowAfterDelete {
			b.cfg.pause = 65 * time.Second
		}
	}
	if since, ok := sinceLastCleanup(); ok && b.slowAfterDelete && since < 6*time.Minute && cfg.waitIdle {
		logf("waiting %s: a previous benchmark run deleted its scratch directory %s ago (see slowAfterDelete)", (6*time.Minute - since).Round(time.Second), since.Round(time.Second))
		if err := sleep(ctx, 6*time.Minute-since); err != nil {
			return err
		}
	} else if ok && b.slowAfterDelete && since < 6*time.Minute {
		warnings = append(warnings, fmt.Sprintf("a previous benchmark run deleted its scratch directory %s before this one started; on %s, file creation stays slow for minutes after a large deletion, so early rounds may be slow", since.Round(time.Second), slowWhy))
		logf("warning: %s", warnings[len(warnings)-1])
	}
	b.trashDir = b.path("trash")
	if err := os.Mkdir(b.trashDir, 0o700); err != nil {
		return err
	}

	logf("starting MinIO on loopback")
	b.srv, err = miniotest.Start()
	if err != nil {
		return fmt.Errorf("%w (run `make minio`)", err)
	}
	defer func() { _ = b.srv.Stop() }()
	b.setEnv()
	if _, err := b.exec(ctx, b.plainCmd(ctx, b.mc, "mb", "-q", mcAlias+"/"+microBucket)); err != nil {
		return err
	}
	if cfg.dropCaches {
		// Fail now, not after the tree is generated.
		f, err := os.OpenFile(dropCachesFile, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("--drop-caches needs root: %w", err)
		}
		_ = f.Close()
	}
	m := machineInfo(ctx, b)

	var all []*results
	for i, t := range b.cfg.trees {
		res := &results{Started: time.Now(), Machine: m, Config: b.cfg.toJSON(), Warnings: slices.Clone(warnings)}
		res.Config.Tree = t.dir
		res.Config.PauseWhy = pauseWhy
		logf("tree %d/%d: %s", i+1, len(b.cfg.trees), t.name)
		if err := b.measureTree(ctx, i, t, res); err != nil {
			return fmt.Errorf("tree %s: %w", t.name, err)
		}
		all = append(all, res)
	}
	if !cfg.skipMicro {
		// Once, after every tree: they do not depend on the tree, and
		// their prunes delete thousands of files, which would slow the
		// trees measured after them (see slowAfterDelete). Reported
		// with the first tree.
		start := time.Now()
		b.res, b.work = all[0], b.path("micro")
		if err := os.Mkdir(b.work, 0o755); err != nil {
			return err
		}
		if err := b.localMicro(ctx); err != nil {
			return err
		}
		if err := b.remotePrune(ctx); err != nil {
			return err
		}
		all[0].Seconds += time.Since(start).Seconds()
		for _, r := range all[1:] {
			r.MicroWith = all[0].Tree.Name
		}
	}
	var files []string
	for _, r := range all {
		r.Targets = r.evaluate()
		name := jsonOutFor(cfg.jsonOut, r.Tree.Name, len(all))
		if err := r.writeJSON(name); err != nil {
			return err
		}
		files = append(files, name)
	}
	for _, r := range all {
		r.ofMany = len(all) > 1
		r.markdown(os.Stdout)
	}
	if len(all) > 1 {
		summary(os.Stdout, all, time.Since(started))
	}
	logf("results written to %s; total %s", strings.Join(files, ", "), time.Since(started).Round(time.Second))
	return nil
}

// measureTree runs every pair (and --profile) on tree t, the i-th of the
// run, into res.
func (b *bench) measureTree(ctx context.Context, i int, t treeSpec, res *results) error {
	b.tree, b.res = t, res
	b.res.Tree.Name = t.name
	b.work = filepath.Join(b.scratch, fmt.Sprintf("tree-%d", i+1))
	if err := os.Mkdir(b.work, 0o755); err != nil {
		return err
	}
	b.bucket = fmt.Sprintf("%s-%d", microBucket, i+1)
	if _, err := b.exec(ctx, b.plainCmd(ctx, b.mc, "mb", "-q", mcAlias+"/"+b.bucket)); err != nil {
		return err
	}
	b.profileDir = b.cfg.profileDir
	if len(b.cfg.trees) > 1 && b.profileDir != "" {
		b.profileDir = filepath.Join(b.profileDir, t.name)
	}
	if err := b.prepareTree(ctx); err != nil {
		return err
	}
	b.chooseTrashPolicy()
	steps := []func(context.Context) error{
		b.pushPair, b.coldPullPair, b.warmPullPair,
		b.pushPairNoLocal, b.coldPullPairNoLocal,
	}
	if b.cfg.reuse {
		steps = append(steps, b.reusePairs)
	}
	for _, f := range steps {
		if err := f(ctx); err != nil {
			return err
		}
	}
	if b.profileDir != "" {
		if err := b.profile(ctx); err != nil {
			return err
		}
	}
	b.res.Seconds = time.Since(b.res.Started).Seconds()
	return nil
}

// resolveTrees finds Go's source tree for "goroot" and checks that every
// directory exists.
func (b *bench) resolveTrees(ctx context.Context) error {
	for i := range b.cfg.trees {
		t := &b.cfg.trees[i]
		switch t.kind {
		case treeGenerated:
			continue
		case treeGoroot:
			// The go command on PATH, from the repository root, so a
			// toolchain line in go.mod chooses it as for `make bench`.
			cmd := exec.CommandContext(ctx, "go", "env", "GOROOT")
			cmd.Dir = b.root
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("--trees goroot: go env GOROOT: %w", err)
			}
			t.dir = strings.TrimSpace(string(out))
			logf("goroot: Go's source tree is %s", t.dir)
		}
		dir, err := filepath.Abs(t.dir)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("tree %s: %s is not a directory", t.name, t.dir)
		}
		t.dir = dir
	}
	return nil
}

// prepareTree generates the tree, or takes the directory given, and
// records its shape.
func (b *bench) prepareTree(ctx context.Context) error {
	switch b.tree.kind {
	case treeDir:
		b.src = b.tree.dir
		b.res.Tree.Source = "directory given with --tree or --trees"
	case treeGoroot:
		b.src = b.tree.dir
		b.res.Tree.Source = "Go's source tree (`go env GOROOT`)"
		// Its VERSION file's first line names the release.
		if v, err := os.ReadFile(filepath.Join(b.src, "VERSION")); err == nil {
			if line, _, _ := strings.Cut(string(v), "\n"); strings.HasPrefix(line, "go") {
				b.res.Tree.Source = fmt.Sprintf("Go's source tree (`go env GOROOT`, %s)", line)
			}
		}
	default:
		b.src = b.path("src")
		start := time.Now()
		plan := planTree(b.cfg.size, b.cfg.seed)
		logf("generating a %s module-cache-like tree (%d files, seed %d)", formatBytes(plan.bytes), len(plan.files), b.cfg.seed)
		if err := plan.generate(ctx, b.src, b.cfg.seed); err != nil {
			return fmt.Errorf("generating the tree: %w", err)
		}
		b.res.Tree.Source = fmt.Sprintf("generated, module-cache-like, --size %s --seed %d", b.cfg.sizeText, b.cfg.seed)
		b.res.Tree.GenerateSeconds = time.Since(start).Seconds()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := filepath.WalkDir(b.src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			b.res.Tree.Dirs++
		case d.Type()&fs.ModeSymlink != 0:
			b.res.Tree.Symlinks++
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			b.res.Tree.Files++
			b.res.Tree.Bytes += fi.Size()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walking the tree: %w", err)
	}
	logf("tree: %s in %d files, %d dirs, %d symlinks", formatBytes(b.res.Tree.Bytes), b.res.Tree.Files, b.res.Tree.Dirs, b.res.Tree.Symlinks)
	return nil
}

// pushJSON and pullJSON are the parts of the CLI's --json output used here.
type pushJSON struct {
	Uploaded     bool  `json:"uploaded"`
	ArchiveBytes int64 `json:"archive_bytes"`
}

type pullJSON struct {
	Hit             bool   `json:"hit"`
	Tier            string `json:"tier"`
	DownloadedBytes int64  `json:"downloaded_bytes"`
}

func (b *bench) pushPair(ctx context.Context) error {
	return b.pushPairOf(ctx, "push", "tiercache push K DIR (empty local tier)", nil, pushKey)
}

// pushPairNoLocal measures push --no-local, which keeps no local copy,
// against the same baseline.
func (b *bench) pushPairNoLocal(ctx context.Context) error {
	return b.pushPairOf(ctx, "push --no-local", "tiercache push --no-local K DIR", []string{"--no-local"}, noLocalKey)
}

func (b *bench) pushPairOf(ctx context.Context, name, commandA string, flags []string, key func(int) string) error {
	p := &pair{
		Name:     name,
		CommandA: commandA,
		CommandB: fmt.Sprintf("tar --format=posix -cf - -C DIR . | zstd -T0 -%d | mc pipe ALIAS/BUCKET/OBJ", b.cfg.level),
	}
	b.inputs = []string{b.src}
	for r := 1; r <= b.cfg.rounds; r++ {
		tier := b.path("%s-tier-%d", strings.ReplaceAll(name, " ", ""), r)
		s, out, err := b.timed(ctx, b.tiercacheCmd(ctx, tier, append(append([]string{"push"}, flags...), key(r), b.src)...), r)
		if err != nil {
			return err
		}
		var pj pushJSON
		if err := parseJSON(out, &pj, "tiercache push"); err != nil {
			return err
		}
		if !pj.Uploaded {
			return fmt.Errorf("tiercache push %s did not upload: %s", key(r), out)
		}
		if r == 1 && flags == nil {
			b.res.Compressed.TiercacheBytes = pj.ArchiveBytes
		}
		p.A = append(p.A, s)
		logf("%s %d/%d tiercache: %s", name, r, b.cfg.rounds, s)
		if err := b.trash(tier); err != nil {
			return err
		}

		s, _, err = b.timed(ctx, b.shellCmd(ctx, fmt.Sprintf("tar --format=posix -cf - -C %s . | zstd -T0 -%d -q | %s pipe -q %s",
			quote(b.src), b.cfg.level, quote(b.mc), quote(b.baseObject(r)))), r)
		if err != nil {
			return err
		}
		p.B = append(p.B, s)
		logf("%s %d/%d baseline:  %s", name, r, b.cfg.rounds, s)
	}
	out, err := b.exec(ctx, b.plainCmd(ctx, b.mc, "stat", "--json", b.baseObject(1)))
	if err != nil {
		return err
	}
	var st struct {
		Size int64 `json:"size"`
	}
	if err := parseJSON(out, &st, "mc stat"); err != nil {
		return err
	}
	b.res.Compressed.BaselineBytes = st.Size
	b.res.Compressed.TreeBytes = b.res.Tree.Bytes
	b.res.Compressed.Level = b.cfg.level
	p.Verified, p.VerifyLog = true, "uploads only; the cold pulls verify what they restore"
	p.summarize()
	b.res.Pairs = append(b.res.Pairs, p)
	return b.emptyTrash(ctx)
}

func (b *bench) coldPullPair(ctx context.Context) error {
	return b.coldPullPairOf(ctx, "cold pull", "tiercache pull K DEST (empty local tier)", nil, false)
}

// coldPullPairNoLocal measures pull --no-local, which extracts straight
// into DEST, against the same baseline.
func (b *bench) coldPullPairNoLocal(ctx context.Context) error {
	return b.coldPullPairOf(ctx, "cold pull --no-local", "tiercache pull --no-local K DEST", []string{"--no-local"}, b.cfg.scaling)
}

// coldPullPairOf measures a cold tiercache pull with flags against the
// baseline, and with oneProc the same pull at GOMAXPROCS=1 too.
func (b *bench) coldPullPairOf(ctx context.Context, name, commandA string, flags []string, oneProc bool) error {
	p := &pair{
		Name:     name,
		CommandA: commandA,
		CommandB: "mc cat ALIAS/BUCKET/OBJ | zstd -d -T0 | tar -xf - -C DEST",
	}
	if oneProc {
		p.CommandOneProc = "GOMAXPROCS=1 " + commandA
	}
	// MinIO keeps each object in a directory of the same name: these
	// hold the two objects the pulls read.
	b.inputs = []string{
		filepath.Join(b.srv.DataDir, b.bucket, tcPrefix, "data", pushKey(1)),
		filepath.Join(b.srv.DataDir, strings.TrimPrefix(b.baseObject(1), mcAlias+"/")),
	}
	tag := strings.ReplaceAll(name, " ", "")
	// tiercache runs round r of tiercache pull, at GOMAXPROCS=1 if single.
	tiercache := func(r int, single bool) (sample, error) {
		what, suffix := "tiercache:", ""
		if single {
			what, suffix = "GOMAXPROCS=1:", "-gomaxprocs1"
		}
		tier, dest := b.path("%s-tier%s-%d", tag, suffix, r), b.path("%s-tc%s-%d", tag, suffix, r)
		cmd := b.tiercacheCmd(ctx, tier, append(append([]string{"pull"}, flags...), pushKey(1), dest)...)
		if single {
			cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
		}
		s, out, err := b.timed(ctx, cmd, r)
		if err != nil {
			return s, err
		}
		var pj pullJSON
		if err := parseJSON(out, &pj, "tiercache pull"); err != nil {
			return s, err
		}
		if !pj.Hit || pj.Tier != "remote" {
			return s, fmt.Errorf("cold tiercache pull was not a remote hit: %s", out)
		}
		logf("%s %d/%d %s %s", name, r, b.cfg.rounds, what, s)
		if err := b.verify(dest, strings.TrimSuffix(what, ":")+" "+name); err != nil {
			return s, err
		}
		return s, errors.Join(b.trash(tier), b.trash(dest))
	}
	for r := 1; r <= b.cfg.rounds; r++ {
		s, err := tiercache(r, false)
		if err != nil {
			return err
		}
		p.A = append(p.A, s)

		dest := b.path("%s-base-%d", tag, r)
		if err := os.Mkdir(dest, 0o755); err != nil {
			return err
		}
		s, _, err = b.timed(ctx, b.shellCmd(ctx, fmt.Sprintf("%s cat %s | zstd -d -T0 -q | tar -xf - -C %s",
			quote(b.mc), quote(b.baseObject(1)), quote(dest))), r)
		if err != nil {
			return err
		}
		p.B = append(p.B, s)
		logf("%s %d/%d baseline:  %s", name, r, b.cfg.rounds, s)
		if err := b.verify(dest, "baseline cold pull"); err != nil {
			return err
		}
		if err := b.trash(dest); err != nil {
			return err
		}

		if oneProc {
			s, err := tiercache(r, true)
			if err != nil {
				return err
			}
			p.OneProc = append(p.OneProc, s)
		}
	}
	if flags == nil {
		if err := b.interop(ctx); err != nil {
			return err
		}
	}
	p.Verified = true
	p.VerifyLog = "every restored tree equals the source (treetest.Diff); tiercache's object also restores with mc cat | zstd -d | tar -x"
	p.summarize()
	b.res.Pairs = append(b.res.Pairs, p)
	return b.emptyTrash(ctx)
}

// interop restores tiercache's own data object with the baseline pipeline
// (untimed) and checks the result: a tiercache pull and a tar -x of the same
// object must give the same tree.
func (b *bench) interop(ctx context.Context) error {
	out, err := b.exec(ctx, b.plainCmd(ctx, b.mc, "ls", "--json", "--recursive", fmt.Sprintf("%s/%s/%s/data/%s/", mcAlias, b.bucket, tcPrefix, pushKey(1))))
	if err != nil {
		return err
	}
	var objects []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && strings.HasSuffix(e.Key, ".tar.zst") {
			objects = append(objects, e.Key)
		}
	}
	if len(objects) != 1 {
		return fmt.Errorf("expected one data object for %s, found %q", pushKey(1), objects)
	}
	dest := b.path("interop")
	if err := os.Mkdir(dest, 0o755); err != nil {
		return err
	}
	obj := fmt.Sprintf("%s/%s/%s/data/%s/%s", mcAlias, b.bucket, tcPrefix, pushKey(1), objects[0])
	if _, err := b.exec(ctx, b.shellCmd(ctx, fmt.Sprintf("%s cat %s | zstd -d -q | tar -xf - -C %s", quote(b.mc), quote(obj), quote(dest)))); err != nil {
		return err
	}
	if err := b.verify(dest, "tar -x of tiercache's object"); err != nil {
		return err
	}
	return b.trash(dest)
}

func (b *bench) warmPullPair(ctx context.Context) error {
	p := &pair{
		Name:     "warm pull",
		CommandA: "tiercache pull K DEST (local hit)",
		CommandB: "cp -a TREE DEST (a copy of the tree on the same file system)",
	}
	if b.cfg.scaling {
		p.CommandOneProc = "GOMAXPROCS=1 " + p.CommandA
	}
	tier, setup := b.path("warm-tier"), b.path("warm-setup")
	out, err := b.exec(ctx, b.tiercacheCmd(ctx, tier, "pull", pushKey(1), setup))
	if err != nil {
		return err
	}
	var pj pullJSON
	if err := parseJSON(out, &pj, "tiercache pull"); err != nil {
		return err
	}
	if !pj.Hit || pj.Tier != "remote" {
		return fmt.Errorf("filling the warm local tier: not a remote hit: %s", out)
	}
	// The local tier keeps the archive: tiercache extracts it, and cp -a
	// copies the tree the first pull restored, on the same file system.
	// (Asking the local tier for a tree would make one beside the archive,
	// which the pulls would then copy instead.)
	l, err := local.Open(tier, local.Options{NoSync: b.cfg.noSync})
	if err != nil {
		return err
	}
	if s, ok, err := l.Lookup(ctx, pushKey(1)); err != nil || !ok || s.Archive == "" || s.Tree != "" {
		return fmt.Errorf("the warm local tier at %s holds %+v (hit %v, %v), want the archive alone", tier, s, ok, err)
	}
	cached := setup
	b.inputs = []string{cached}
	// tiercache runs round r of the warm tiercache pull, at GOMAXPROCS=1
	// if single.
	tiercache := func(r int, single bool) (sample, error) {
		what, dest := "tiercache:", b.path("warm-tc-%d", r)
		cmd := b.tiercacheCmd(ctx, tier, "pull", pushKey(1), dest)
		if single {
			what, dest = "GOMAXPROCS=1:", b.path("warm-tc-gomaxprocs1-%d", r)
			cmd = b.tiercacheCmd(ctx, tier, "pull", pushKey(1), dest)
			cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
		}
		s, out, err := b.timed(ctx, cmd, r)
		if err != nil {
			return s, err
		}
		var pj pullJSON
		if err := parseJSON(out, &pj, "tiercache pull"); err != nil {
			return s, err
		}
		if !pj.Hit || pj.Tier != "local" {
			return s, fmt.Errorf("warm tiercache pull was not a local hit: %s", out)
		}
		logf("warm pull %d/%d %s %s", r, b.cfg.rounds, what, s)
		if err := b.verify(dest, strings.TrimSuffix(what, ":")+" warm pull"); err != nil {
			return s, err
		}
		return s, b.trash(dest)
	}
	for r := 1; r <= b.cfg.rounds; r++ {
		s, err := tiercache(r, false)
		if err != nil {
			return err
		}
		p.A = append(p.A, s)

		dest := b.path("warm-cp-%d", r)
		s, _, err = b.timed(ctx, b.plainCmd(ctx, "cp", "-a", cached, dest), r)
		if err != nil {
			return err
		}
		p.B = append(p.B, s)
		logf("warm pull %d/%d cp -a:      %s", r, b.cfg.rounds, s)
		if err := b.verify(dest, "cp -a"); err != nil {
			return err
		}
		if err := b.trash(dest); err != nil {
			return err
		}

		if b.cfg.scaling {
			s, err := tiercache(r, true)
			if err != nil {
				return err
			}
			p.OneProc = append(p.OneProc, s)
		}
	}
	p.Verified, p.VerifyLog = true, "every copy equals the source (treetest.Diff)"
	p.summarize()
	b.res.Pairs = append(b.res.Pairs, p)
	// Deleted with the rest after the pair: a deletion earlier would
	// need a pause (see slowAfterDelete).
	if err := b.trash(setup); err != nil {
		return err
	}
	if err := b.trash(tier); err != nil {
		return err
	}
	return b.emptyTrash(ctx)
}

func (s sample) String() string {
	return fmt.Sprintf("%.2fs wall, %.2fs CPU, peak RSS %s", s.Seconds, s.UserSeconds+s.SysSeconds, formatBytes(s.MaxRSSBytes))
}
