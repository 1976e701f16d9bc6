package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/tiered"
)

type pullOptions struct {
	key         string
	restoreKeys []string
	failOnMiss  bool
	link        bool
	lookupOnly  bool
	skipSymlink bool
	noBase      bool
	match       []string
}

func newPullCommand(a *app) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull KEY PATH...",
		Short: "Restore the tree stored under KEY into PATH (a directory, or several paths)",
		Long: `Pull looks KEY up in the local tier, then in the remote, and restores the
tree into DIR, writing every file once.

The local tier keeps each entry as its compressed archive, the same bytes
as the remote object. A local hit extracts that archive into DIR, checking
it against its recorded SHA-256 as a download is checked; a damaged local
copy is dropped, with a warning, and fetched again. A download (once
however many jobs on the machine ask at once) is extracted into DIR while
its bytes are kept as the local archive, which is committed only once
verified.

When KEY is not stored, each --restore-key PREFIX is tried in the order
given: an entry whose key is PREFIX itself, else the newest entry whose
key starts with PREFIX, in either tier, is restored: the newest by the
remote's clock, from one listing of its keys, so every machine picks the
same one. With --read-scope, KEY is looked up in --scope's entries, then
in each read scope's in turn; then each PREFIX in each scope in turn, the
newest match decided within a scope before the next is tried.

With TIERCACHE_TRUSTED_KEYS, only entries signed by one of those keys are
restored (see keygen): an unsigned entry, one signed by another key, or
one changed since it was signed is refused before any of its bytes is
used, with a warning naming why, and the pull goes on as for a miss (with
--strict, it fails). A local copy serves only if it was fetched signed.

A miss is not an error: pull exits 0 and leaves DIR empty or as it
was, unless --fail-on-miss is given (exit 3).

A cache outage must not fail the build: when the remote fails (unreachable,
timing out, refusing the credentials, no such bucket, not an S3 endpoint),
pull prints a one-line warning naming the cause, goes on with the local
tier alone, and if that has nothing, exits 0 as a miss with DIR exactly as
it was. An entry that fails verification is skipped as a miss, with a
warning, and the next candidate is tried; one whose archive does not
match its manifest is also removed from the remote (not with --read-only,
nor from a read scope), so the next push stores it again. With --strict
such failures exit 1. A failure to write DIR, or the local tier's disk
being full, always fails the pull.

DIR is created if absent. Entries of the tree replace what DIR holds at the
same paths, as 'tar -x' does; other files in DIR are left alone. A file,
directory or symlink in DIR that is in the way of an entry is removed first,
and symlinks in DIR are never followed, so a pull never writes outside DIR.
Nor into the local tier: where it lies below DIR (pull KEY ~/.cache), the
entry's member at its place (or a file where one of its parents is) is
left out, with a warning, and a DIR that is the local tier or inside it is
refused, with --no-local too. The tree is extracted into a directory beside DIR and moved in once
verified, so a corrupt or truncated archive leaves DIR as it was. It keeps
permission bits, mtimes, symlinks and hardlinks.

PATH is usually one directory (DIR above). An entry pushed from several
paths (or from one file) is restored by position: name as many PATHs as
the push did, in the same order; the first gets the entry's first path,
and so on, whatever they are called here (ls shows the entry's paths). A
directory is restored as DIR is, a file replaces a file. An entry that
holds another number of paths than the pull names, KEY's own or a restore
key's, is skipped, with a note: a job whose list of paths changed misses,
and its push replaces the entry. A "~" the shell did not expand is
expanded. On a miss, only a single DIR is created.

--match PATTERN (repeatable), instead of PATHs, restores an entry pushed
with 'push --match' to the paths it records, below the current directory:
packages/a/node_modules goes to ./packages/a/node_modules, created if
missing. The recorded names are whoever pushed says, so an entry is
restored only if each name is a plain relative path (no "..", not
absolute) that one of the pull's own patterns matches, none inside
another, and no symlink lies on the way to where it goes; otherwise it is
skipped with a note, as an entry of another shape is, and nothing of it
is written.

Symlinks are restored as symlinks. Where the system will not create them
(Windows without the privilege or Developer Mode, a file system without
symlinks), the pull fails naming the first; with --skip-symlinks it skips
them and warns, saying how many. The local tier keeps them either way.

With --no-local (for machines that live for one job), nothing is kept in
the local tier.

A download takes from the local tier what it already holds: when the
local tier keeps an earlier version (the entry last pulled into the same
PATHs on this machine, or one of the newest local entries under a
--restore-key: the one sharing most), the frames of the archive that it
shares with it (compared by their SHA-256 in the new archive's verified
index) are read from the local copy and only the others are downloaded.
Each frame so read must hash to what the index records, or it is
downloaded after all, and the archive is checked whole against its
manifest as any download is. The summary says how much came from the
local copy, --verbose why nothing did. --no-base downloads every byte.

--link hardlinks DIR's files from an expanded tree kept in the local tier
(made from the archive the first time, once however many jobs ask)
instead of writing them: the fastest warm pull, but DIR's files then share
their inodes with the cache, so changing a file in place (rather than
replacing it) corrupts the cache entry. Use it only for trees that are
read, not written, such as Go's read-only module cache. Expanded trees
count against the local limits, and prune removes them before archives.
With TIERCACHE_TRUSTED_KEYS set, --link is not used (a note says so):
such a pull restores only what the signed archive holds, extracting it,
never a tree that other jobs' links could have changed.

--lookup-only finds what pull would restore and restores nothing, like
actions/cache's lookup-only: KEY and the restore keys are looked up as a
pull looks them up (the local tier, then the remote, in the same order),
and the outputs, --json, the summary and the exit codes (--fail-on-miss
included) are a pull's (a DIR the pull would refuse fails it too), but
nothing is downloaded, DIR is not created, and no access is recorded. Only manifests are read from the remote,
never an archive, so it costs a few small requests; a local archive is
not checked against its digest. Use it to skip a job whose cache is
already stored.

With GITHUB_OUTPUT set (GitHub Actions), pull appends to that file:
  cache-hit=true|false       true only when the key restored is KEY, compared
                             ignoring case as actions/cache compares keys
  cache-matched-key=KEY      the key restored (empty on a miss)
  cache-primary-key=KEY      KEY as given`,
		Example: `  # Restore the Go module cache, falling back to the newest gomod-* entry.
  tiercache pull "gomod-$(sha256sum go.sum | cut -c1-16)" --restore-key gomod- "$HOME/go/pkg/mod"

  # Several fallbacks, tried in order.
  tiercache pull deps-linux-$HASH --restore-key deps-linux- --restore-key deps- ./deps

  # Fail (exit 3) when nothing matches; machine-readable result.
  tiercache pull build-$SHA ./out --fail-on-miss --json

  # An entry of two paths, pushed as 'tiercache push KEY ~/go/pkg/mod ~/.cache/go-build'.
  tiercache pull "go-$(sha256sum go.sum | cut -c1-16)" --restore-key go- ~/go/pkg/mod ~/.cache/go-build

  # Every node_modules of a monorepo, where 'push --match' found them.
  tiercache pull "npm-$(sha256sum package-lock.json | cut -c1-16)" --restore-key npm- --match '**/node_modules'

  # Is it stored? Download nothing; exit 3 if not.
  tiercache pull build-$SHA ./out --lookup-only --fail-on-miss`,
		Args: keyPathsArgs(&o.key, &o.match),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 && o.key == "" {
				return completeKeys(a, cmd)
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			key, paths := splitKeyPaths(o.key, args)
			return runPull(a, cmd, key, paths, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.key, "key", "", "the key (instead of the first argument)")
	addRestoreKeyFlags(f, &o.restoreKeys)
	f.BoolVar(&o.failOnMiss, "fail-on-miss", false, "exit with code 3 when nothing matches")
	f.BoolVar(&o.link, "link", false, "hardlink files from the local tier instead of copying (DIR then shares inodes with the cache)")
	f.BoolVar(&o.lookupOnly, "lookup-only", false, "only find what would be restored: download nothing, leave DIR alone")
	f.BoolVar(&o.noBase, "no-base", false, "download every byte, even what an earlier version in the local tier holds")
	f.StringArrayVar(&o.match, "match", nil, "restore an entry pushed with --match to the paths it records below the current directory, each matched by a glob `PATTERN`, instead of PATHs; repeatable; !PATTERN refuses an entry recording what it matches")
	f.BoolVar(&o.skipSymlink, "skip-symlinks", false, "skip, with a warning, the symlinks this system will not create (Windows without Developer Mode) instead of failing")
	return cmd
}

// pullJSON is the --json output of pull.
type pullJSON struct {
	// Hit is true when KEY or a restore key matched.
	Hit bool `json:"hit"`
	// Key is the key restored (KEY or a restore key's match); empty on a
	// miss.
	Key string `json:"key"`
	// RequestedKey is KEY as given; Exact tells whether it matched itself.
	RequestedKey string `json:"requested_key"`
	Exact        bool   `json:"exact"`
	// Tier is "local" when the tree was in the local tier, "remote" when
	// it was downloaded; empty on a miss.
	Tier tiercache.Tier `json:"tier"`
	// Dir is the first PATH, Paths all of them, as given.
	Dir   string   `json:"dir"`
	Paths []string `json:"paths"`
	// Bytes and Files describe the restored tree.
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
	// DownloadedBytes is the compressed size downloaded (0 on a local hit).
	DownloadedBytes int64 `json:"downloaded_bytes"`
	// Base is the local entry whose archive supplied FromBaseBytes of
	// the archive instead of the remote (see --no-base); absent if none.
	Base          string  `json:"base,omitempty"`
	FromBaseBytes int64   `json:"from_base_bytes,omitempty"`
	Seconds       float64 `json:"seconds"`
	// Error is the remote or integrity failure that made the pull a miss
	// (or, on a hit from the local tier, that it went on without).
	Error string `json:"error,omitempty"`
	// Skipped lists the restore-key candidates left out for holding
	// another number of paths, with why.
	Skipped []string `json:"skipped,omitempty"`
	// Scope is the scope Key was found in (see --scope, --read-scope);
	// absent for the default scope.
	Scope string `json:"scope,omitempty"`
	// Untrusted lists the entries refused for their signature (see
	// TIERCACHE_TRUSTED_KEYS), each with why.
	Untrusted []string `json:"untrusted,omitempty"`
	// Refused lists the remote entries that failed their checks
	// (corrupt, hostile, beyond the limits, or too large for the room
	// left), each skipped as a miss while the lookup went on.
	Refused []string `json:"refused,omitempty"`
	// LeftOut lists the members of the entry a pull left out because
	// this machine's local tier is where they would go, as paths below
	// the PATH given.
	LeftOut []string `json:"left_out,omitempty"`
	// Untouched lists the PATHs the entry restored holds nothing for
	// (missing when it was pushed), left as they were.
	Untouched []string `json:"untouched,omitempty"`
	// Dropped is why a copy in the local tier was found damaged and
	// dropped, on a hit or a miss.
	Dropped string `json:"dropped,omitempty"`
	// LookupOnly tells that nothing was restored (--lookup-only): Tier,
	// Bytes and Files describe the entry found.
	LookupOnly bool `json:"lookup_only,omitempty"`
}

func runPull(a *app, cmd *cobra.Command, key string, given []string, o pullOptions) error {
	if err := checkKey("pull", key); err != nil {
		return err
	}
	var paths []string
	var resolve func([]string) ([]string, error)
	var wd string
	if len(o.match) > 0 {
		var err error
		if wd, err = matchRoot("pull", o.match); err != nil {
			return err
		}
		resolve = tiered.ResolveMatched(wd, o.match)
	} else {
		// As push checks them: an empty PATH (an unset variable) would
		// be the working directory.
		if err := tiercache.ValidatePaths(given); err != nil {
			return asUsage(fmt.Errorf("pull %q: %w", key, err))
		}
		var err error
		if paths, err = a.expandPaths(given); err != nil {
			return fmt.Errorf("pull %q: %w", key, err)
		}
		abs, err := distinctPaths(given, paths)
		if err != nil {
			return fmt.Errorf("pull %q: %w", key, err)
		}
		if root, err := a.cacheDir(); err == nil {
			if root, err = filepath.Abs(root); err == nil {
				if err := outsideTier(root, given, abs); err != nil {
					return fmt.Errorf("pull %q: %w", key, err)
				}
			}
		}
	}
	for _, p := range o.restoreKeys {
		if err := tiercache.ValidateKey(p); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("pull %q: restore key %q: %w", key, p, err)}
		}
	}
	fail := func(err error) error { return fmt.Errorf("pull %q: %w", key, err) }
	prog := a.newProgress(cmd.ErrOrStderr())
	a.keepTrash = true
	a.softRemote = true
	a.lookupOnly = o.lookupOnly
	defer a.noteTrash()
	c, err := a.openCache(cmd, prog.transfer)
	if err != nil && (a.remoteErr == nil || err != a.remoteErr) {
		return fail(err)
	}
	ctx := cmd.Context()
	start := time.Now()
	var hit tiered.Hit
	var ok bool
	if c == nil {
		// --no-local, or a lookup with no local tier yet: nothing else
		// to pull from.
		err = a.remoteErr
	} else {
		var names []string // PATHs as typed: an entry of the same ones reordered restores by name
		if resolve == nil {
			names = given
		}
		if o.link && !o.lookupOnly && strings.TrimSpace(a.getenv(envTrustedKeys)) != "" {
			a.infof(cmd, "pull %q: --link is not used with %s: the pull extracts the archive, which the signature covers, rather than link a tree that other jobs' links could have changed", key, envTrustedKeys)
		}
		hit, ok, err = c.PullPaths(ctx, key, o.restoreKeys, paths, tiered.PullOptions{Link: o.link, Strict: a.flags.strict, LookupOnly: o.lookupOnly, SkipSymlinks: o.skipSymlink, NoBase: o.noBase, Resolve: resolve, Names: names})
	}
	prog.finish()
	shown := given // for messages
	if resolve != nil {
		// The paths the entry found records, as names below wd.
		paths, given = hit.Paths, make([]string, len(hit.Paths))
		for i, p := range paths {
			rel, _ := filepath.Rel(wd, p)
			given[i] = filepath.ToSlash(rel)
		}
		shown = given
		if !ok {
			shown = []string{"the paths --match " + strings.Join(o.match, ", ") + " names"}
		}
	}
	var dir string
	if len(given) > 0 {
		dir = given[0]
	}
	out := pullJSON{RequestedKey: key, Dir: dir, Paths: given, LookupOnly: o.lookupOnly, Skipped: hit.Skipped}
	for _, s := range hit.Skipped {
		a.infof(cmd, "pull %q: skipped %s", key, s)
	}
	// An entry refused is a miss, or passed over for the one restored.
	missed := "treated as a miss"
	if ok {
		missed = "passed over"
	}
	for _, u := range hit.Untrusted {
		// Soft, as every remote failure: the job builds without it.
		out.Untrusted = append(out.Untrusted, singleLine(u.Error()))
		a.warnf(cmd, "pull %q: %s; %s", key, singleLine(u.Error()), missed)
	}
	for _, r := range hit.Refused {
		out.Refused = append(out.Refused, singleLine(r.Error()))
		a.warnf(cmd, "pull %q: %s; %s", key, withHint(r), missed)
	}
	// A remote that failed, before the lookup or during it: the pull
	// goes on as a miss (or with what the local tier held), DIR as it
	// was.
	survived := cmp.Or(err, hit.RemoteErr, a.remoteErr)
	if survived != nil && !a.survive(cmd, survived) {
		return fail(survived)
	}
	if survived != nil {
		out.Error = singleLine(survived.Error())
		what := fmt.Sprintf("treated as a miss, %s left as it was", strings.Join(shown, ", "))
		switch {
		case ok && o.lookupOnly:
			what = "looked up in the local tier only"
		case ok:
			what = "restoring from the local tier only"
		case o.lookupOnly:
			what = "treated as a miss"
		}
		a.warnf(cmd, "pull %q: %s: %s", key, what, withHint(survived))
	}
	for _, p := range hit.LeftOut {
		p = asGiven(p, paths, given)
		out.LeftOut = append(out.LeftOut, p)
		a.warnf(cmd, "pull %q: left out %s of the entry: this machine's local tier is there, which a pull never writes into", key, p)
	}
	for _, p := range hit.Untouched {
		if i := slices.Index(paths, p); i >= 0 {
			p = given[i]
		}
		out.Untouched = append(out.Untouched, p)
		a.infof(cmd, "pull %q: left %s as it was: the entry holds nothing for it (it did not exist when the entry was pushed)", key, p)
	}
	if hit.SkippedSymlinks > 0 {
		a.warnf(cmd, "pull %q: skipped %d symlink(s) this system will not create (--skip-symlinks), the first %q", key, hit.SkippedSymlinks, hit.FirstSkipped)
	}
	if hit.Dropped != nil {
		// Not a failure: the damaged copy is gone and the pull went on
		// without it. Saying so points at a failing disk.
		out.Dropped = singleLine(hit.Dropped.Error())
		a.warnf(cmd, "pull %q: a copy in the local tier was damaged and has been dropped: %s", key, out.Dropped)
	}
	if ok {
		out.Hit, out.Key, out.Exact, out.Tier, out.Scope = true, hit.Key, hit.Key == key, hit.Tier, hit.Scope
		out.DownloadedBytes, out.Base, out.FromBaseBytes = hit.Downloaded, hit.Base, hit.FromBase
		a.verbosef(cmd, "found %q in the %s tier after %s", hit.Key, hit.Tier, formatDuration(time.Since(start)-hit.CopyTime))
		if hit.BaseNote != "" {
			a.verbosef(cmd, "pull %q: %s", hit.Key, hit.BaseNote)
		}
		if r := hit.Copy; r.Files+r.Dirs+r.Symlinks > 0 {
			a.verbosef(cmd, "copied into %s in %s: %d files (%d cloned, %d hardlinked from the cache), %d dirs, %d symlinks, %d hardlinks",
				strings.Join(given, ", "), formatDuration(hit.CopyTime), r.Files, r.Cloned, r.Linked, r.Dirs, r.Symlinks, r.Hardlinks)
		} else if hit.Tier == tiercache.TierLocal && !a.flags.noLocal && !o.lookupOnly {
			a.verbosef(cmd, "extracted the local archive into %s in %s", strings.Join(given, ", "), formatDuration(hit.CopyTime))
		}
		out.Bytes, out.Files = hit.Entry.Size, hit.Entry.Files
	} else if survived == nil && !o.lookupOnly && len(paths) == 1 {
		// A plain miss leaves DIR ready for the build to fill; a
		// failed pull leaves it exactly as it was. (Of several paths,
		// which are directories is not known.)
		if err := os.MkdirAll(paths[0], 0o755); err != nil {
			return fail(err)
		}
	}
	if c != nil {
		c.Wait() // the access record of a local hit, sent during the copy
	}
	elapsed := time.Since(start)
	out.Seconds = elapsed.Seconds()
	if err := writeGitHubOutput(a.getenv("GITHUB_OUTPUT"), out); err != nil {
		return fail(err)
	}
	var only string
	if a.remoteErr == nil && (c == nil || !c.HasRemote()) {
		only = " (local only: no remote configured)"
	}
	if ok {
		a.infof(cmd, "%s%s", hitSummary(out, o.restoreKeys, elapsed), only)
	} else {
		refused := len(hit.Refused) + len(hit.Untrusted) + len(hit.Skipped)
		miss := missSummary(key, o.restoreKeys, survived != nil || refused > 0 || hit.Dropped != nil)
		if o.lookupOnly {
			miss += " (lookup only)"
		}
		a.infof(cmd, "%s%s", miss, only)
	}
	if a.flags.json {
		if err := writeJSON(cmd, out); err != nil {
			return err
		}
	}
	if !ok && o.failOnMiss {
		return &exitError{code: exitMiss, err: fail(fmt.Errorf("cache miss (--fail-on-miss)"))}
	}
	return nil
}

// asGiven spells p, a path below one of paths, below that path as given.
func asGiven(p string, paths, given []string) string {
	for i, q := range paths {
		if rel, err := filepath.Rel(q, p); err == nil && filepath.IsLocal(rel) {
			return filepath.Join(given[i], rel)
		}
	}
	return p
}

func hitSummary(out pullJSON, restoreKeys []string, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hit %q", out.Key)
	if out.Scope != "" {
		fmt.Fprintf(&b, " in scope %q", out.Scope)
	}
	if !out.Exact {
		for _, p := range restoreKeys {
			if strings.HasPrefix(out.Key, p) {
				fmt.Fprintf(&b, " (restore key %q; %q missed)", p, out.RequestedKey)
				break
			}
		}
	}
	if out.LookupOnly {
		fmt.Fprintf(&b, " in the %s tier: %s in %s, found in %s (lookup only, nothing restored)",
			out.Tier, formatBytes(out.Bytes), count(int(out.Files), "file", "files"), formatDuration(elapsed))
		return b.String()
	}
	if out.Tier == tiercache.TierRemote {
		fmt.Fprintf(&b, " from the remote tier (%s downloaded", formatBytes(out.DownloadedBytes))
		if out.Base != "" {
			fmt.Fprintf(&b, ", %s read from the local copy of %q", formatBytes(out.FromBaseBytes), out.Base)
		}
		b.WriteString(")")
	} else {
		fmt.Fprintf(&b, " from the local tier")
	}
	fmt.Fprintf(&b, ": %s in %s restored to %s in %s, %s",
		formatBytes(out.Bytes), count(int(out.Files), "file", "files"), pathList(slices.DeleteFunc(slices.Clone(out.Paths), func(p string) bool { return slices.Contains(out.Untouched, p) })), formatDuration(elapsed), formatRate(out.Bytes, elapsed))
	return b.String()
}

// pathList names paths in a summary line: all of a few, and how many of
// more (an entry may hold a thousand; --json lists them all).
func pathList(paths []string) string {
	const most = 4
	if len(paths) <= most {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%d paths (%s, ...)", len(paths), strings.Join(paths[:most-1], ", "))
}

// missSummary describes a miss; failed tells that the remote failed, or
// that entries were found and refused or skipped, so "nothing stored"
// would not be true.
func missSummary(key string, restoreKeys []string, failed bool) string {
	if failed {
		return fmt.Sprintf("miss: %q not restored (see the notes above)", key)
	}
	if len(restoreKeys) == 0 {
		return fmt.Sprintf("miss: nothing stored under %q", key)
	}
	q := make([]string, len(restoreKeys))
	for i, p := range restoreKeys {
		q[i] = fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("miss: nothing stored under %q or restore keys %s", key, strings.Join(q, ", "))
}

// writeGitHubOutput appends the step outputs GitHub Actions reads from the
// file named by GITHUB_OUTPUT, if set. Keys hold no control characters
// (ValidateKey), so each value fits on its line.
func writeGitHubOutput(path string, out pullJSON) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("GITHUB_OUTPUT: %w", err)
	}
	// actions/cache takes a match that differs from KEY in case alone
	// for KEY itself (its keys compare ignoring case, not accents).
	exact := out.Hit && (out.Exact || strings.EqualFold(out.Key, out.RequestedKey))
	_, err = fmt.Fprintf(f, "cache-hit=%t\ncache-matched-key=%s\ncache-primary-key=%s\n", exact, out.Key, out.RequestedKey)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("GITHUB_OUTPUT: %w", err)
	}
	return nil
}
