package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/tiered"
)

type pushOptions struct {
	key         string
	description string
	ifAbsent    bool
	exclude     []string
	base        string
	restoreKeys []string
	noBase      bool
	match       []string
}

func newPushCommand(a *app) *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "push KEY PATH...",
		Short: "Store PATH (a directory, or several paths) under KEY, locally and in the remote",
		Long: `Push archives the tree at DIR as one zstd-compressed tar stream, uploads it
to the remote and, as the bytes are made, keeps the same archive in the
local tier under KEY: one sequential write, not a copy of every file. An
entry already stored under KEY is replaced atomically: readers see the old
tree or the new one, never a mix. When the remote already holds an identical tree under KEY
(a re-run job), nothing is uploaded. The upload commits only once the
local archive has.

PATH is usually one directory (DIR below). Several paths, each a
directory or a file, make one entry, as actions/cache's multi-line path
does: a Go job's ~/go/pkg/mod and ~/.cache/go-build under one key, say.
The entry records the paths as given, for ls and for error messages, and
a pull restores them by position: the pull's first PATH gets the first
path, and so on, so home directories may differ between machines. A "~"
the shell did not expand (a quoted '~/x') is expanded. The remote object
stays one plain .tar.zst, path i under the member named i ("0/", "1", ...).

--match PATTERN (repeatable), instead of PATHs, pushes what the glob
PATTERN matches below the current directory, as actions/cache's and
GitLab's glob paths do: '**/node_modules' in a monorepo, 'packages/*/dist'.
"*", "?" and "[...]" match within a name, "**" any number of directories;
a matched directory is taken whole, and symlinks are neither followed nor
matched. The entry records each match's name below the current
directory, and 'pull --match' restores each to the same place below its
own current directory, creating what is missing. No match fails the push.

--exclude PATTERN (repeatable) leaves out what the gitignore-like PATTERN
matches below each PATH: "*.log" or "tmp/" at any depth (a trailing "/"
for directories only), "build/out" or "/out" from the PATH's root, "**"
for any number of directories ("a/**/b"). A matched directory is left out
whole. The local tier (--cache-dir, by default under ~/.cache) is always
left out of a PATH that holds it (--verbose says so), with --no-local
too: the cache never stores itself. A PATH that is the local tier or
inside it is refused.

DIR is not modified. The tree keeps file contents, empty directories,
symlinks (as links), hardlinks, permission bits and mtimes; owners are not
kept and setuid/setgid bits are dropped. Sockets are left out, as tar leaves
them out (a daemon's socket in a cache directory means nothing to another
machine; --verbose counts them); a device node or FIFO in DIR makes push
fail, naming it.

With --no-local (for machines that live for one job), the archive streams
from DIR straight to the remote and no local copy is made.

--if-absent does nothing when KEY is already stored: in the remote (one
manifest read, before DIR is read), or, with no remote configured, in the
local tier. Nothing is uploaded or written then, and push exits 0 saying
so, with "already_stored": true in --json. It keeps the first tree stored
under a key, as actions/cache does, where a push would replace it. If the
remote fails that check, the local tier answers instead: the tree is
saved there alone, with the usual warning, unless it holds KEY already.

A cache outage must not fail the build: when the remote fails (unreachable,
timing out, refusing the credentials, no such bucket), push prints a
one-line warning saying that nothing was saved remotely, keeps the local
copy (none with --no-local), and exits 0. With --strict it exits 1. A DIR
that cannot be read or changes during the push, or a full local disk,
always fails the push.

Only what changed is uploaded, where the remote can copy (S3's
UploadPartCopy; MinIO and AWS S3 can). A push looks for a base: --base
KEY, alone (if it is not stored, the push warns and uploads everything);
else the entry the last pull restored into the same PATHs on this
machine; else the newest entry under each --restore-key PREFIX in turn;
else KEY's own current version. The archive's frames start at file
boundaries chosen by content, so a tree that changed a little shares
most of its frames with the base's archive: the remote copies those
byte ranges from the base's object, server-side, and only the rest is
sent. When the local tier keeps the base's archive (it was pulled or
pushed here), those frames are taken from it instead of being compressed
again. The object stored is still one plain .tar.zst, byte for byte the
one a full upload makes (from a base of the same compression level).
A base that is missing, replaced or deleted meanwhile, or a server that
refuses copies, only means a full upload (--verbose says why). Storage
is not shared: each entry is a full object. --no-base always uploads
everything. With --json, frames_reused counts the frames the remote
copied whole from the base (none of their bytes sent), frames_kept
those taken from the base's local copy instead of compressed again,
copied_bytes the archive bytes copied server-side, and uploaded_bytes
those sent (the two add up to archive_bytes when the push uploads).

KEY may also be given with --key, the PATHs then being the only
arguments.`,
		Example: `  tiercache push "gomod-$(sha256sum go.sum | cut -c1-16)" "$HOME/go/pkg/mod"
  tiercache push --key node-modules-abc123 ./node_modules --description "main@$GITHUB_SHA"
  tiercache push build-cache ./out --json

  # A Go job's two caches in one entry, less the mark 'go clean -testcache' leaves.
  tiercache push "go-$(sha256sum go.sum | cut -c1-16)" ~/go/pkg/mod ~/.cache/go-build --exclude 'testexpire.txt'

  # A new lockfile hash: upload only the frames that changed since the newest gomod- entry.
  tiercache push --restore-key gomod- "gomod-$(sha256sum go.sum | cut -c1-16)" "$HOME/go/pkg/mod"

  # Every node_modules of a monorepo, found below the current directory.
  tiercache push "npm-$(sha256sum package-lock.json | cut -c1-16)" --match '**/node_modules'

  # Save only if no job saved this key before.
  tiercache push --if-absent "gomod-$(sha256sum go.sum | cut -c1-16)" "$HOME/go/pkg/mod"`,
		Args: keyPathsArgs(&o.key, &o.match),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, paths := splitKeyPaths(o.key, args)
			return runPush(a, cmd, key, paths, o)
		},
	}
	cmd.Flags().StringVar(&o.key, "key", "", "the key (instead of the first argument)")
	cmd.Flags().StringVarP(&o.description, "description", "d", "", "free text stored with the entry (shown by ls)")
	cmd.Flags().BoolVar(&o.ifAbsent, "if-absent", false, "do nothing if KEY is already stored (in the remote, else locally)")
	cmd.Flags().StringArrayVar(&o.exclude, "exclude", nil, "leave out what the gitignore-like `PATTERN` matches below each PATH; repeatable")
	cmd.Flags().StringVar(&o.base, "base", "", "upload only what differs from the entry under `KEY` (see above)")
	cmd.Flags().StringArrayVar(&o.restoreKeys, "restore-key", nil, "choose the base among the newest entries under `PREFIX`; repeatable, tried in order")
	cmd.Flags().BoolVar(&o.noBase, "no-base", false, "upload every byte, reusing nothing the remote holds (not with --base or --restore-key)")
	cmd.Flags().StringArrayVar(&o.match, "match", nil, "push the files and directories below the current directory that the glob `PATTERN` matches (**/node_modules), instead of PATHs; repeatable; !PATTERN leaves out the matches it names (!packages/legacy/node_modules)")
	return cmd
}

// keyPathsArgs accepts KEY PATH..., or PATH... alone when --key is given;
// with --match, KEY alone, or nothing.
func keyPathsArgs(key *string, match *[]string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(*match) > 0 {
			want := 1
			if *key != "" {
				want = 0
			}
			if len(args) != want {
				return usageErrorf("%s --match takes KEY alone (or --key), no PATH: the paths are what the patterns match below the current directory; got %d argument(s)", cmd.Name(), len(args))
			}
			return nil
		}
		min, what := 2, "KEY and at least one PATH"
		if *key != "" {
			min, what = 1, "at least one PATH (KEY is given with --key)"
		}
		if len(args) < min {
			return usageErrorf("%s takes %s, got %d argument(s)", cmd.Name(), what, len(args))
		}
		if n := len(args) - min + 1; n > tiercache.MaxPaths {
			return usageErrorf("%s takes at most %d paths, got %d", cmd.Name(), tiercache.MaxPaths, n)
		}
		return nil
	}
}

func splitKeyPaths(keyFlag string, args []string) (key string, paths []string) {
	if keyFlag != "" {
		return keyFlag, args
	}
	return args[0], args[1:]
}

// matchRoot returns the current directory, where --match looks, once
// the patterns are checked (a usage error if not).
func matchRoot(command string, patterns []string) (string, error) {
	if err := tiered.CheckPatterns(patterns); err != nil {
		return "", asUsage(fmt.Errorf("%s --match: %w", command, err))
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%s --match: %w", command, err)
	}
	return wd, nil
}

// expandPaths expands a leading "~" (alone, or before a separator) to
// the home directory, for a path the shell left unexpanded (quoted, or
// from a YAML list), as actions/cache does.
func (a *app) expandPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p
		if p != "~" && !strings.HasPrefix(p, "~/") && !(filepath.Separator != '/' && strings.HasPrefix(p, "~"+string(filepath.Separator))) {
			continue
		}
		home, err := a.homeDir()
		if err != nil {
			return nil, fmt.Errorf("expanding %s: %w", p, err)
		}
		out[i] = filepath.Join(home, p[1:])
	}
	return out, nil
}

// distinctPaths returns paths made absolute, refusing (as a usage error)
// one named twice, however spelled ("a", "./a", "a/", a symlink to a):
// push would store its tree twice, and pull would merge two of an entry's
// paths into one.
func distinctPaths(given, paths []string) ([]string, error) {
	abs := make([]string, len(paths))
	infos := make([]os.FileInfo, len(paths))
	for i, p := range paths {
		var err error
		if abs[i], err = filepath.Abs(p); err != nil {
			return nil, fmt.Errorf("path %s: %w", given[i], err)
		}
		// Existing ones are compared as files too: a symlink to
		// another PATH, or another case of it where names fold.
		infos[i], _ = os.Stat(p)
		for j := range i {
			if abs[j] == abs[i] || infos[i] != nil && infos[j] != nil && os.SameFile(infos[i], infos[j]) {
				return nil, usageErrorf("path %s names the same path as %s: give each PATH once", given[i], given[j])
			}
		}
	}
	return abs, nil
}

// nested returns, for the first PATH inside another PATH's directory that
// --exclude does not leave out of it, a warning: its files are stored
// twice. Not an error: such a list restores right (a pull places the
// outer path first, whatever the order), as it
// does with actions/cache, only larger. abs are the PATHs made absolute,
// isDir tells which are directories.
func nested(given, abs []string, isDir []bool, ex *archive.Exclude) string {
	for i, outer := range abs {
		if !isDir[i] {
			continue
		}
		for j, inner := range abs {
			rel, err := filepath.Rel(outer, inner)
			if i == j || err != nil || !filepath.IsLocal(rel) {
				continue
			}
			if !excluded(ex, filepath.ToSlash(rel), isDir[j]) {
				return fmt.Sprintf("path %s is inside %s, so its files are stored twice; --exclude /%s leaves them out of %s", given[j], given[i], filepath.ToSlash(rel), given[i])
			}
		}
	}
	return ""
}

// tierDir is the local tier's root, made absolute; "" if it cannot be
// told, which openCache reports.
func (a *app) tierDir() string {
	root, err := a.cacheDir()
	if err == nil {
		root, err = filepath.Abs(root)
	}
	if err != nil {
		return ""
	}
	return root
}

// outsideTier refuses, as a usage error, a PATH that is the local tier at
// root or lies inside it: nothing of a tier may be archived, or written
// by a pull, under its feet.
func outsideTier(root string, given, abs []string) error {
	for i, p := range abs {
		if _, in := local.Within(p, root); in {
			return usageErrorf("path %s is the local tier or inside it (%s): give a path outside it, or set --cache-dir (TIERCACHE_DIR) elsewhere", given[i], root)
		}
	}
	return nil
}

// excluded reports whether ex leaves the member at rel (slash-separated,
// a directory if dir) out of its tree: it or a directory above it matches.
func excluded(ex *archive.Exclude, rel string, dir bool) bool {
	names := strings.Split(rel, "/")
	for n := 1; n <= len(names); n++ {
		if ex.Match(strings.Join(names[:n], "/"), n < len(names) || dir) {
			return true
		}
	}
	return false
}

// checkKey validates a key given on the command line: a bad one is a
// usage error, reported before anything is opened.
func checkKey(op, key string) error {
	if err := tiercache.ValidateKey(key); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s %q: %w", op, key, err)}
	}
	return nil
}

// pushJSON is the --json output of push.
type pushJSON struct {
	Key string `json:"key"`
	// Dir is the first PATH, Paths all of them, as given, but for
	// Missing: those of several that did not exist, left out.
	Dir     string   `json:"dir"`
	Paths   []string `json:"paths"`
	Missing []string `json:"missing,omitempty"`
	// Bytes and Files describe the stored tree.
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
	// Remote tells whether a remote tier is configured.
	Remote bool `json:"remote"`
	// Uploaded is true when the archive was sent to the remote;
	// UploadSkipped when the remote already held the identical tree.
	Uploaded      bool    `json:"uploaded"`
	UploadSkipped bool    `json:"upload_skipped"`
	ArchiveBytes  int64   `json:"archive_bytes"`
	Seconds       float64 `json:"seconds"`
	// Error is the remote failure that kept the tree out of the remote
	// (the push then saved it locally only, or with --no-local nowhere).
	Error string `json:"error,omitempty"`
	// AlreadyStored is true when --if-absent found KEY stored, in the
	// tier AlreadyIn, and the push did nothing.
	AlreadyStored bool           `json:"already_stored"`
	AlreadyIn     tiercache.Tier `json:"already_in,omitempty"`
	// Base is the entry whose frames the upload reused ("" if none);
	// FramesReused counts the archive's frames the remote copied whole
	// from it server-side (none of their bytes sent), CopiedBytes the
	// archive bytes it copied, and UploadedBytes those actually sent
	// (ArchiveBytes - CopiedBytes); FramesKept counts the frames taken
	// already compressed from the local tier's copy of the base instead
	// of compressed again.
	Base string `json:"base,omitempty"`
	// Scope is the scope written (see --scope); absent for the default.
	Scope string `json:"scope,omitempty"`
	// Signed tells whether the upload was signed (TIERCACHE_SIGNING_KEY).
	Signed        bool  `json:"signed,omitempty"`
	FramesReused  int   `json:"frames_reused"`
	FramesKept    int   `json:"frames_kept"`
	CopiedBytes   int64 `json:"copied_bytes"`
	UploadedBytes int64 `json:"uploaded_bytes"`
}

func runPush(a *app, cmd *cobra.Command, key string, given []string, o pushOptions) error {
	if err := checkKey("push", key); err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("push %q: %w", key, err) }
	if o.base != "" {
		if err := checkKey("push --base", o.base); err != nil {
			return err
		}
	}
	for _, p := range o.restoreKeys {
		if err := tiercache.ValidateKey(p); err != nil {
			return asUsage(fail(fmt.Errorf("restore key %q: %w", p, err)))
		}
	}
	if o.noBase && (o.base != "" || len(o.restoreKeys) > 0) {
		return usageErrorf("push: --no-base contradicts --base and --restore-key, which choose a base; give one or the other")
	}
	ex, err := archive.NewExclude(o.exclude)
	if err != nil {
		return asUsage(fail(err))
	}
	for _, p := range o.exclude {
		if strings.HasPrefix(p, "!") {
			// gitignore's negation, which would keep what it names,
			// here matches names starting with "!": say so.
			a.warnf(cmd, "push %q: --exclude %s leaves out names starting with \"!\"; there is no negation (an --exclude only leaves out)", key, p)
		}
	}
	var paths []string
	if len(o.match) > 0 {
		wd, err := matchRoot("push", o.match)
		if err != nil {
			return err
		}
		var unreadable *tiered.UnreadableError
		given, err = tiered.MatchPaths(wd, o.match)
		switch {
		case errors.As(err, &unreadable) && !a.flags.strict:
			// Saved without them, as GitLab's cache saves what it can
			// read; --strict fails instead.
			a.warnf(cmd, "push %q: --match passed over %s, which could not be read (permission denied); --strict fails instead", key, pathList(unreadable.Names))
		case err != nil:
			return fail(err)
		}
		if root := a.tierDir(); root != "" {
			// The local tier, or a match inside it, is left out, as a
			// PATH holding the tier leaves it out (a PATH inside it is
			// a usage error, which a pattern should not make).
			given = slices.DeleteFunc(given, func(n string) bool {
				_, in := local.Within(filepath.Join(wd, filepath.FromSlash(n)), root)
				if in {
					a.verbosef(cmd, "push %q: --match leaves out %s: the local tier is there", key, n)
				}
				return in
			})
		}
		if len(given) == 0 {
			why := ""
			for _, m := range o.match {
				if fi, err := os.Lstat(filepath.Join(wd, filepath.FromSlash(m))); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
					why = fmt.Sprintf(" (%s is a symlink, which --match neither follows nor matches)", m)
					break
				}
			}
			return fail(fmt.Errorf("no path below %s matches %s%s: nothing to push", wd, strings.Join(o.match, ", "), why))
		}
		if err := tiercache.ValidatePaths(given); err != nil {
			// Not a usage error: the same patterns matched fewer before.
			return fail(fmt.Errorf("--match %s found %s below %s, more than an entry holds (%w); narrow the patterns, or push the directory holding them",
				strings.Join(o.match, ", "), pathList(given), wd, err))
		}
		a.verbosef(cmd, "push %q: --match found %s", key, strings.Join(given, ", "))
		paths = make([]string, len(given))
		for i, n := range given {
			paths[i] = filepath.Join(wd, filepath.FromSlash(n))
		}
	}
	if err := tiercache.ValidatePaths(given); err != nil {
		return asUsage(fail(err))
	}
	if paths == nil {
		if paths, err = a.expandPaths(given); err != nil {
			return fail(err)
		}
	}
	abs, err := distinctPaths(given, paths)
	if err != nil {
		return fail(err)
	}
	// Of several PATHs, those missing are left out (as actions/cache and
	// GitLab's cache save what exists): the entry records the names of
	// the others, and a pull naming them all restores those by name and
	// leaves the rest alone. --strict, or all of them missing, fails.
	var missing []string
	if len(paths) > 1 && len(o.match) == 0 {
		var keep []int
		for i, p := range paths {
			// Stat: a dangling symlink is missing too, as for the Action.
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, given[i])
			} else {
				keep = append(keep, i)
			}
		}
		if len(missing) > 0 && len(keep) > 0 && !a.flags.strict {
			pick := func(s []string) []string {
				out := make([]string, len(keep))
				for i, k := range keep {
					out[i] = s[k]
				}
				return out
			}
			paths, given, abs = pick(paths), pick(given), pick(abs)
			what := "it does not exist"
			if len(missing) > 1 {
				what = "they do not exist"
			}
			a.warnf(cmd, "push %q: not saved, as %s: %s; the entry records the other paths, and a pull naming all of them leaves the missing ones as they are",
				key, what, strings.Join(missing, ", "))
		} else {
			missing = nil
		}
	}
	isDir := make([]bool, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) && len(paths) == 1:
			return fail(fmt.Errorf("directory %s does not exist", given[i]))
		case errors.Is(err, fs.ErrNotExist):
			return fail(fmt.Errorf("path %s does not exist", given[i]))
		case err != nil:
			return fail(err)
		case !fi.IsDir() && !fi.Mode().IsRegular():
			return fail(fmt.Errorf("%s is a %s, not a directory or a file", given[i], fsutil.TypeName(fi.Mode())))
		}
		isDir[i] = fi.IsDir()
	}
	if w := nested(given, abs, isDir, ex); w != "" {
		a.warnf(cmd, "push %q: %s", key, w)
	}
	// The library leaves the tier out of a PATH holding it (see
	// tiered.Cache.Push); a PATH inside it is a usage error.
	root := a.tierDir()
	if err := outsideTier(root, given, abs); err != nil {
		return fail(err)
	}
	dir := given[0]
	if a.flags.readOnly {
		// Checked here too so no tier is even opened for a refused push.
		return fail(fmt.Errorf("%w (--read-only or TIERCACHE_READ_ONLY is set)", tiercache.ErrReadOnly))
	}
	prog := a.newProgress(cmd.ErrOrStderr())
	a.keepTrash = true
	a.softRemote = true
	defer a.noteTrash()
	c, err := a.openCache(cmd, prog.transfer)
	if err != nil && (a.remoteErr == nil || err != a.remoteErr) {
		return fail(err)
	}
	start := time.Now()
	var res tiered.PutResult
	if c == nil {
		err = a.remoteErr // --no-local: nowhere to push to
	} else {
		res, err = c.PushPaths(cmd.Context(), key, paths, tiered.PushOptions{
			Description: o.description, IfAbsent: o.ifAbsent, Exclude: o.exclude, Names: given, RecordPaths: len(o.match) > 0 || missing != nil,
			Base: o.base, BasePrefixes: o.restoreKeys, NoBase: o.noBase,
		})
	}
	prog.finish()
	for _, p := range res.LeftOut {
		a.verbosef(cmd, "push %q: leaving out the local tier %s (at %s): the cache never stores itself", key, root, asGiven(p, paths, given))
	}
	if res.Sockets > 0 {
		a.verbosef(cmd, "push %q: left out %d socket(s), which cannot be stored (tar leaves them out too), the first %s", key, res.Sockets, asGiven(res.FirstSocket, paths, given))
	}
	if err != nil && !a.survive(cmd, err) {
		return fail(err)
	}
	elapsed := time.Since(start)
	out := pushJSON{
		Key: key, Dir: dir, Paths: given, Missing: missing, Bytes: res.Entry.Size, Files: res.Entry.Files,
		Remote: a.remoteErr != nil || c.HasRemote(), Uploaded: res.Uploaded, UploadSkipped: res.UploadSkipped,
		ArchiveBytes: res.ArchiveSize, Seconds: elapsed.Seconds(),
		AlreadyStored: res.AlreadyIn != "", AlreadyIn: res.AlreadyIn,
		Base: res.Base, FramesReused: res.FramesReused, FramesKept: res.FramesKept, CopiedBytes: res.Copied,
	}
	if res.Uploaded {
		out.UploadedBytes = res.ArchiveSize - res.Copied
	}
	if c != nil {
		out.Scope = c.Scope()
	}
	out.Signed = res.Signed
	switch {
	case o.base != "" && res.Base == "" && res.Uploaded:
		// Asked for by name: not using it is worth more than a
		// verbose line, though the push succeeded.
		a.warnf(cmd, "push %q: --base %q was not used, every byte was uploaded: %s", key, o.base, cmp.Or(res.BaseNote, "no reason given"))
	case res.BaseNote != "":
		a.verbosef(cmd, "push %q: %s", key, res.BaseNote)
	case res.Uploaded && res.Base == "" && !o.noBase:
		// No candidate at all: the library leaves no note then.
		a.verbosef(cmd, "push %q: no base entry to reuse frames from: the whole archive is uploaded", key)
	}
	if res.Base != "" {
		a.verbosef(cmd, "push %q: base %q: %d frames copied from it server-side (not sent), %d taken from its local copy instead of compressed", key, res.Base, res.FramesReused, res.FramesKept)
	}
	// A remote failure the push survived: the tree is saved locally
	// only, or with --no-local nowhere.
	failed := cmp.Or(err, res.RemoteErr, a.remoteErr)
	if failed != nil && !a.survive(cmd, failed) {
		return fail(failed) // --strict
	}
	if failed != nil {
		out.Error = singleLine(failed.Error())
		out.Uploaded, out.UploadSkipped, out.ArchiveBytes, out.Signed = false, false, 0, false
		out.Base, out.FramesReused, out.FramesKept, out.CopiedBytes, out.UploadedBytes = "", 0, 0, 0, 0
		a.warnf(cmd, "push %q: nothing was saved remotely: %s", key, withHint(failed))
	}
	if out.AlreadyStored {
		var why string
		if failed != nil {
			why = "; the remote could not be asked (see the warning above)"
		}
		a.infof(cmd, "push %q: already stored in the %s tier, nothing done (--if-absent%s) in %s", key, out.AlreadyIn, why, formatDuration(elapsed))
		return a.printPush(cmd, out)
	}
	var where string
	switch {
	case failed != nil && a.flags.noLocal:
		a.infof(cmd, "push %q: nothing saved: the remote failed (see the warning above), and --no-local keeps no local copy", key)
		return a.printPush(cmd, out)
	case failed != nil:
		where = "saved locally only, NOT in the remote (see the warning above)"
	case !c.HasRemote():
		where = "local only (no remote configured)"
	case a.flags.noLocal && res.UploadSkipped:
		where = "remote only; it already holds this tree, nothing uploaded"
	case res.UploadSkipped:
		where = "remote already holds this tree, nothing uploaded"
	default:
		where = uploadedWhat(res, elapsed)
		if a.flags.noLocal {
			where = "remote only, " + where
		}
	}
	if out.Signed {
		where += ", signed"
	}
	if out.Scope != "" {
		where += fmt.Sprintf(", in scope %q", out.Scope)
	}
	a.infof(cmd, "pushed %q: %s in %s, %s, in %s", key, formatBytes(out.Bytes), count(int(out.Files), "file", "files"), where, formatDuration(elapsed))
	return a.printPush(cmd, out)
}

// uploadedWhat describes an upload: its size and rate, and what the
// remote copied from a base instead of receiving it.
func uploadedWhat(res tiered.PutResult, elapsed time.Duration) string {
	if res.Copied == 0 {
		return fmt.Sprintf("uploaded %s compressed, %s", formatBytes(res.ArchiveSize), formatRate(res.ArchiveSize, elapsed))
	}
	sent := res.ArchiveSize - res.Copied
	return fmt.Sprintf("uploaded %s of %s compressed (%s copied server-side from %q), %s",
		formatBytes(sent), formatBytes(res.ArchiveSize), formatBytes(res.Copied), res.Base, formatRate(sent, elapsed))
}

func (a *app) printPush(cmd *cobra.Command, out pushJSON) error {
	if a.flags.json {
		return writeJSON(cmd, out)
	}
	return nil
}

// homeDir is the user's home directory, from the environment the CLI was
// given (HOME, or USERPROFILE on Windows), as a shell would expand "~".
func (a *app) homeDir() (string, error) {
	name := "HOME"
	if runtime.GOOS == "windows" {
		name = "USERPROFILE"
	}
	if h := a.getenv(name); h != "" {
		return h, nil
	}
	return os.UserHomeDir()
}
