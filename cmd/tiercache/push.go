package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/tiered"
)

type pushOptions struct {
	key         string
	description string
	ifAbsent    bool
}

func newPushCommand(a *app) *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "push KEY DIR",
		Short: "Store DIR under KEY, locally and in the remote",
		Long: `Push archives the tree at DIR as one zstd-compressed tar stream, uploads it
to the remote and, as the bytes are made, keeps the same archive in the
local tier under KEY: one sequential write, not a copy of every file. An
entry already
stored under KEY is replaced atomically: readers see the old tree or the new
one, never a mix. When the remote already holds an identical tree under KEY
(a re-run job), nothing is uploaded. The upload commits only once the
local archive has.

DIR is not modified. The tree keeps file contents, empty directories,
symlinks (as links), hardlinks, permission bits and mtimes; owners are not
kept and setuid/setgid bits are dropped. Sockets are left out, as tar leaves
them out (a daemon's socket in a cache directory means nothing to another
machine); a device node or FIFO in DIR makes push fail, naming it.

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

KEY may also be given with --key, DIR then being the only argument.`,
		Example: `  tiercache push "gomod-$(sha256sum go.sum | cut -c1-16)" "$HOME/go/pkg/mod"
  tiercache push --key node-modules-abc123 ./node_modules --description "main@$GITHUB_SHA"
  tiercache push build-cache ./out --json

  # Save only if no job saved this key before.
  tiercache push --if-absent "gomod-$(sha256sum go.sum | cut -c1-16)" "$HOME/go/pkg/mod"`,
		Args: keyDirArgs(&o.key),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, dir := splitKeyDir(o.key, args)
			return runPush(a, cmd, key, dir, o)
		},
	}
	cmd.Flags().StringVar(&o.key, "key", "", "the key (instead of the first argument)")
	cmd.Flags().StringVarP(&o.description, "description", "d", "", "free text stored with the entry (shown by ls)")
	cmd.Flags().BoolVar(&o.ifAbsent, "if-absent", false, "do nothing if KEY is already stored (in the remote, else locally)")
	return cmd
}

// keyDirArgs accepts KEY DIR, or DIR alone when --key is given.
func keyDirArgs(key *string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if *key != "" {
			return exactArgs(1, "DIR (KEY is given with --key)")(cmd, args)
		}
		return exactArgs(2, "KEY and DIR")(cmd, args)
	}
}

func splitKeyDir(keyFlag string, args []string) (key, dir string) {
	if keyFlag != "" {
		return keyFlag, args[0]
	}
	return args[0], args[1]
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
	Dir string `json:"dir"`
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
}

func runPush(a *app, cmd *cobra.Command, key, dir string, o pushOptions) error {
	if err := checkKey("push", key); err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("push %q: %w", key, err) }
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(fmt.Errorf("directory %s does not exist", dir))
	case err != nil:
		return fail(err)
	case !fi.IsDir():
		return fail(fmt.Errorf("%s is not a directory", dir))
	}
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
		res, err = c.Push(cmd.Context(), key, dir, tiered.PushOptions{Description: o.description, IfAbsent: o.ifAbsent})
	}
	prog.finish()
	if err != nil && !a.survive(cmd, err) {
		return fail(err)
	}
	elapsed := time.Since(start)
	out := pushJSON{
		Key: key, Dir: dir, Bytes: res.Entry.Size, Files: res.Entry.Files,
		Remote: a.remoteErr != nil || c.HasRemote(), Uploaded: res.Uploaded, UploadSkipped: res.UploadSkipped,
		ArchiveBytes: res.ArchiveSize, Seconds: elapsed.Seconds(),
		AlreadyStored: res.AlreadyIn != "", AlreadyIn: res.AlreadyIn,
	}
	// A remote failure the push survived: the tree is saved locally
	// only, or with --no-local nowhere.
	failed := cmp.Or(err, res.RemoteErr, a.remoteErr)
	if failed != nil && !a.survive(cmd, failed) {
		return fail(failed) // --strict
	}
	if failed != nil {
		out.Error = singleLine(failed.Error())
		out.Uploaded, out.UploadSkipped, out.ArchiveBytes = false, false, 0
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
	case a.flags.noLocal:
		where = fmt.Sprintf("remote only, uploaded %s compressed, %s", formatBytes(res.ArchiveSize), formatRate(res.ArchiveSize, elapsed))
	case res.UploadSkipped:
		where = "remote already holds this tree, nothing uploaded"
	default:
		where = fmt.Sprintf("uploaded %s compressed, %s", formatBytes(res.ArchiveSize), formatRate(res.ArchiveSize, elapsed))
	}
	a.infof(cmd, "pushed %q: %s in %d files, %s, in %s", key, formatBytes(out.Bytes), out.Files, where, formatDuration(elapsed))
	return a.printPush(cmd, out)
}

func (a *app) printPush(cmd *cobra.Command, out pushJSON) error {
	if a.flags.json {
		return writeJSON(cmd, out)
	}
	return nil
}
