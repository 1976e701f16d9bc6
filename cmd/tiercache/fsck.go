package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/tiered"
)

type fsckOptions struct {
	repair bool
	deep   bool
	grace  time.Duration
}

func newFsckCommand(a *app) *cobra.Command {
	var o fsckOptions
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Check both tiers for broken entries and leftovers; --repair removes them",
		Long: `Fsck checks the local tier and the remote one and prints one line per
problem, naming the tier, the kind of problem, the key when it is known and
the path or object concerned, then a summary on stderr. It exits 0 when it
found nothing (or --repair removed everything it found), 1 when problems
remain (newer-manifest entries, which fail nothing, aside).

It reports broken entries, which a pull would refuse with an integrity
error:
  local   broken-entry       pointer, version, metadata or tree missing or unreadable
  local   tree-mismatch      (--deep) the tree's file count or size differs from its metadata
  local   archive-mismatch   the archive's size, or (--deep) its SHA-256 or content, differs
                             from its metadata: damaged on disk
  remote  corrupt-manifest   the entry's manifest does not parse
  remote  missing-data       the archive the manifest names does not exist
  remote  size-mismatch      the archive's size differs from the manifest's
  remote  checksum-mismatch  (--deep) the archive's SHA-256 differs from the manifest's
  remote  content-mismatch   (--deep) the archive is intact but a pull would refuse it
  remote  newer-manifest     a newer tiercache sharing the bucket wrote the entry: never
                             repaired (nor anything under its key), and not a failure
and what interrupted pushes and pulls left behind, once older than the
grace (younger leftovers may belong to a push still running; a staging
directory counts once its owner is dead and it is a minute old):
  local   stale-staging      the work directory of a push or pull that died
  local   orphan-version     a tree stored but never made current (killed mid-commit)
  local   expired-version    a replaced tree kept past the grace given to its readers
  local   temp-pointer, trash  debris of interrupted commits and deletions
  remote  orphan-data        an archive no manifest names (a killed push, or a version
                             replaced longer than the grace ago)
  remote  stray-marker       an access record of a key with no entry
  remote  stale-upload       a multipart upload never completed (its parts cost storage)
Every command already removes the staging of dead processes and trees past
their grace from the local tier when it opens it, so those rarely show.

--repair removes what fsck reports: a broken entry is deleted (the key then
misses, and the next push stores it again), but of a tree-mismatch on an
entry kept as an archive, only the expanded tree (the next pull --link makes
it again); leftovers are deleted and stale uploads aborted. A newer-manifest
entry is left as it is. It is safe while other jobs use the cache, which is
why leftovers younger than the grace are kept. --grace overrides the grace of
both tiers (by default 10m locally, 1h remotely); --grace 0 collects every
leftover whatever its age, and is only safe when nothing else is using the
cache directory or the bucket. With --read-only, fsck checks but --repair is
refused before anything is written.

--deep also reads everything: it walks every local tree and downloads every
remote archive to verify its size and SHA-256, and its members with the
checks a pull makes (without writing them). It costs the size of the
remote tier in downloads.

With --json, prints {"local": {...}, "remote": {...}, "problems": N,
"unrepaired": N}, where each tier has entries, verified and problems (each
with kind, key, path or object, detail, repaired).`,
		Example: `  # A nightly job: check everything, repair what is broken.
  tiercache fsck --deep --repair

  # After a crash, on a machine nobody else uses: collect all leftovers now.
  tiercache fsck --repair --grace 0

  # Machine-readable.
  tiercache fsck --json | jq '.remote.problems[] | select(.kind == "missing-data") | .key'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runFsck(a, cmd, o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.repair, "repair", false, "remove broken entries and leftovers, abort stale uploads")
	f.BoolVar(&o.deep, "deep", false, "also walk every local tree and download every remote archive to verify it")
	f.Var(ageValue{&o.grace}, "grace", "how old leftovers must be to count, e.g. 30m or 1d (default: 10m local, 1h remote); 0 means any age")
	return cmd
}

// fsckJSON is the --json output of fsck.
type fsckJSON struct {
	tiered.FsckReport
	// Problems counts the problems found; Unrepaired those that remain.
	Problems   int `json:"problems"`
	Unrepaired int `json:"unrepaired"`
}

func runFsck(a *app, cmd *cobra.Command, o fsckOptions) error {
	opts := tiered.FsckOptions{Repair: o.repair, Deep: o.deep, Grace: o.grace}
	if o.grace < 0 {
		return usageErrorf("--grace must not be negative")
	}
	if fl := cmd.Flags().Lookup("grace"); fl.Changed && o.grace == 0 {
		opts.Grace = time.Nanosecond // the libraries' zero means "default"
	}
	if o.repair && a.flags.readOnly {
		// Checked before any tier is opened, so nothing is written.
		return fmt.Errorf("fsck --repair: %w (--read-only or TIERCACHE_READ_ONLY is set)", tiercache.ErrReadOnly)
	}
	c, err := a.openCache(cmd, nil)
	if err != nil {
		return fmt.Errorf("fsck: %w", err)
	}
	rep := tiered.FsckReport{Local: tiercache.CheckReport{Problems: []tiercache.Problem{}}}
	// nil: no local tier yet, and no remote: nothing to check. Without a
	// local tier, Fsck checks the remote alone.
	if c != nil {
		rep, err = c.Fsck(cmd.Context(), opts)
	}
	if err != nil {
		// Print what was found before the failure, then fail.
		if !a.flags.json {
			printProblems(cmd.OutOrStdout(), rep)
		}
		return fmt.Errorf("fsck: %w", err)
	}
	out := fsckJSON{FsckReport: rep, Problems: len(rep.Local.Problems), Unrepaired: rep.Unrepaired()}
	if rep.Remote != nil {
		out.Problems += len(rep.Remote.Problems)
	}
	if a.flags.json {
		if err := writeJSON(cmd, out); err != nil {
			return err
		}
	} else {
		printProblems(cmd.OutOrStdout(), rep)
	}
	a.infof(cmd, "fsck: %s", fsckSummary(rep, o.deep))
	if rep.Remote != nil {
		for _, u := range rep.Remote.Unchecked {
			a.warnf(cmd, "fsck: remote tier: %s", u)
		}
	}
	// Entries a newer tiercache wrote are not this one's to judge: they
	// are reported, never repaired, and fail nothing.
	newer := 0
	if rep.Remote != nil {
		for _, p := range rep.Remote.Problems {
			if p.Kind == remote.ProblemNewerManifest {
				newer++
			}
		}
	}
	if newer > 0 {
		a.infof(cmd, "fsck: left alone %s written by a newer tiercache sharing the bucket; a newer tiercache checks them", count(newer, "entry", "entries"))
	}
	switch unrepaired := out.Unrepaired - newer; {
	case unrepaired == 0:
		return nil
	case o.repair:
		return fmt.Errorf("fsck: %d of %s could not be repaired", unrepaired, problems(out.Problems-newer))
	default:
		return fmt.Errorf("fsck: %s found; 'tiercache fsck --repair' removes them", problems(unrepaired))
	}
}

// maxDetail bounds a problem's detail, in runes; real ones are far shorter.
const maxDetail = 2000

// printProblems prints one line per problem: tier, kind, what, detail.
func printProblems(w io.Writer, rep tiered.FsckReport) {
	line := func(tier tiercache.Tier, kind, key, what, detail string, repaired bool) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s: %s", tier, kind, what)
		if key != "" {
			fmt.Fprintf(&b, " (key %q)", key)
		}
		// Details quote error messages: keep each problem on its line.
		fmt.Fprintf(&b, ": %s", oneLine(detail, maxDetail))
		if repaired {
			b.WriteString(" [repaired]")
		}
		// Object names and upload IDs come from the bucket, paths from
		// the disk: neither may drive the terminal.
		fmt.Fprintln(w, printable(b.String()))
	}
	for _, p := range rep.Local.Problems {
		line(tiercache.TierLocal, p.Kind, p.Key, p.Path, p.Detail, p.Repaired)
	}
	if rep.Remote != nil {
		for _, p := range rep.Remote.Problems {
			line(tiercache.TierRemote, p.Kind, p.Key, p.Object, p.Detail, p.Repaired)
		}
	}
}

// fsckSummary describes each tier's result in one line.
func fsckSummary(rep tiered.FsckReport, deep bool) string {
	tier := func(name tiercache.Tier, entries, verified, found, unrepaired int) string {
		s := fmt.Sprintf("%s tier: %s", name, count(entries, "entry", "entries"))
		if deep {
			s += fmt.Sprintf(" (%d verified)", verified)
		}
		switch {
		case found == 0:
			s += ", no problem"
		case unrepaired == 0:
			s += fmt.Sprintf(", %s, all repaired", problems(found))
		default:
			s += fmt.Sprintf(", %s, %d unrepaired", problems(found), unrepaired)
		}
		return s
	}
	s := tier(tiercache.TierLocal, rep.Local.Entries, rep.Local.Verified, len(rep.Local.Problems), rep.Local.Unrepaired())
	if r := rep.Remote; r != nil {
		s += "; " + tier(tiercache.TierRemote, r.Entries, r.Verified, len(r.Problems), r.Unrepaired())
	} else {
		s += "; no remote tier"
	}
	return s
}

// problems renders a count of problems.
func problems(n int) string { return count(n, "problem", "problems") }

// count renders n things, singular or plural.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
