package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/sign"
	"github.com/tiercache/tiercache/tiered"
)

type lsOptions struct {
	tier string
}

func newLsCommand(a *app) *cobra.Command {
	var o lsOptions
	cmd := &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List the entries of both tiers",
		Long: `Ls lists the entries of the local tier and of the remote one: one row per
entry and tier, so a key held by both tiers shows twice. With PREFIX, only
keys starting with it are listed.

PATHS are the paths an entry of several paths (or of one file) was pushed
from, as they were given; a pull restores them by position. It is empty
for an entry pushed from one directory.

SIZE and FILES describe the tree, not the compressed archive (FILES counts
its directories and symlinks too, as the summaries of push and pull do);
STORED is what the entry takes in its tier: the archive, plus, locally, the
expanded tree kept for --link and the library's Get. LAST ACCESS is when a
pull last used the entry, the order prune evicts in; in the remote tier it
is recorded at most every so often per key.

SCOPE shows once an entry of a scope other than the default one is
listed (see --scope; "-" is the default scope); without --scope (or
TIERCACHE_SCOPE), every scope's entries are listed. SIGNED shows once a
signed entry is listed: the fingerprint of the key that signed it (see
keygen), as recorded, unchecked. With TIERCACHE_TRUSTED_KEYS set, ls checks
every signature as a pull would, from the manifests alone (nothing is
downloaded), and TRUSTED says whether a pull would restore that copy:
"yes", "no: unsigned", "no: other key" (signed by a key not trusted),
"NO: BAD SIGNATURE" (edited or swapped since it was signed), or, for a
local copy, "no: kept as a tree" (stored without its archive; a pull
downloads the entry again).

The local tier never needs the remote: with --tier local, the remote is not
contacted at all. Without --tier, a remote that fails is reported as a
warning and the local entries are listed (with --strict, it fails the
command); with --tier remote, it fails the command.

With --json, prints an array of entries: key, scope (when not the
default), description, paths (when set), size, stored, files, created,
last_access, tier, signature (when signed: the public key and signature,
base64), and with TIERCACHE_TRUSTED_KEYS, trusted (true or false) and
untrusted (why not).`,
		Example: `  tiercache ls
  tiercache ls gomod- --tier remote
  TIERCACHE_TRUSTED_KEYS="$(cat ci-key.pub)" tiercache ls --tier remote   # what a pull would restore
  tiercache ls --json | jq -r '.[] | select(.tier == "remote") | .key'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("ls takes at most one argument (a key prefix), got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return runLs(a, cmd, prefix, o)
		},
	}
	cmd.Flags().StringVar(&o.tier, "tier", "", "list only this tier: local or remote")
	_ = cmd.RegisterFlagCompletionFunc("tier", cobra.FixedCompletions([]string{string(tiercache.TierLocal), string(tiercache.TierRemote)}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runLs(a *app, cmd *cobra.Command, prefix string, o lsOptions) error {
	tier := tiercache.Tier(o.tier)
	if tier != "" && tier != tiercache.TierLocal && tier != tiercache.TierRemote {
		return usageErrorf("--tier must be %q or %q", tiercache.TierLocal, tiercache.TierRemote)
	}
	if tier == tiercache.TierRemote && a.flags.remote == "" {
		// Not "no entries": that would read as an empty bucket.
		return usageErrorf("ls --tier remote: no remote is configured (--remote or TIERCACHE_REMOTE)")
	}
	var c *tiered.Cache
	var err error
	if tier == tiercache.TierLocal {
		c, err = openLocalTier(a, cmd)
	} else {
		// Listing both tiers survives a remote failure (the local tier's
		// entries are still listed); listing the remote alone does not.
		a.softRemote = o.tier == ""
		c, err = a.openCache(cmd, nil)
	}
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	var locals, remotes []tiered.Listed
	if c != nil { // nil: no local tier yet, and nothing else to list
		locals, remotes, err = c.ListTrust(cmd.Context())
	}
	if err == nil {
		err = a.remoteErr
	}
	if o.tier == "" && a.survive(cmd, err) {
		a.warnf(cmd, "ls: only the local tier is listed, the remote failed: %s", withHint(err))
		err = nil
	}
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	// With trusted keys, each entry says whether a pull would restore it.
	checked := strings.TrimSpace(a.getenv(envTrustedKeys)) != ""
	entries := make([]lsEntry, 0, len(locals)+len(remotes))
	oneScope := a.scopeGiven(cmd)
	scoped := false
	for _, l := range slices.Concat(locals, remotes) {
		if e := l.Entry; strings.HasPrefix(e.Key, prefix) && (tier == "" || e.Tier == tier) && (!oneScope || e.Scope == a.flags.scope) {
			le := lsEntry{Entry: e, err: l.Untrusted}
			if checked {
				ok := l.Untrusted == nil
				le.Trusted = &ok
				if !ok {
					le.Untrusted = l.Untrusted.Error()
				}
			}
			entries = append(entries, le)
			scoped = scoped || e.Scope != ""
		}
	}
	slices.SortFunc(entries, func(x, y lsEntry) int {
		return cmp.Or(cmp.Compare(tierRank(x.Tier), tierRank(y.Tier)), strings.Compare(x.Scope, y.Scope), strings.Compare(x.Key, y.Key))
	})
	if a.flags.json {
		return writeJSON(cmd, entries)
	}
	if len(entries) == 0 {
		a.infof(cmd, "no entries")
		return nil
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	// The SCOPE and SIGNED columns show once an entry has a scope or a
	// signature, so a cache that uses neither lists as it always did.
	var signed bool
	for _, e := range entries {
		signed = signed || e.Signature != nil
	}
	head := []string{"TIER", "KEY", "SIZE", "STORED", "FILES", "CREATED", "LAST ACCESS", "DESCRIPTION", "PATHS"}
	if checked {
		head = slices.Insert(head, 7, "TRUSTED")
	}
	if signed {
		head = slices.Insert(head, 7, "SIGNED")
	}
	if scoped {
		head = slices.Insert(head, 1, "SCOPE")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, e := range entries {
		row := []string{string(e.Tier), showKey(e.Key), formatBytes(e.Size), formatBytes(e.Stored), fmt.Sprint(e.Files),
			formatTime(e.Created), formatTime(e.LastAccess), oneLine(e.Description, 60), oneLine(strings.Join(e.Paths, " "), 100)}
		if checked {
			row = slices.Insert(row, 7, trustWord(e))
		}
		if signed {
			fp := "-"
			if e.Signature != nil {
				fp = sign.Fingerprint(e.Signature.Key)
			}
			row = slices.Insert(row, 7, fp)
		}
		if scoped {
			row = slices.Insert(row, 1, cmp.Or(oneLine(e.Scope, 40), "-"))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// openLocalTier opens the local tier alone, as a local-only cache: the
// local tier must never need the remote, so no S3 client is made and
// nothing goes over the network. The remote's settings and the scopes
// are still checked, so a mistake in them shows here as anywhere. A local
// tier that does not exist yet is not created: the cache is then nil.
func openLocalTier(a *app, cmd *cobra.Command) (*tiered.Cache, error) {
	dir, err := a.cacheDir()
	if err != nil {
		return nil, err
	}
	if _, _, err := a.s3Config(cmd); err != nil {
		return nil, err
	}
	var opts tiered.Options
	if err := a.trustOptions(cmd, &opts); err != nil { // the scopes, and the trusted keys ls checks against
		return nil, err
	}
	if !localExists(dir) {
		a.verbosef(cmd, "local tier: %s does not exist yet: nothing stored", dir)
		return nil, nil
	}
	a.verbosef(cmd, "local tier: %s (the remote is not contacted)", dir)
	l, err := local.Open(dir, local.Options{NoSync: a.flags.noSync, SyncData: a.flags.syncData})
	if err != nil {
		return nil, fmt.Errorf("local tier: %w", err)
	}
	a.local = l
	return tiered.New(l, tiered.Options{Trust: opts.Trust})
}

// lsEntry is a row of ls: the entry, and with trusted keys whether a
// pull would restore it (see tiered.Listed).
type lsEntry struct {
	tiercache.Entry
	Trusted   *bool  `json:"trusted,omitempty"`
	Untrusted string `json:"untrusted,omitempty"`
	err       error
}

// trustWord is the TRUSTED column of e: "yes", or in a word why a pull
// refuses it.
func trustWord(e lsEntry) string {
	switch {
	case e.err == nil:
		return "yes"
	case errors.Is(e.err, sign.ErrUnsigned) && e.Signature != nil:
		return "no: kept as a tree" // a local copy without its archive
	case errors.Is(e.err, sign.ErrUnsigned):
		return "no: unsigned"
	case errors.Is(e.err, sign.ErrUnknownSigner):
		return "no: other key"
	default:
		return "NO: BAD SIGNATURE"
	}
}

func tierRank(t tiercache.Tier) int {
	if t == tiercache.TierLocal {
		return 0
	}
	return 1
}

// formatTime renders t in UTC to the second; "-" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// oneLine makes free text fit a table cell: control characters become
// spaces and the text is cut to max runes.
// showKey is a key in ls's table: quoted when spaces start or end it,
// which a column would hide ("a" and "a " would look the same).
func showKey(k string) string {
	if k != strings.TrimSpace(k) {
		return strconv.Quote(k)
	}
	return k
}

func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// completeKeys offers the local tier's keys for shell completion. It never
// contacts the remote: completion must be instant.
func completeKeys(a *app, cmd *cobra.Command) ([]string, cobra.ShellCompDirective) {
	if err := a.applyEnv(cmd.Flags()); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	dir, err := a.cacheDir()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	// Opening a missing root would create it: completion has no business
	// creating caches.
	if _, err := os.Stat(dir); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	l, err := local.Open(dir, local.Options{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	entries, err := l.List(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	slices.Sort(keys)
	return keys, cobra.ShellCompDirectiveNoFileComp
}
