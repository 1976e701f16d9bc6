package tiered

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treecopy"
)

// PullOptions configure Pull. The zero value copies the tree into dir.
type PullOptions struct {
	// Link hardlinks dir's files to the local tier's instead of copying
	// them: the fastest way, but a file changed in place in dir then
	// changes the cache entry too. For trees that are only read.
	Link bool
	// Strict fails a pull that would go on with the local tier alone
	// after the remote failed (see Hit.RemoteErr) with that failure, dir
	// as it was.
	Strict bool
}

// PushOptions configure Push.
type PushOptions struct {
	// Description is free text kept with the entry.
	Description string
}

// Pull restores key, or else the newest entry under each restore prefix
// in turn (see Restore), into dir, which is created if absent. Entries of
// the tree replace what dir holds at the same paths, as tar -x does, and
// the rest is left alone; an existing dir keeps its own mode and mtime.
// A miss (Hit{}, false, nil), or a failure of the remote, leaves dir as it
// was. Hit.Path is dir.
//
// The tree comes from the local tier (hydrated first if need be), copied
// (or hardlinked, see PullOptions.Link) with progress reported as Op
// "copy". With Options.NoLocal, it is downloaded into a directory beside
// dir, verified, then moved in, and nothing is written locally.
func (c *Cache) Pull(ctx context.Context, key string, prefixes []string, dir string, opts PullOptions) (Hit, bool, error) {
	if c.opts.NoLocal {
		return c.pullRemote(ctx, key, prefixes, dir)
	}
	h, ok, err := c.Restore(ctx, key, prefixes)
	switch {
	case err != nil || !ok:
		return h, ok, err
	case opts.Strict && h.RemoteErr != nil:
		return Hit{}, false, h.RemoteErr
	}
	start := time.Now()
	// An existing dir keeps its own mode and mtime, as tar -x keeps an
	// existing directory's; treecopy would give it the cached root's.
	before, statErr := os.Stat(dir)
	var progress func(int64)
	if fn := c.opts.Progress; fn != nil {
		var copied atomic.Int64
		progress = func(n int64) { fn(Progress{Op: "copy", Key: h.Key, Done: copied.Add(n), Total: h.Entry.Size}) }
	}
	h.Copy, err = treecopy.Copy(ctx, h.Path, dir, treecopy.Options{Link: opts.Link, Progress: progress})
	if err == nil && statErr == nil && before.IsDir() {
		err = setRootMeta(dir, nil, before.Mode().Perm(), before.ModTime())
	}
	if err != nil {
		// treecopy names paths relative to dir; say which dir.
		return Hit{}, false, fmt.Errorf("restoring into %s: %w", dir, err)
	}
	h.Path, h.CopyTime = dir, time.Since(start)
	return h, true, nil
}

// Push stores the tree at dir under key: in both tiers, as PutResult
// does, or with Options.NoLocal in the remote only, the archive streaming
// from dir to the upload. Either way the upload is skipped when the
// remote already holds an identical archive, and a dir that changes size
// or file count while it is read commits nothing.
func (c *Cache) Push(ctx context.Context, key, dir string, opts PushOptions) (PutResult, error) {
	if c.opts.NoLocal {
		return c.pushRemote(ctx, key, dir, opts.Description)
	}
	return c.PutResult(ctx, key, dir, opts.Description)
}

// pushRemote is Push with NoLocal.
func (c *Cache) pushRemote(ctx context.Context, key, dir, description string) (PutResult, error) {
	start := time.Now()
	if err := tiercache.ValidateKey(key); err != nil {
		return PutResult{}, err
	}
	if c.opts.ReadOnly {
		return PutResult{}, fmt.Errorf("put %q: %w", key, tiercache.ErrReadOnly)
	}
	want, meta, old, same, err := c.planPush(ctx, key, dir, description)
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{Entry: tiercache.Entry{Key: key, Description: description, Size: want.Size, Files: want.Files, Tier: tiercache.TierRemote}}
	if same {
		h := sha256.New()
		ar, err := c.archiveChecked(ctx, key, dir, want, h)
		if err != nil {
			return res, err
		}
		if identical(h, ar, old) {
			c.skipUpload(ctx, key, old, &res)
			res.Elapsed = time.Since(start)
			return res, nil
		}
	}
	err = c.uploadFrom(ctx, meta, func(w io.Writer) error {
		_, err := c.archiveChecked(ctx, key, dir, want, w)
		return err
	}, &res)
	res.Elapsed = time.Since(start)
	return res, err
}

// archiveChecked writes an archive of src to w and fails if the tree
// archived is not of shape want.
func (c *Cache) archiveChecked(ctx context.Context, key, src string, want tiercache.Shape, w io.Writer) (archive.Result, error) {
	opts := c.opts.Write
	opts.SkipDigest = true // the remote store hashes what it uploads
	r, err := archive.Write(ctx, w, src, opts)
	if err != nil {
		return r, fmt.Errorf("archive %q: %w", key, err)
	}
	if r.Shape != want {
		return r, changedErr(src, "the archive", r.Shape, want)
	}
	return r, nil
}

// pullRemote is Pull with NoLocal.
func (c *Cache) pullRemote(ctx context.Context, key string, prefixes []string, dir string) (Hit, bool, error) {
	return c.restore(ctx, key, prefixes, false, func(ctx context.Context, k string) (Hit, bool, error) {
		return c.pullInto(ctx, k, dir)
	})
}

// pullInto is pullRemote for one key: the archive is extracted beside
// dir and verified against its manifest first, so a corrupt or truncated
// object leaves dir as it was; then the tree is moved in (see moveInto).
func (c *Cache) pullInto(ctx context.Context, key, dir string) (Hit, bool, error) {
	rc, meta, ok, err := c.openRemote(ctx, key)
	if err != nil || !ok {
		return Hit{}, false, err
	}
	defer rc.Close()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Hit{}, false, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return Hit{}, false, fmt.Errorf("restoring into %s: %w", dir, err)
	}
	// Beside dir, so the tree can be renamed into place.
	stage, err := os.MkdirTemp(filepath.Dir(abs), ".tiercache-pull-")
	if err != nil {
		return Hit{}, false, fmt.Errorf("restoring into %s: %w", dir, err)
	}
	staged := true
	defer func() {
		if staged {
			_ = fsutil.RemoveAll(stage)
		}
	}()
	res, err := c.fillFrom(ctx, key, rc, meta, stage)
	if err != nil {
		if errors.Is(err, tiercache.ErrNotFound) {
			return Hit{}, false, nil // replaced under us: a miss
		}
		return Hit{}, false, err
	}
	moved, err := moveInto(ctx, stage, abs, res.Root)
	if err != nil {
		return Hit{}, false, fmt.Errorf("restoring into %s: %w", dir, err)
	}
	staged = !moved
	if !c.opts.ReadOnly {
		_ = c.remote.Touch(ctx, key)
	}
	e := tiercache.Entry{Key: key, Description: meta.Description, Size: meta.Size, Files: meta.Files,
		Created: meta.Created, LastAccess: meta.LastAccess, Tier: tiercache.TierRemote}
	return Hit{Path: dir, Key: key, Tier: tiercache.TierRemote, Entry: e, Downloaded: res.ArchiveSize}, true, nil
}

// moveInto puts the tree at stage into dir: by renaming stage when dir is
// absent or an empty directory (moved is then true), else by hardlinking
// its files into dir, after which stage still exists and only its names
// are left to remove.
//
// dir's own mode and mtime end up as the archive's root member says
// (root, which archives made by Write never have), or else as dir had
// them, or as a new directory gets them when dir was absent: never
// stage's, which MkdirTemp made private (0700) and extraction touched.
// tar -x keeps an existing directory's metadata the same way.
func moveInto(ctx context.Context, stage, dir string, root *archive.RootMeta) (moved bool, err error) {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		mode := fs.FileMode(0o755)
		if um := fsutil.Umask(); um >= 0 {
			mode = 0o777 &^ fs.FileMode(um)
		}
		// A new directory: its mtime is the extraction's, as mkdir's
		// would be.
		if err := setRootMeta(stage, root, mode, time.Time{}); err != nil {
			return false, err
		}
		return true, os.Rename(stage, dir)
	case err != nil:
		return false, err
	case fi.IsDir():
		if err := os.Remove(dir); err == nil {
			// It was empty: it is replaced by the tree.
			if err := setRootMeta(stage, root, fi.Mode().Perm(), fi.ModTime()); err != nil {
				return false, err
			}
			if err := os.Rename(stage, dir); err != nil {
				_ = os.Mkdir(dir, fi.Mode().Perm()) // put the empty dir back
				return false, err
			}
			return true, nil
		}
	}
	// Not empty (or not a directory, which treecopy reports): merge.
	// treecopy gives dir the metadata of stage's root, so stage takes
	// what dir must end with. dir may be a symlink to a directory, which
	// treecopy follows: the metadata is its target's.
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		if err := setRootMeta(stage, root, fi.Mode().Perm(), fi.ModTime()); err != nil {
			return false, err
		}
	}
	_, err = treecopy.Copy(ctx, stage, dir, treecopy.Options{Link: true})
	return false, err
}

// setRootMeta gives dir root's mode and mtime if root is set, else mode
// and, unless it is zero, mtime.
func setRootMeta(dir string, root *archive.RootMeta, mode fs.FileMode, mtime time.Time) error {
	if root != nil {
		mode, mtime = root.Mode, root.ModTime
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	if mtime.IsZero() {
		return nil
	}
	return os.Chtimes(dir, time.Time{}, mtime)
}
