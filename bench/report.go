//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// results is everything a run measured; it is written as JSON and rendered
// as Markdown.
type results struct {
	Started     time.Time     `json:"started"`
	Seconds     float64       `json:"total_seconds"`
	Machine     machine       `json:"machine"`
	Config      configJSON    `json:"config"`
	Tree        treeInfo      `json:"tree"`
	Pairs       []*pair       `json:"pairs"`
	Compressed  compressed    `json:"compressed"`
	Reuse       *reuseResult  `json:"reuse,omitempty"`
	GetHits     []getHit      `json:"local_get_hit,omitempty"`
	LocalPrune  []pruneResult `json:"local_prune,omitempty"`
	RemotePrune []pruneResult `json:"remote_prune,omitempty"`
	// RestoreKeyRank is the ranking of a restore key's candidates among
	// the remote prune's entries, before it prunes.
	RestoreKeyRank []rankResult `json:"restore_key_rank,omitempty"`
	Profile        *profileInfo `json:"profile,omitempty"`
	Targets        []target     `json:"targets"`
	Warnings       []string     `json:"warnings,omitempty"`
	// ofMany: the run measured other trees too, so the time at the end
	// of the report is this tree's, not the run's.
	ofMany bool
	// MicroWith names the tree whose results hold the local Get and
	// prune measurements, when another tree's do: a run takes them once.
	MicroWith string `json:"micro_with,omitempty"`
}

type machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemBytes   int64  `json:"mem_bytes"`
	Kernel     string `json:"kernel"`
	FileSystem string `json:"file_system"`
	Go         string `json:"go"`
	Tar        string `json:"tar"`
	Zstd       string `json:"zstd"`
	MC         string `json:"mc"`
	Tiercache  string `json:"tiercache"`
}

type configJSON struct {
	Size     int64   `json:"size"`
	Seed     uint64  `json:"seed"`
	Tree     string  `json:"tree,omitempty"`
	Rounds   int     `json:"rounds"`
	PauseSec float64 `json:"pause_seconds"`
	PauseWhy string  `json:"pause_reason"`
	// TrashPolicy says when restored trees were deleted.
	TrashPolicy string `json:"trash_policy"`
	NoSync      bool   `json:"no_sync"`
	WaitIdle    bool   `json:"wait_idle"`
	DropCaches  bool   `json:"drop_caches"`
	Level       int    `json:"baseline_level"`
	// Scaling: the restores also ran at GOMAXPROCS=1 (--scaling).
	Scaling bool `json:"scaling"`
	// Reuse: the push --base pairs ran (--reuse).
	Reuse bool `json:"reuse"`
}

func (c config) toJSON() configJSON {
	return configJSON{Size: c.size, Seed: c.seed, Rounds: c.rounds, PauseSec: c.pause.Seconds(), NoSync: c.noSync, WaitIdle: c.waitIdle, DropCaches: c.dropCaches, Level: c.level, Scaling: c.scaling, Reuse: c.reuse}
}

type treeInfo struct {
	// Name tells the tree apart among those of the run (see treeSpec).
	Name            string  `json:"name"`
	Source          string  `json:"source"`
	Files           int64   `json:"files"`
	Dirs            int64   `json:"dirs"`
	Symlinks        int64   `json:"symlinks"`
	Bytes           int64   `json:"bytes"`
	GenerateSeconds float64 `json:"generate_seconds,omitempty"`
}

type compressed struct {
	TreeBytes      int64 `json:"tree_bytes"`
	TiercacheBytes int64 `json:"tiercache_bytes"`
	BaselineBytes  int64 `json:"baseline_bytes"`
	Level          int   `json:"baseline_level"`
}

// target is one goal of the issue and whether this run met it.
type target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	Skipped  bool   `json:"skipped,omitempty"`
}

func (r *results) pair(name string) *pair {
	for _, p := range r.Pairs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// evaluate checks the targets. They are reported, never enforced.
func (r *results) evaluate() []target {
	var ts []target
	ratio := func(name, goal string, limit float64) {
		p := r.pair(name)
		if p == nil {
			ts = append(ts, target{Goal: goal, Skipped: true})
			return
		}
		ts = append(ts, target{Goal: goal, Measured: fmt.Sprintf("%.2f× (%.2f s vs %.2f s)", p.Ratio, p.MedianA, p.MedianB), Met: p.Ratio <= limit})
	}
	ratio("cold pull", "cold pull ≤ 0.6× baseline", 0.6)
	ratio("cold pull --no-local", "cold pull ≤ 0.6× baseline, with --no-local", 0.6)
	ratio("push", "push ≤ 0.8× baseline", 0.8)
	ratio("push --no-local", "push ≤ 0.8× baseline, with --no-local", 0.8)
	ratio("warm pull", "warm pull (from the local archive) ≤ 0.6× cp -a", 0.6)
	// The local tier's own cost: what the default pays over --no-local,
	// A against A of the same run (medians).
	modes := func(name, noLocal, goal string, limit float64) {
		a, b := r.pair(name), r.pair(noLocal)
		if a == nil || b == nil || b.MedianA == 0 {
			ts = append(ts, target{Goal: goal, Skipped: true})
			return
		}
		q := a.MedianA / b.MedianA
		ts = append(ts, target{Goal: goal, Measured: fmt.Sprintf("%.2f× (%.2f s vs %.2f s)", q, a.MedianA, b.MedianA), Met: q <= limit})
	}
	modes("push", "push --no-local", "default push ≤ 1.05× push --no-local", 1.05)
	modes("cold pull", "cold pull --no-local", "default cold pull ≤ 1.1× pull --no-local", 1.1)
	if c := r.Compressed; c.BaselineBytes > 0 {
		q := float64(c.TiercacheBytes) / float64(c.BaselineBytes)
		ts = append(ts, target{
			Goal:     fmt.Sprintf("compressed size within 3%% of zstd -%d", c.Level),
			Measured: fmt.Sprintf("%s vs %s (%+.1f%%)", formatBytes(c.TiercacheBytes), formatBytes(c.BaselineBytes), (q-1)*100),
			Met:      q <= 1.03,
		})
	}
	ts = append(ts, r.reuseTargets()...)
	var rss []string
	rssMet := true
	for _, name := range []string{"push", "cold pull", "warm pull", "push --no-local", "cold pull --no-local", reuseV2Pair} {
		if p := r.pair(name); p != nil {
			rss = append(rss, fmt.Sprintf("%s %s", name, formatBytes(p.PeakRSSA)))
			rssMet = rssMet && p.PeakRSSA <= 256<<20
		}
	}
	ts = append(ts, target{Goal: "peak RSS ≤ 256 MiB for push and pull", Measured: strings.Join(rss, ", "), Met: rssMet})
	if r.MicroWith != "" {
		return ts // the rest is in the report of r.MicroWith
	}
	if len(r.GetHits) == 0 {
		ts = append(ts, target{Goal: "local Get hit < 1 ms median, flat 10 → 100k entries", Skipped: true})
	} else {
		lo, hi := math.Inf(1), 0.0
		var ms []string
		for _, g := range r.GetHits {
			lo, hi = min(lo, g.MedianMicros), max(hi, g.MedianMicros)
			ms = append(ms, fmt.Sprintf("%d: %.0f µs", g.Entries, g.MedianMicros))
		}
		// "Flat" is read as: the slowest median within twice the fastest.
		ts = append(ts, target{
			Goal:     "local Get hit < 1 ms median, flat 10 → 100k entries",
			Measured: strings.Join(ms, ", ") + fmt.Sprintf(" (max/min %.2f)", hi/lo),
			Met:      hi < 1000 && hi <= 2*lo,
		})
	}
	var evict *pruneResult
	for i := range r.LocalPrune {
		if r.LocalPrune[i].Evicted > 0 {
			evict = &r.LocalPrune[i]
		}
	}
	if evict == nil {
		ts = append(ts, target{Goal: "local prune at 10k entries < 2 s", Skipped: true})
	} else {
		ts = append(ts, target{Goal: "local prune at 10k entries < 2 s", Measured: fmt.Sprintf("%.2f s (%s)", evict.Seconds, evict.Operation), Met: evict.Seconds < 2})
	}
	return ts
}

func (r *results) writeJSON(name string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(b, '\n'), 0o644)
}

// markdown renders the report.
func (r *results) markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "## tiercache benchmark, %s tree, %s\n\n", r.Tree.Name, r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Machine: %s, %d cores, %s RAM, Linux %s, %s\n", m.CPU, m.Cores, formatBytes(m.MemBytes), m.Kernel, m.FileSystem)
	fmt.Fprintf(w, "- Tools: %s; %s; %s; %s; harness %s\n", m.Tiercache, m.Tar, m.Zstd, m.MC, m.Go)
	fmt.Fprintf(w, "- Tree: %s: %s in %d files, %d dirs, %d symlinks\n", r.Tree.Source, formatBytes(r.Tree.Bytes), r.Tree.Files, r.Tree.Dirs, r.Tree.Symlinks)
	sync := "default (the local tier publishes unflushed entries marked with the boot ID, which a crash invalidates; the baselines never sync)"
	if r.Config.NoSync {
		sync = "off (--no-sync, like the baselines)"
	}
	rounds := fmt.Sprintf("%d rounds per pair, interleaved A B A B; medians", r.Config.Rounds)
	if r.Config.Rounds == 1 {
		rounds = "1 round per pair (no medians: use --rounds 3 or more)"
	}
	if r.Config.WaitIdle {
		rounds += "; --wait-idle: each timed command waited for an idle CPU and fast file creation"
	}
	caches := "page cache not dropped"
	if r.Config.DropCaches {
		caches = "--drop-caches: before every timed command the page cache was dropped and the command's inputs (the tree, the object, the cached copy) and programs read back in"
	}
	fmt.Fprintf(w, "- %s; `sync` before every timed command; restored trees %s; %s. tiercache fsync: %s\n\n", rounds, r.Config.TrashPolicy, caches, sync)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "**Warning: %s.**\n\n", warn)
	}

	// The noise of every timed command, for the warnings below.
	busiest, fastest, slowest, stalls := 0.0, math.Inf(1), 0.0, int64(0)
	for _, p := range r.Pairs {
		for _, s := range slices.Concat(p.A, p.B, p.OneProc) {
			busiest = max(busiest, s.BusyBefore)
			fastest, slowest = min(fastest, s.CreateMicros), max(slowest, s.CreateMicros)
			stalls = max(stalls, s.MemStalls)
		}
	}
	rerun := " Rerun with --wait-idle."
	if r.Config.WaitIdle {
		rerun = " --wait-idle gave up waiting at least once."
	}
	if slowest > max(50, 3*fastest) {
		fmt.Fprintf(w, "**Warning: creating a file took up to %.0f µs just before some timed commands, against %.0f µs at best (see the rounds table): the file system was slowed, probably by recent deletions; rounds that followed it are slow for reasons that have nothing to do with the commands.%s**\n\n", slowest, fastest, rerun)
	}
	if stalls >= memStallsWarn {
		rerun := " Rerun with --drop-caches (as root)."
		if r.Config.DropCaches {
			rerun = ""
		}
		fmt.Fprintf(w, "**Warning: during some timed commands, allocations had to wait for memory to be reclaimed or compacted up to %d times (see the rounds table): the page cache was full, and those commands paid for emptying it.%s**\n\n", stalls, rerun)
	}
	if busiest >= 0.2 {
		fmt.Fprintf(w, "**Warning: the machine was busy with other work (up to %.0f%% of its CPU just before a timed command); these timings are noisy.%s**\n\n", busiest*100, rerun)
	}
	fmt.Fprintln(w, "| pair | tiercache (A) | baseline (B) | A/B | CPU A | CPU B | peak RSS A | peak RSS B |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range r.Pairs {
		fmt.Fprintf(w, "| %s | %.2f s | %.2f s | **%.2f×** | %.2f s | %.2f s | %s | %s |\n",
			p.Name, p.MedianA, p.MedianB, p.Ratio, p.CPUA, p.CPUB, formatBytes(p.PeakRSSA), formatBytes(p.PeakRSSB))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| pair | A rounds (s) | B rounds (s) | machine busy before, max | file creation before, µs (A; B) | memory stalls during (A; B) |")
	fmt.Fprintln(w, "|---|---|---|---:|---|---|")
	for _, p := range r.Pairs {
		busy := 0.0
		secs := func(ss []sample) (string, string, string) {
			var v, c, m []string
			for _, s := range ss {
				v = append(v, fmt.Sprintf("%.2f", s.Seconds))
				c = append(c, fmt.Sprintf("%.0f", s.CreateMicros))
				if s.MemStalls < 0 {
					m = append(m, "?")
				} else {
					m = append(m, fmt.Sprint(s.MemStalls))
				}
				busy = max(busy, s.BusyBefore)
			}
			return strings.Join(v, ", "), strings.Join(c, ", "), strings.Join(m, ", ")
		}
		a, ca, ma := secs(p.A)
		b, cb, mb := secs(p.B) // both before busy is read
		fmt.Fprintf(w, "| %s | %s | %s | %.0f%% | %s; %s | %s; %s |\n", p.Name, a, b, busy*100, ca, cb, ma, mb)
	}
	fmt.Fprintln(w)
	r.scalingTable(w)
	for _, p := range r.Pairs {
		fmt.Fprintf(w, "- %s: A = `%s`; B = `%s`\n", p.Name, p.CommandA, p.CommandB)
	}
	if r.Config.Scaling {
		fmt.Fprintf(w, "- GOMAXPROCS=1: command A with `GOMAXPROCS=1` in its environment, run after A and B in each round; default is Go's own GOMAXPROCS (the usable CPUs: %d here, unless a container limit lowers it; the harness unsets any GOMAXPROCS it was given). Below 1× the default is faster.\n", m.Cores)
	}
	fmt.Fprintln(w, "- CPU is user + system time of the process (of the whole pipeline for B); peak RSS of the process (of the largest pipeline process for B), from GNU time. MinIO's own CPU and memory are not counted on either side.")
	for _, p := range r.Pairs {
		if len(p.A) > 0 && !p.A[0].RSSExact {
			fmt.Fprintln(w, "- **GNU time was not installed: the peak RSS figures are upper bounds that include the harness's own peak.**")
			break
		}
	}
	fmt.Fprintln(w)

	if c := r.Compressed; c.BaselineBytes > 0 {
		fmt.Fprintln(w, "| compressed size | bytes | of the tree |")
		fmt.Fprintln(w, "|---|---:|---:|")
		fmt.Fprintf(w, "| tiercache archive (level 3) | %s | %.1f%% |\n", formatBytes(c.TiercacheBytes), 100*float64(c.TiercacheBytes)/float64(c.TreeBytes))
		fmt.Fprintf(w, "| tar --format=posix \\| zstd -T0 -%d | %s | %.1f%% |\n", c.Level, formatBytes(c.BaselineBytes), 100*float64(c.BaselineBytes)/float64(c.TreeBytes))
		fmt.Fprintln(w)
	}
	r.reuseMarkdown(w)
	if r.MicroWith != "" {
		fmt.Fprintf(w, "Local Get and prune: measured once per run, see the %s tree's report.\n\n", r.MicroWith)
	}
	if len(r.GetHits) > 0 {
		fmt.Fprintln(w, "| local Get hit | median | p90 | p99 | setup (fill) |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
		for _, g := range r.GetHits {
			fmt.Fprintf(w, "| %d entries | %.0f µs | %.0f µs | %.0f µs | %.1f s |\n", g.Entries, g.MedianMicros, g.P90Micros, g.P99Micros, g.SetupSeconds)
		}
		fmt.Fprintln(w)
	}
	if len(r.LocalPrune)+len(r.RemotePrune) > 0 {
		fmt.Fprintln(w, "| prune at 10k entries | time | evicted | setup (fill) |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
		for _, p := range append(append([]pruneResult(nil), r.LocalPrune...), r.RemotePrune...) {
			fmt.Fprintf(w, "| %s: %s | %.3f s | %d | %.1f s |\n", p.Tier, p.Operation, p.Seconds, p.Evicted, p.SetupSeconds)
		}
		fmt.Fprintln(w)
	}
	if len(r.RestoreKeyRank) > 0 {
		fmt.Fprintln(w, "| restore-key candidates, remote (S3 on MinIO) | entries | time |")
		fmt.Fprintln(w, "|---|---:|---:|")
		for _, k := range r.RestoreKeyRank {
			fmt.Fprintf(w, "| %s | %d | %.3f s |\n", k.Way, k.Entries, k.Seconds)
		}
		fmt.Fprintln(w)
	}
	if r.Profile != nil {
		fmt.Fprintf(w, "Profiles and `go tool pprof -top` output in %s.\n\n", r.Profile.Dir)
		fmt.Fprintln(w, "| in-process phase | wall | CPU | cores busy | peak Go heap | file creation before |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
		for _, ph := range r.Profile.Phases {
			fmt.Fprintf(w, "| %s | %.2f s | %.2f s | %.2f | %s | %.0f µs |\n", ph.Name, ph.Seconds, ph.CPUSeconds, ph.CPUSeconds/ph.Seconds, formatBytes(ph.PeakHeapBytes), ph.CreateMicros)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| target | measured | met |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range r.Targets {
		met := "no"
		switch {
		case t.Skipped:
			met, t.Measured = "not measured", "—"
		case t.Met:
			met = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Goal, t.Measured, met)
	}
	took := "Total run time"
	if r.ofMany {
		took = "Time on this tree"
		if r.MicroWith == "" && (len(r.GetHits) > 0 || len(r.LocalPrune) > 0) {
			took += ", the micro-benchmarks included"
		}
	}
	fmt.Fprintf(w, "\n%s %s.\n\n", took, (time.Duration(r.Seconds * float64(time.Second))).Round(time.Second))
}

// scalingTable renders, with --scaling, the restores at the default
// GOMAXPROCS beside GOMAXPROCS=1.
func (r *results) scalingTable(w io.Writer) {
	var ps []*pair
	for _, p := range r.Pairs {
		if len(p.OneProc) > 0 {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return
	}
	fmt.Fprintln(w, "| restore | default | GOMAXPROCS=1 | default / GOMAXPROCS=1 | CPU default | CPU GOMAXPROCS=1 | peak RSS GOMAXPROCS=1 | GOMAXPROCS=1 rounds (s) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|")
	for _, p := range ps {
		var v []string
		for _, s := range p.OneProc {
			v = append(v, fmt.Sprintf("%.2f", s.Seconds))
		}
		fmt.Fprintf(w, "| %s | %.2f s | %.2f s | **%.2f×** | %.2f s | %.2f s | %s | %s |\n",
			p.Name, p.MedianA, p.MedianOneProc, p.RatioOneProc, p.CPUA, p.CPUOneProc, formatBytes(p.PeakRSSOneProc), strings.Join(v, ", "))
	}
	fmt.Fprintln(w)
}

// summary renders, for a run of several trees, each pair's ratios side by
// side, one column per tree.
func summary(w io.Writer, all []*results, total time.Duration) {
	fmt.Fprintln(w, "## Summary: tiercache / baseline, medians, per tree")
	fmt.Fprintln(w)
	head, rule := "| pair |", "|---|"
	for _, r := range all {
		head += fmt.Sprintf(" %s (%s) |", r.Tree.Name, formatBytes(r.Tree.Bytes))
		rule += "---:|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, rule)
	row := func(label string, f func(*pair) (float64, bool)) {
		line, some := "| "+label+" |", false
		for _, r := range all {
			v, ok := 0.0, false
			if p := r.pair(label); p != nil {
				v, ok = f(p)
			}
			if ok {
				line += fmt.Sprintf(" %.2f× |", v)
				some = true
			} else {
				line += " — |"
			}
		}
		if some {
			fmt.Fprintln(w, line)
		}
	}
	var names []string
	for _, r := range all {
		for _, p := range r.Pairs {
			if !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
		}
	}
	for _, n := range names {
		row(n, func(p *pair) (float64, bool) { return p.Ratio, p.MedianB > 0 })
	}
	fmt.Fprintln(w)
	if slices.ContainsFunc(all, func(r *results) bool { return r.Config.Scaling }) {
		fmt.Fprintln(w, "Default GOMAXPROCS / GOMAXPROCS=1, tiercache's medians:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, rule)
		for _, n := range names {
			row(n, func(p *pair) (float64, bool) { return p.RatioOneProc, p.MedianOneProc > 0 })
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Total run time %s, for %d trees.\n", total.Round(time.Second), len(all))
}

// machineInfo describes the machine and the tools measured.
func machineInfo(ctx context.Context, b *bench) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown CPU", FileSystem: "unknown file system"}
	if f, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(f))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if f, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(f), "MemTotal: %d kB", &kb); err == nil {
			m.MemBytes = kb << 10
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	var st unix.Statfs_t
	if unix.Statfs(b.work, &st) == nil {
		m.FileSystem = fsName(int64(st.Type))
	}
	first := func(name string, args ...string) string {
		out, err := b.exec(ctx, b.plainCmd(ctx, name, args...))
		if err != nil {
			return "unknown"
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return strings.TrimSpace(line)
	}
	m.Tar = first("tar", "--version")
	m.Zstd = first("zstd", "--version")
	if f := strings.Fields(m.Zstd); len(f) > 0 && strings.HasPrefix(m.Zstd, "***") {
		// "*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***"
		for _, w := range f {
			if strings.HasPrefix(w, "v") {
				m.Zstd = "zstd " + strings.TrimSuffix(w, ",")
			}
		}
	}
	m.MC = "unknown"
	if bi, err := buildinfo.ReadFile(b.mc); err == nil {
		m.MC = bi.Main.Path + "@" + bi.Main.Version
	}
	m.Tiercache = "tiercache " + strings.TrimPrefix(first(b.tiercache, "version"), "tiercache ")
	return m
}

func fsName(magic int64) string {
	switch magic {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x2fc12fc1:
		return "zfs"
	}
	return fmt.Sprintf("file system 0x%x", magic)
}

// formatBytes renders n in binary units.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// memStallsWarn is the number of memory stalls during one timed command
// from which the report warns: a few happen on any busy machine, while a
// full page cache causes dozens per command.
const memStallsWarn = 20
