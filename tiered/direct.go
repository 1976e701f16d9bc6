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
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treecopy"
)

// The methods here skip the local tier, for machines that live for one
// job: a local copy there is never read again, and making it (one more
// write of every file) is most of what a push or a cold pull costs beyond
// the transfer itself.

// PushRemote stores sourceDir under key in the remote tier only, streaming
// the archive from sourceDir to the upload; nothing is written locally.
// As with PutResult, the upload is skipped when the remote already holds
// an identical archive, and a sourceDir that changes size or file count
// while it is read commits nothing.
func (c *Cache) PushRemote(ctx context.Context, key, sourceDir, description string) (PutResult, error) {
	start := time.Now()
	if err := tiercache.ValidateKey(key); err != nil {
		return PutResult{}, err
	}
	if c.opts.ReadOnly {
		return PutResult{}, fmt.Errorf("put %q: %w", key, tiercache.ErrReadOnly)
	}
	if c.remote == nil {
		return PutResult{}, fmt.Errorf("put %q: %w: no remote tier to push to", key, tiercache.ErrInvalidArgument)
	}
	want, meta, old, same, err := c.planPush(ctx, key, sourceDir, description)
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{Entry: tiercache.Entry{Key: key, Description: description, Size: meta.Size, Files: meta.Files, Tier: TierRemote}}
	if same {
		h := sha256.New()
		ar, err := c.archiveChecked(ctx, key, sourceDir, want, h)
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
		_, err := c.archiveChecked(ctx, key, sourceDir, want, w)
		return err
	}, &res)
	res.Elapsed = time.Since(start)
	return res, err
}

// archiveChecked writes an archive of src to w and fails if the tree
// archived is not of shape want.
func (c *Cache) archiveChecked(ctx context.Context, key, src string, want treeShape, w io.Writer) (archive.Result, error) {
	opts := c.opts.Write
	opts.SkipDigest = true // the remote store hashes what it uploads
	r, err := archive.Write(ctx, w, src, opts)
	if err != nil {
		return r, fmt.Errorf("archive %q: %w", key, err)
	}
	if got := (treeShape{r.Size, r.Files}); got != want {
		return r, changedErr(key, src, "the archive", got, want)
	}
	return r, nil
}

// PullRemote restores key, or else the newest remote entry under each
// restore prefix in turn, from the remote tier straight into dir; nothing
// is written to the local tier. The archive is extracted into a new
// directory beside dir and verified against its manifest first, so a
// corrupt or truncated object leaves dir as it was. Then, if dir is absent
// or empty, the extracted tree is renamed into place; otherwise its files
// are moved in by hardlinks, replacing what dir holds at the same paths as
// tar -x does, and leaving the rest alone.
//
// A miss is (Hit{}, false, nil) and leaves dir as it was. Hit.Path is dir.
func (c *Cache) PullRemote(ctx context.Context, key string, prefixes []string, dir string) (Hit, bool, error) {
	if c.remote == nil {
		return Hit{}, false, fmt.Errorf("get %q: %w: no remote tier to pull from", key, tiercache.ErrInvalidArgument)
	}
	return c.restore(ctx, key, prefixes, false, func(ctx context.Context, k string) (Hit, bool, error) {
		return c.pullInto(ctx, k, dir)
	})
}

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
		Created: meta.Created, LastAccess: meta.LastAccess, Tier: TierRemote}
	return Hit{Path: dir, Key: key, Tier: TierRemote, Entry: e, Downloaded: res.ArchiveSize}, true, nil
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
