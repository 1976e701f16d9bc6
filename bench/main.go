//go:build unix

// Command bench measures tiercache against the hand-rolled pipeline it
// replaces, on this machine, in one run:
//
//	push       tiercache push K DIR (empty local tier)
//	           vs  tar --format=posix -cf - DIR | zstd -T0 -3 | mc pipe ALIAS/BUCKET/OBJ
//	cold pull  tiercache pull K DEST (empty local tier)
//	           vs  mc cat ALIAS/BUCKET/OBJ | zstd -d -T0 | tar -xf - -C DEST
//	warm pull  tiercache pull K DEST (local hit)
//	           vs  cp -a of the same cached tree on the same file system
//
// against a MinIO server it starts on loopback, plus the compressed sizes,
// local Get hit latency at 10, 10k and 100k entries, and local and remote
// prune times at 10k entries. Each pair runs interleaved (A B A B ...) for
// --rounds rounds and reports medians, their ratio and each command's peak
// RSS. Every restored tree is compared with the source, outside the timed
// region; the run fails if a command fails or a tree differs, never because
// of a time.
//
// Every round writes into a fresh directory, and nothing is deleted while
// anything is timed: used trees are renamed into a trash directory, which
// is deleted at the end of the run, or between pairs (followed by sync and
// --pause) when the disk cannot hold it all. Deleting a large tree can slow
// the creation of files for minutes afterwards (see slowAfterDelete).
//
// A run measures each tree of --trees in turn, against the same MinIO:
// by default a generated 400 MB module-cache-like tree, then Go's own
// source tree (the directory `go env GOROOT` names, read and never
// modified). The local Get and prune measurements, which do not depend on
// the tree, run once, after the last tree, and are reported with the
// first.
//
// The cold pull --no-local and the warm pull also run tiercache with
// GOMAXPROCS=1 in the same rounds (A B C ...), and the report gives the
// default's median over that one: how the restore scales with cores.
// These are 2 timed commands per round against the 10 of the pairs;
// --scaling=false leaves them out.
//
// With --reuse, each tree also runs two pairs of push --base, which
// uploads only what changed since a base entry, against full pushes of
// the same trees, counting the bytes sent at the transport (see
// reusePairs).
//
// Run it from the repository root, after `make build mc minio`, or simply
// with `make bench BENCH_FLAGS="..."`:
//
//	go run ./bench                             # the generated tree, then GOROOT
//	go run ./bench --trees generated           # the generated tree only
//	go run ./bench --trees generated --size 100MB  # a quicker run
//	go run ./bench --tree ~/go/pkg/mod         # any real directory, alone
//	go run ./bench --trees goroot,$HOME/go/pkg/mod  # several, one after the other
//	go run ./bench --scaling=false             # without the restores at GOMAXPROCS=1
//	go run ./bench --reuse                     # also push --base, uploading only what changed
//	go run ./bench --profile prof              # also CPU profiles and a phase breakdown
//
// The Markdown report goes to stdout (one per tree, then a summary when
// there are several), progress to stderr, and every sample to the JSON
// file named by --json-out; with several trees, one file per tree, the
// tree's name inserted before the extension (bench-results-generated.json,
// bench-results-goroot.json).
//
// It builds on Unix only: its baselines are Unix tools (tar, cp -a), and
// it measures with Unix calls (getrusage, statfs, process groups).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config holds the command-line flags.
type config struct {
	size     int64
	sizeText string
	seed     uint64
	// trees are the trees measured, in order (--trees, or --tree alone).
	trees     []treeSpec
	treesText string
	tree      string
	// scaling adds the restores at GOMAXPROCS=1 (see pair.OneProc).
	scaling    bool
	rounds     int
	pause      time.Duration // negative: decide from the file system (see slowAfterDelete)
	pauseText  string
	jsonOut    string
	noSync     bool
	level      int
	skip100k   bool
	skipMicro  bool
	profileDir string
	workDir    string
	keep       bool
	tiercache  string
	mc         string
	getSamples int
	waitIdle   bool
	// dropCaches drops the page cache before each timed command and
	// reads the command's inputs back in (see bench.dropCaches).
	dropCaches bool
	// deleteBetween deletes the trash between pairs even when the disk
	// could keep it all.
	deleteBetween bool
	// reuse adds the push --base pairs (see reusePairs).
	reuse bool
	// reuseLink limits the reuse pairs' transfers, in Mbit/s each way
	// (0: none).
	reuseLink float64
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench [flags]\n\nMeasures tiercache push, cold pull and warm pull against tar | zstd | mc and cp -a,\non each tree of --trees (by default a generated one, then Go's source tree).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.sizeText, "size", "400MB", "size of the generated tree (KB, MB, GB are powers of 10; KiB, MiB, GiB of 2)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the generated tree")
	fs.StringVar(&c.treesText, "trees", defaultTrees, "comma-separated `list` of the trees to measure, one after the other: \"generated\" (the generated tree, see --size and --seed), \"goroot\" (Go's source tree, the directory go env GOROOT names) or a directory; one results file each (see --json-out); trees are never modified")
	fs.StringVar(&c.tree, "tree", "", "measure this existing directory alone (never modified); the same as --trees DIR, for any directory name")
	fs.BoolVar(&c.scaling, "scaling", true, "also run the cold pull --no-local and the warm pull with GOMAXPROCS=1, in the same rounds, and report the default's time over that; --scaling=false saves these 2 commands per round")
	fs.BoolVar(&c.reuse, "reuse", false, "also measure push --base, which uploads only what changed, and the pull that downloads only what changed: a second version of the tree (a new 1 MB directory, one file changed) and the tree under a renamed key, pushed with the first as base, against full pushes, and the second version pulled where the first is in the local tier, against a --no-base pull, bytes counted by a proxy; off by default, as it adds 4 pushes and 2 pulls per round and a copy of each tree (about 100 s on the generated 400 MB tree)")
	fs.Float64Var(&c.reuseLink, "reuse-link", 0, "with --reuse, limit the reuse pairs' uploads and downloads to this many `Mbit/s` each way at the proxy, as a link to a remote bucket would (0: loopback speed); every push and pull of the reuse pairs, full ones included, goes through it")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds of each pair (A B A B ...); medians are reported")
	fs.BoolVar(&c.deleteBetween, "delete-between-pairs", false, "delete the restored trees between pairs (default: only when the disk cannot hold them all until the end)")
	fs.StringVar(&c.pauseText, "pause", "auto", "pause after deleting trees between pairs and syncing, as a duration or \"auto\": 65s on ext4 without a journal, which makes file creation slow for minutes after a big delete, else 5s")
	fs.StringVar(&c.jsonOut, "json-out", "bench-results.json", "file to write every sample to, as JSON; with several trees, one per tree, the tree's name inserted before the extension")
	fs.BoolVar(&c.noSync, "no-sync", false, "run tiercache with --no-sync (no fsync in the local tier), like the baselines, which never sync")
	fs.IntVar(&c.level, "level", 3, "zstd level of the baseline (tiercache uses its default, 3)")
	fs.BoolVar(&c.skip100k, "skip-100k", false, "measure local Get hits at 10 and 10k entries only (building 100k entries takes 20 s to minutes)")
	fs.BoolVar(&c.skipMicro, "skip-micro", false, "skip the local Get and prune measurements")
	fs.StringVar(&c.profileDir, "profile", "", "write CPU and heap profiles of an in-process push and cold pull, their pprof -top output and a phase breakdown to this `dir`ectory")
	fs.StringVar(&c.workDir, "work-dir", "", "scratch directory (default: a new one under $TMPDIR); everything measured is written there")
	fs.BoolVar(&c.keep, "keep", false, "keep the scratch directory")
	fs.StringVar(&c.tiercache, "tiercache", "", "tiercache `binary` (default: bin/tiercache of the repository, built by make build)")
	fs.StringVar(&c.mc, "mc", "", "MinIO client `binary` (default: bin/mc of the repository, installed by make mc)")
	fs.BoolVar(&c.waitIdle, "wait-idle", false, "before each timed command, wait (up to 5 minutes) until other processes use under 20% of the CPU and file creation is fast again")
	fs.BoolVar(&c.dropCaches, "drop-caches", false, "before each timed command, drop the page cache (needs root) and read the command's inputs and programs back in, so no command pays for reclaiming the memory that earlier rounds filled")
	fs.IntVar(&c.getSamples, "get-samples", 5000, "local Get calls timed at each entry count")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	treesSet := false
	fs.Visit(func(f *flag.Flag) { treesSet = treesSet || f.Name == "trees" })
	switch {
	case c.tree != "" && treesSet:
		return c, errors.New("--tree and --trees cannot be used together (--tree DIR is --trees DIR)")
	case c.tree != "":
		c.trees = []treeSpec{dirTree(c.tree)}
	default:
		var err error
		if c.trees, err = parseTrees(c.treesText); err != nil {
			return c, fmt.Errorf("--trees: %w", err)
		}
	}
	size, err := parseSize(c.sizeText)
	if err != nil {
		return c, fmt.Errorf("--size: %w", err)
	}
	c.size = size
	c.pause = -1
	if c.pauseText != "auto" {
		if c.pause, err = time.ParseDuration(c.pauseText); err != nil || c.pause < 0 {
			return c, fmt.Errorf("--pause %q is neither a duration nor \"auto\"", c.pauseText)
		}
	}
	switch {
	case c.size < 1<<20:
		return c, errors.New("--size must be at least 1MiB")
	case c.rounds < 1:
		return c, errors.New("--rounds must be at least 1")
	case c.level < 1 || c.level > 19:
		return c, errors.New("--level must be within 1..19")
	case c.getSamples < 10:
		return c, errors.New("--get-samples must be at least 10")
	}
	return c, nil
}

// defaultTrees is what --trees measures unless told otherwise.
const defaultTrees = "generated,goroot"

// Kinds of tree (treeSpec.kind), also the words --trees takes for the first two.
const (
	treeGenerated = "generated"
	treeGoroot    = "goroot"
	treeDir       = "dir"
)

// treeSpec is one tree a run measures.
type treeSpec struct {
	kind string // treeGenerated, treeGoroot or treeDir
	// dir is the directory measured: as given for treeDir, found by
	// resolveTrees for treeGoroot, empty for treeGenerated.
	dir string
	// name tells the tree apart in the report and the results files'
	// names; parseTrees makes it unique and safe in a file name.
	name string
}

// dirTree is a directory given by the user.
func dirTree(dir string) treeSpec {
	return treeSpec{kind: treeDir, dir: dir, name: fileSafe(filepath.Base(filepath.Clean(dir)))}
}

// parseTrees parses --trees: comma-separated entries, each "generated",
// "goroot" or a directory (./generated for a directory of that name).
// Each may be listed once; names are made unique with a -2, -3 suffix.
func parseTrees(s string) ([]treeSpec, error) {
	var trees []treeSpec
	seen := map[string]bool{} // kinds and cleaned directories
	names := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		var t treeSpec
		switch f {
		case "":
			return nil, fmt.Errorf("%q has an empty entry", s)
		case treeGenerated, treeGoroot:
			t = treeSpec{kind: f, name: f}
		default:
			t = dirTree(f)
		}
		id := t.kind
		if t.kind == treeDir {
			id = "dir " + filepath.Clean(t.dir)
		}
		if seen[id] {
			return nil, fmt.Errorf("%s is listed twice", f)
		}
		seen[id] = true
		base := t.name
		for i := 2; names[t.name]; i++ {
			t.name = fmt.Sprintf("%s-%d", base, i)
		}
		names[t.name] = true
		trees = append(trees, t)
	}
	return trees, nil
}

// fileSafe reduces a directory's base name to lower-case letters, digits,
// dots, dashes and underscores, for a file name; "tree" if nothing is left.
func fileSafe(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == '.' && b.Len() > 0:
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	t := strings.Trim(b.String(), "_.")
	if t == "" {
		return "tree"
	}
	return t
}

// jsonOutFor is the results file of tree name: base itself when the run
// measures one tree, else base with "-name" before its extension.
func jsonOutFor(base, name string, trees int) string {
	if trees == 1 {
		return base
	}
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "-" + name + ext
}

// parseSize parses 400MB, 1.5GiB, 2000000 and the like.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	// Longer suffixes first, so "mib" is not taken for "b".
	units := []struct {
		suffix string
		mult   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
		{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(v * mult), nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
}

// logf prints a progress line on stderr, so stdout holds only the report.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// repoRoot is the nearest directory at or above the working directory
// that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the repository (no go.mod found above the working directory)")
		}
		dir = parent
	}
}
