package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/tiered"
)

type pruneOptions struct {
	local, remote policy.Limits
}

func newPruneCommand(a *app) *cobra.Command {
	var o pruneOptions
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Evict least recently used entries until each tier is within its limits",
		Long: `Prune evicts entries, least recently used first, until the local tier holds
at most --max-entries entries and --max-bytes bytes on disk, and the remote
tier at most --remote-max-entries entries and --remote-max-bytes bytes of
trees. The local tier counts what its entries take on disk (STORED in ls:
the compressed archive, plus the expanded tree where a get or a pull
--link made one), and drops expanded trees, least recently used first,
before it evicts any entry (but not a tree used in the last 10 minutes,
which another process may be reading). What it evicts locally stays on
disk for that 10-minute grace too; fsck --repair --grace 0 deletes such
leftovers at once. The remote counts a tree's uncompressed size
(SIZE in ls), whatever its archive takes. --max-age and --remote-max-age
evict every entry whose last use is older than that, however much room is
left. An entry goes if any limit says so. A limit left out (or 0) is no
limit; at least one must be given. The remote prune also removes data left
behind by interrupted pushes.

Prune says on stderr which entries it evicted, one line each with its tier
(and scope), least recently used first, then how many. With --json, it
prints {"local": N, "remote": N, "evicted": [...]}, each evicted entry as
{"tier", "scope" (when not the default), "key", "bytes"}: bytes as counted
against the tier's limit (on disk locally, tree bytes remotely). Leftovers
of interrupted pushes are not listed.

A use is a push or a pull of the entry (neither pull --lookup-only nor a
push --if-absent that finds the key counts as one). In the local tier, it
is this machine's. In the remote tier, it is a push, a download or a
local hit on any machine; local hits are recorded there at most once an
hour per key and machine. ls shows each entry's LAST ACCESS, stats each
tier's oldest. Remote ages are measured by the S3 server's clock, which
recorded the uses.

With --scope (or TIERCACHE_SCOPE), prune counts and evicts that scope's
entries alone, in each tier, by this machine's clock; data left behind by
interrupted pushes is left to a prune without a scope, which ranks every
scope's entries together.

Sizes are human: 500MB (500,000,000 bytes), 10GiB (10×1024³ bytes), 1.5G
(= 1.5GB), or a plain number of bytes. Ages are Go durations (36h, 90m)
or days with a d (7d, 1.5d, 1d12h).`,
		Example: `  # Keep this machine's cache under 20 GiB.
  tiercache prune --max-bytes 20GiB

  # Nightly job: bound the shared bucket too, and drop what nobody used
  # for two weeks.
  tiercache prune --max-entries 50 --remote-max-bytes 500GB --remote-max-entries 2000 --remote-max-age 14d

  # Drop the local entries this machine has not used for a week.
  tiercache prune --max-age 7d

  # Keep a pull request's scope small, whatever the rest of the bucket holds.
  tiercache prune --scope pr-42 --remote-max-entries 5`,
		Args: exactArgs(0, "no arguments (limits are flags)"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runPrune(a, cmd, o) },
	}
	f := cmd.Flags()
	f.IntVar(&o.local.MaxEntries, "max-entries", 0, "most entries the local tier keeps")
	f.Var(sizeValue{&o.local.MaxBytes}, "max-bytes", "most bytes the local tier's entries take on disk (e.g. 20GiB)")
	f.IntVar(&o.remote.MaxEntries, "remote-max-entries", 0, "most entries the remote tier keeps")
	f.Var(sizeValue{&o.remote.MaxBytes}, "remote-max-bytes", "most tree bytes (uncompressed) the remote tier keeps (e.g. 500GB)")
	f.Var(ageValue{&o.local.MaxAge}, "max-age", "evict local entries not used for longer than this (e.g. 7d, 36h)")
	f.Var(ageValue{&o.remote.MaxAge}, "remote-max-age", "evict remote entries not used for longer than this (e.g. 14d)")
	return cmd
}

func runPrune(a *app, cmd *cobra.Command, o pruneOptions) error {
	if err := o.local.Validate(); err != nil {
		return asUsage(fmt.Errorf("prune: local limits: %w", err))
	}
	if err := o.remote.Validate(); err != nil {
		return asUsage(fmt.Errorf("prune: remote limits: %w", err))
	}
	if o.local.Unlimited() && o.remote.Unlimited() {
		return usageErrorf("prune needs at least one limit: --max-entries, --max-bytes, --max-age, --remote-max-entries, --remote-max-bytes or --remote-max-age")
	}
	c, err := a.openCache(cmd, nil)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if !o.remote.Unlimited() && (c == nil || !c.HasRemote()) {
		return usageErrorf("prune: remote limits given but no remote is configured (--remote or TIERCACHE_REMOTE)")
	}
	var res tiered.PruneResult
	switch {
	case a.flags.readOnly:
		// As the cache would refuse it, before anything is evicted.
		return fmt.Errorf("prune: %w (--read-only or TIERCACHE_READ_ONLY is set)", tiercache.ErrReadOnly)
	case c == nil:
		// No local tier yet, and no remote: nothing to evict.
	default:
		prune := c.PruneTiers
		if a.scopeGiven(cmd) {
			prune = c.PruneScope
			a.verbosef(cmd, "pruning scope %q alone", a.flags.scope)
		}
		rem := o.remote
		rem.OnWarn = func(err error) { a.warnf(cmd, "prune: %s", singleLine(withHint(err))) }
		res, err = prune(cmd.Context(), o.local, rem)
		// What went is said even when the prune then failed.
		for _, ev := range res.Evicted {
			a.infof(cmd, "evicted %s from the %s tier (%s)", describeEvicted(ev), ev.Tier, formatBytes(ev.Bytes))
		}
		if err != nil {
			return fmt.Errorf("prune: %w (evicted %d local and %d remote entries all the same)", err, res.Local, res.Remote)
		}
	}
	if c != nil && c.HasRemote() {
		a.infof(cmd, "pruned %s and %s", count(res.Local, "local entry", "local entries"), count(res.Remote, "remote entry", "remote entries"))
	} else {
		a.infof(cmd, "pruned %s", count(res.Local, "local entry", "local entries"))
	}
	if a.flags.json {
		if res.Evicted == nil {
			res.Evicted = []tiered.Evicted{} // a list, even empty, as rm's
		}
		return writeJSON(cmd, res)
	}
	return nil
}

// describeEvicted names an evicted entry: its key, and its scope unless
// the default.
func describeEvicted(ev tiered.Evicted) string {
	s := strconv.Quote(ev.Key)
	if ev.Key == "" {
		s = "an entry whose key the remote could not tell"
	}
	if ev.Scope != "" {
		s += " of scope " + strconv.Quote(ev.Scope)
	}
	return s
}
