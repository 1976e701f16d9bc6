package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/tiered"
)

func newStatsCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Print entries and bytes per tier",
		Long: `Stats prints, for each tier, how many entries it holds, their total tree
size and file count, the bytes they take in the tier (STORED: archives,
plus the expanded trees the local tier keeps for --link and the library's
Get), the creation times of the oldest and newest, and the last access of
the least recently used (OLDEST ACCESS: what prune --max-age and
--remote-max-age go by). It counts every scope's entries, as ls lists
them; with --scope (or TIERCACHE_SCOPE), that scope's alone.

With --json, prints {"local": {...}, "remote": {...}} with the fields
entries, bytes, files, stored, oldest, newest, oldest_access; "remote" is
absent without a remote, and the times are absent for an empty tier.

The local tier never needs the remote: a remote that fails is reported as
a warning, the local tier's line is still printed, and with --json
"remote" gives way to "remote_error", the failure's message. With
--strict, a remote failure fails the command.`,
		Example: `  tiercache stats
  tiercache stats --json | jq .remote.bytes`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runStats(a, cmd) },
	}
}

// statsJSON is what stats --json prints.
type statsJSON struct {
	tiered.TierStats
	// RemoteError is why the remote tier's aggregates are missing, when
	// the command survived its failure.
	RemoteError string `json:"remote_error,omitempty"`
}

func runStats(a *app, cmd *cobra.Command) error {
	a.softRemote = true
	c, err := a.openCache(cmd, nil)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	var st tiered.TierStats
	switch {
	case c == nil: // no local tier yet, and no remote
	case a.scopeGiven(cmd):
		st, err = c.ScopeStats(cmd.Context())
	default:
		st, err = c.TierStats(cmd.Context())
	}
	if err == nil {
		err = a.remoteErr
	}
	out := statsJSON{TierStats: st}
	if a.survive(cmd, err) {
		a.warnf(cmd, "stats: the remote tier is left out, it failed: %s", withHint(err))
		out.RemoteError = singleLine(err.Error())
		err = nil
	}
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if a.flags.json {
		return writeJSON(cmd, out)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tENTRIES\tSIZE\tSTORED\tFILES\tOLDEST\tNEWEST\tOLDEST ACCESS")
	row := func(name tiercache.Tier, s tiercache.Stats) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", name, s.Entries, formatBytes(s.Bytes), formatBytes(s.Stored), s.Files, formatTime(s.Oldest), formatTime(s.Newest), formatTime(s.OldestAccess))
	}
	row(tiercache.TierLocal, st.Local)
	if st.Remote != nil {
		row(tiercache.TierRemote, *st.Remote)
	}
	return tw.Flush()
}
