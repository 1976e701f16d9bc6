package tiered

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treecopy"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
)

// PullOptions configure Pull. The zero value writes the tree into dir.
type PullOptions struct {
	// Link hardlinks dir's files to the local tier's instead of copying
	// them: the fastest way, but a file changed in place in dir then
	// changes the cache entry too. For trees that are only read. A Cache
	// with Options.Trust ignores it: it restores only what the archive's
	// signed digest covers, which a tree shared through links is not.
	Link bool
	// Strict fails a pull that would go on with the local tier alone
	// after the remote failed (see Hit.RemoteErr) with that failure, dir
	// as it was.
	Strict bool
	// LookupOnly makes Pull find what it would restore, and restore
	// nothing: key and the restore prefixes are resolved as a pull
	// resolves them (the same tiers, candidates and order, the same
	// soft remote failures), but nothing is downloaded and dir is not
	// touched, not even created. The remote is asked for manifests and
	// listings only, never an archive. No access is recorded in either
	// tier, since nothing is used. Hit.Path is then "", Hit.Entry
	// describes the entry found (the local one where the local tier
	// holds the key, else the remote's), and a local archive is not
	// checked against its digest, so a damaged one still counts. A dir
	// the pull would refuse (inside the local tier, or a file where the
	// entry holds a directory, or the reverse) fails the lookup alike.
	LookupOnly bool
	// SkipSymlinks skips, with Hit.SkippedSymlinks counting them, the
	// symlinks this system will not create in the paths pulled into
	// (Windows without the privilege or Developer Mode, a file system
	// without symlinks), where a pull would otherwise fail naming the
	// first. The local tier's archive keeps them. A Link pull, whose
	// tree in the local tier needs them, copies from the archive instead
	// where they cannot be made.
	SkipSymlinks bool
	// NoBase downloads every byte of an entry fetched from the remote,
	// even where the local tier keeps an earlier version sharing frames
	// with it (see Hit.Base).
	NoBase bool
	// Resolve, if set, chooses where an entry's paths go from the paths
	// it records (see ResolveMatched), instead of by position: PullPaths
	// then takes no paths of its own. An entry whose recorded paths it
	// refuses, or that records none (one directory's tree), is skipped
	// as one of another shape is, its error in Hit.Skipped.
	Resolve func(recorded []string) ([]string, error)
	// Names, if set, are the paths as the caller named them, one for each
	// path pulled into (the CLI's PATHs as typed). An entry recording the
	// same names in another order restores each to the path of its name
	// (in any case where the file system folds it, a Windows push's "\"
	// a separator everywhere: see matchNames); one recording some of them
	// at other positions, so that by position a path would get another's
	// content, is skipped as one of another shape. Names that match none
	// of the recorded ones (another machine's home directory) restore by
	// position. An entry recording fewer paths, each one of the names (a
	// push that found some of its paths missing), restores those and
	// leaves the others as they are (Hit.Untouched).
	Names []string
}

// PushOptions configure Push.
type PushOptions struct {
	// Description is free text kept with the entry.
	Description string
	// Exclude holds gitignore-like patterns (see archive.Exclude) naming
	// files and directories to leave out, matched below each path.
	Exclude []string
	// Names are the paths PushPaths records for an entry of several
	// paths (see tiercache.Entry.Paths), as the user gave them (before
	// expanding "~", say); nil records the paths it was given. One per
	// path.
	Names []string
	// RecordPaths stores one directory as several paths are stored,
	// recording its name, instead of as the archive's root: an entry a
	// pull places by its recorded paths (PullOptions.Resolve) needs it.
	RecordPaths bool
	// IfAbsent makes Push do nothing when key is already stored: in the
	// remote when there is one (a manifest read), else in the local
	// tier. An entry whose archive the remote is found to lack, or to
	// hold at another size than its manifest records, counts as absent:
	// every pull refuses it. PutResult.AlreadyIn then names that tier; nothing is
	// uploaded or written, and no access is recorded. A remote that
	// fails that check is a remote failure like any other (see
	// PutResult.RemoteErr): the local tier is asked instead, and the
	// tree stored there alone if it lacks key.
	IfAbsent bool
	// Base names the entry whose archive the upload may repeat frames
	// of: where the remote can copy byte ranges of a stored archive
	// (remote.BaseStore), the frames this archive shares with the
	// base's are copied server-side instead of uploaded, and the object
	// is byte for byte the one a full upload makes. Without Base, the
	// push takes the entry the last Pull restored into the same paths
	// on this machine, else the newest entry under each of
	// BasePrefixes in turn, else key's own current version. A base that
	// is missing or unusable costs nothing but the full upload
	// (PutResult.BaseNote says why).
	Base string
	// BasePrefixes are restore prefixes for choosing a base (see Base).
	BasePrefixes []string
	// NoBase uploads every byte, whatever the remote holds.
	NoBase bool
}

// Pull restores key, or else the newest entry under each restore prefix
// in turn (see Restore), into dir, which is created if absent. Entries of
// the tree replace what dir holds at the same paths, as tar -x does, and
// the rest is left alone; an existing dir keeps its own mode and mtime.
// A miss (Hit{}, false, nil), or a failure of the remote, leaves dir as it
// was. Hit.Path is dir. A remote entry whose archive is damaged is
// refused (Hit.Refused) and, unless read-only, removed from the remote
// (see CorruptError), so that the next push stores the tree again.
// Nothing is written into the local tier (its own, even with NoLocal,
// or Options.LocalRoot): a dir that is the tier or inside it is refused,
// and the entry's member that would land on it left out (Hit.LeftOut).
//
// Every file is written once. A local entry kept as an archive is
// extracted into a directory beside dir, checked against its recorded
// SHA-256, then moved in; a damaged one is dropped (Hit.Dropped) and the
// key fetched again. A download is extracted the same way while its bytes
// are also written to the local tier as the key's archive, committed only
// once verified. A local entry kept as a tree is copied (progress Op
// "copy"), and PullOptions.Link hardlinks from the tree, made from the
// archive first if need be. With Options.NoLocal, nothing is written
// locally.
//
// With PullOptions.LookupOnly, Pull only finds what it would restore.
func (c *Cache) Pull(ctx context.Context, key string, prefixes []string, dir string, opts PullOptions) (Hit, bool, error) {
	return c.PullPaths(ctx, key, prefixes, []string{dir}, opts)
}

// PullPaths is Pull into several paths, for an entry PushPaths stored:
// its path i is restored into paths[i] (a file replacing a file, a
// directory merged into a directory, as Pull merges), so positions, not
// spellings, must match, and home directories may differ between the
// machines. An entry of one directory's tree is restored into paths[0],
// the only path then. An entry recording another number of paths cannot
// be restored: it is skipped, key itself or a restore prefix's
// candidate, Hit.Skipped saying so (on a miss too). The paths are
// restored one after the other (those nearer the root first, so that an
// outer path's tree never replaces an inner one's), each as Pull
// restores its dir, from one
// extraction beside the first: a pull cut short may have restored some
// of them.
func (c *Cache) PullPaths(ctx context.Context, key string, prefixes []string, paths []string, opts PullOptions) (Hit, bool, error) {
	switch {
	case opts.Resolve != nil && len(paths) > 0:
		return Hit{}, false, fmt.Errorf("pull %q: %w: paths given and chosen by Resolve", key, tiercache.ErrInvalidArgument)
	case opts.Resolve == nil && len(paths) == 0:
		return Hit{}, false, fmt.Errorf("pull %q: %w: no path to restore into", key, tiercache.ErrInvalidArgument)
	}
	if opts.Names != nil && len(opts.Names) != len(paths) {
		return Hit{}, false, fmt.Errorf("pull %q: %w: %d names for %d paths", key, tiercache.ErrInvalidArgument, len(opts.Names), len(paths))
	}
	if c.opts.Trust != nil {
		opts.Link = false // see PullOptions.Link
	}
	dst := &target{paths: paths, given: paths, names: opts.Names, skipSymlinks: opts.SkipSymlinks, resolve: opts.Resolve, root: c.tierRoot()}
	// Read-only, so a lookup fails as the pull would.
	if dst.root != "" && dst.resolve == nil {
		if err := dst.guard(dst.root); err != nil {
			return Hit{}, false, fmt.Errorf("pull %q: %w", key, err)
		}
	}
	h, ok, err := c.pullPaths(ctx, key, prefixes, dst, opts)
	h.Skipped, h.LeftOut = dst.skipped, dst.leftOut
	if opts.Resolve != nil && ok {
		h.Paths = dst.paths
	}
	if ok && dst.subset {
		for _, p := range dst.given {
			if !slices.Contains(dst.paths, p) {
				h.Untouched = append(h.Untouched, p)
			}
		}
	}
	if ok && err == nil && !opts.LookupOnly && !c.opts.NoLocal && c.local != nil {
		// A hint for the next push of these paths (see
		// PushOptions.Base): losing it costs a full upload only.
		_ = c.local.NotePull(dst.paths, h.Scope, h.Key)
	}
	return h, ok, err
}

func (c *Cache) pullPaths(ctx context.Context, key string, prefixes []string, dst *target, opts PullOptions) (Hit, bool, error) {
	if opts.LookupOnly {
		return c.lookup(ctx, key, prefixes, dst, opts.Strict)
	}
	if c.opts.NoLocal {
		return c.pullRemote(ctx, key, prefixes, dst, opts.Strict)
	}
	if err := c.needLocal("pull " + strconv.Quote(key)); err != nil {
		return Hit{}, false, err
	}
	var dropped error
	pullLocal := func(sc *Cache, ctx context.Context, k string) (Hit, bool, error) {
		h, ok, err := sc.pullLocal(ctx, k, dst, opts)
		if h.Dropped != nil {
			dropped = h.Dropped
		}
		return h, ok, err
	}
	get := func(sc *Cache, ctx context.Context, k string) (Hit, bool, error) {
		if h, ok, err := pullLocal(sc, ctx, k); err != nil || ok {
			return h, ok, err
		}
		if sc.remote == nil {
			return Hit{}, false, nil
		}
		return sc.pullHydrate(ctx, k, dst, prefixes, opts)
	}
	// Strict: once the remote failed, go on with nothing else, so the
	// failure is reported and dir left as it was.
	var fallback getter = pullLocal
	if opts.Strict {
		fallback = nil
	}
	h, ok, err := c.restore(ctx, key, prefixes, true, opts.Strict, get, fallback)
	if h.Dropped == nil {
		// On a miss too: the damaged copy is why there is none.
		h.Dropped = dropped
	}
	return h, ok, err
}

// lookup is Pull with LookupOnly: restore with the same tiers, order and
// fallbacks as Pull and pullRemote, over lookups that read metadata only.
func (c *Cache) lookup(ctx context.Context, key string, prefixes []string, dst *target, strict bool) (Hit, bool, error) {
	withLocal := !c.opts.NoLocal
	if withLocal {
		if err := c.needLocal("pull " + strconv.Quote(key)); err != nil {
			return Hit{}, false, err
		}
	}
	peek := func(sc *Cache, ctx context.Context, k string) (Hit, bool, error) {
		if !withLocal {
			return Hit{}, false, nil
		}
		e, ok, err := sc.local.Peek(ctx, k)
		if err != nil || !ok {
			// A damaged copy: the pull would drop it and go on.
			return Hit{}, false, ignoreDropped(err)
		}
		if sc.opts.Trust != nil {
			if s, ok, err := sc.local.Lookup(ctx, k); err != nil || !ok || !sc.trustedLocal(s) {
				return Hit{}, false, ignoreDropped(err)
			}
		}
		if !dst.fits(k, e.Paths) {
			return Hit{}, false, nil
		}
		if err := dst.inTheWay(e.Paths); err != nil {
			return Hit{}, false, err
		}
		e.Tier = tiercache.TierLocal
		return Hit{Key: k, Tier: tiercache.TierLocal, Entry: e}, true, nil
	}
	get := func(sc *Cache, ctx context.Context, k string) (Hit, bool, error) {
		if h, ok, err := peek(sc, ctx, k); err != nil || ok {
			return h, ok, err
		}
		if sc.remote == nil {
			return Hit{}, false, nil
		}
		m, err := sc.remote.Stat(ctx, k)
		switch {
		case errors.Is(err, tiercache.ErrNotFound):
			return Hit{}, false, nil
		case err != nil:
			return Hit{}, false, remoteErr(fmt.Errorf("remote stat %q: %w", k, err))
		}
		if err := sc.checkRemote(k, m); err != nil {
			return Hit{}, false, err
		}
		if !dst.fits(k, m.Paths) {
			return Hit{}, false, nil
		}
		if err := dst.inTheWay(m.Paths); err != nil {
			return Hit{}, false, err
		}
		return Hit{Key: k, Tier: tiercache.TierRemote, Entry: remoteEntry(m)}, true, nil
	}
	var fallback getter = peek
	if strict || !withLocal {
		fallback = nil
	}
	return c.restore(ctx, key, prefixes, withLocal, strict, get, fallback)
}

// remoteEntry describes the remote entry m, from a scope's view (whose
// Meta names the scope) or from the store (whose key holds it).
func remoteEntry(m remote.Meta) tiercache.Entry {
	scope, key := tiercache.SplitStoredKey(m.Key)
	if m.Scope != "" {
		scope = m.Scope
	}
	return tiercache.Entry{Key: key, Scope: scope, Description: m.Description, Paths: m.Paths, Size: m.Size, Files: m.Files,
		Stored: m.ArchiveSize, Created: m.Created, LastAccess: m.LastAccess, Tier: tiercache.TierRemote, Signature: m.Signature}
}

// pullLocal restores key from the local tier into dir, if it holds key.
// A damaged local archive is dropped and reported as a miss, with
// Hit.Dropped saying why.
func (c *Cache) pullLocal(ctx context.Context, key string, dst *target, opts PullOptions) (Hit, bool, error) {
	s, ok, err := c.local.Lookup(ctx, key)
	if errors.Is(err, tiercache.ErrIntegrity) {
		return Hit{Dropped: err}, false, nil // damaged (its metadata or tree lost), and dropped
	}
	if err != nil || !ok || !c.trustedLocal(s) {
		// An untrusted version is left for the download to replace.
		return Hit{}, false, err
	}
	if !dst.fits(key, s.Entry.Paths) {
		return Hit{}, false, nil
	}
	if err := dst.inTheWay(s.Entry.Paths); err != nil {
		return Hit{}, false, err
	}
	c.touchRemote(ctx, key)
	h, err := c.restoreStored(ctx, s, dst, opts)
	if errors.Is(err, tiercache.ErrIntegrity) && ctx.Err() == nil {
		_ = c.local.Drop(ctx, s)
		return Hit{Dropped: err}, false, nil
	}
	if err != nil {
		return Hit{}, false, err
	}
	h.Tier = tiercache.TierLocal
	return h, true, nil
}

// restoreStored restores the local version s into dir: from its tree if
// it has one (or, for Link, once it has one), else from its archive.
func (c *Cache) restoreStored(ctx context.Context, s local.Stored, dst *target, opts PullOptions) (Hit, error) {
	dir := dst.paths[0]
	h := Hit{Path: dir, Key: s.Entry.Key, Entry: s.Entry}
	h.Entry.Tier = tiercache.TierLocal
	indexed := len(s.Entry.Paths) > 0
	// An expanded tree is copied whole: where it holds what must be
	// left out of dst, the archive is extracted instead. So it is for a
	// Cache with Trust: the signature covers the archive's digest, and
	// a tree could have been changed since it was made (through links
	// a Link pull made, by a job that checks no signature).
	if s.Tree != "" && !opts.Link && s.Archive != "" && (c.opts.Trust != nil || dst.onTier(s.Tree, indexed) != "") {
		s.Tree = ""
	}
	if s.Tree == "" && !opts.Link {
		// Skipped if it cannot fit beside dir, as a download is.
		if err := roomBeside(s.Entry.Key, dir, s.Entry.Size); err != nil {
			return Hit{}, err
		}
		start := time.Now()
		err := c.extractTo(ctx, dst, len(s.Entry.Paths) > 0, func(stage string) (archive.Result, error) {
			f, err := os.Open(s.Archive)
			if err != nil {
				return archive.Result{}, err
			}
			defer f.Close()
			var r io.Reader = f
			if c.opts.Progress != nil {
				r = &progressReader{r: f, p: Progress{Op: "extract", Key: s.Entry.Key, Total: s.ArchiveSize}, fn: c.opts.Progress}
			}
			eo := s.ExtractLimits(c.opts.Extract)
			eo.SkipSymlinks = dst.skipSymlinks
			res, err := archive.Extract(ctx, r, stage, eo)
			h.SkippedSymlinks, h.FirstSkipped = res.SkippedSymlinks, res.FirstSkipped
			switch {
			case err == nil:
				err = s.CheckArchive(res)
			case local.IsCorrupt(err) && !errors.Is(err, tiercache.ErrIntegrity) && s.Sound() == nil:
				// Refused by this cache's own options (lower limits,
				// StrictSymlinks), not damaged: the entry stays for
				// callers who accept it.
				err = fmt.Errorf("restoring into %s: %w", dir, err)
			case local.IsCorrupt(err):
				err = s.Damaged(err)
			default:
				err = fmt.Errorf("restoring into %s: %w", dir, err)
			}
			return res, err
		})
		h.CopyTime = time.Since(start)
		return h, err
	}
	tree, err := c.local.Tree(ctx, s)
	if err != nil && opts.Link && dst.skipSymlinks && s.Archive != "" && fsutil.SymlinkHint(err) != "" {
		// The tree to link from needs the entry's symlinks, which this
		// system will not create: restore from the archive, skipping
		// them as asked, rather than fail.
		return c.restoreFromArchive(ctx, s, dst, opts)
	}
	if err != nil {
		return Hit{}, err
	}
	if opts.Link {
		if err := c.local.MarkLinked(s); err != nil {
			return Hit{}, err
		}
	}
	if p := dst.onTier(tree, indexed); p != "" {
		// Copied whole, the tree would overwrite the tier.
		how := "a restore from the archive leaves it out"
		if opts.Link {
			how = "a pull that does not link leaves it out"
		}
		return Hit{}, fmt.Errorf("restoring into %s: the entry holds %s, where the local tier is, and is kept as a tree, which is restored whole: %s", dir, p, how)
	}
	start := time.Now()
	var progress func(int64)
	if fn := c.opts.Progress; fn != nil {
		var copied atomic.Int64
		progress = func(n int64) { fn(Progress{Op: "copy", Key: h.Key, Done: copied.Add(n), Total: h.Entry.Size}) }
	}
	if len(s.Entry.Paths) > 0 {
		how := placeCopy
		if opts.Link {
			how = placeLink
		}
		h.Copy, err = placeAll(ctx, tree, dst, how, progress)
		h.CopyTime = time.Since(start)
		if unreadableIn(err, tree) && s.Archive != "" {
			return c.restoreFromArchive(ctx, s, dst, opts)
		}
		return h, err
	}
	// An existing dir keeps its own mode and mtime, as tar -x keeps an
	// existing directory's; treecopy would give it the cached root's.
	before, statErr := os.Stat(dir)
	h.Copy, err = treecopy.Copy(ctx, tree, dir, treecopy.Options{Link: opts.Link, Progress: progress})
	if err == nil && statErr == nil && before.IsDir() {
		err = setRootMeta(dir, nil, dirMode(before), before.ModTime())
	}
	if unreadableIn(err, tree) && s.Archive != "" {
		return c.restoreFromArchive(ctx, s, dst, opts)
	}
	if err != nil {
		// treecopy names paths relative to dir; say which dir.
		return Hit{}, fmt.Errorf("restoring into %s: %w", dir, err)
	}
	h.CopyTime = time.Since(start)
	return h, nil
}

// unreadableIn reports whether err is a refusal to read something under
// tree: a directory or file of the entry that its owner may not read
// (mode 000, a directory of 0300), as trees pushed by root can hold.
func unreadableIn(err error, tree string) bool {
	var pe *fs.PathError
	return errors.Is(err, fs.ErrPermission) && errors.As(err, &pe) &&
		(pe.Path == tree || strings.HasPrefix(pe.Path, tree+string(filepath.Separator)))
}

// restoreFromArchive restores s from its archive, not its tree, which
// holds what the tree's owner may not read: extraction creates each
// file and directory before it gives it its mode, as the first pull of
// the entry did. A Link pull copies then: there is no tree to link from.
func (c *Cache) restoreFromArchive(ctx context.Context, s local.Stored, dst *target, opts PullOptions) (Hit, error) {
	s.Tree = ""
	opts.Link = false
	return c.restoreStored(ctx, s, dst, opts)
}

// pullHydrate downloads key into dir and, as the same bytes arrive, into
// the local tier as its archive (and its tree too, for Link), once
// however many processes ask: the others wait for the local tier's key
// lock and then restore from what the first one stored.
func (c *Cache) pullHydrate(ctx context.Context, key string, dst *target, prefixes []string, opts PullOptions) (Hit, bool, error) {
	unlock, was, stored, err := c.lockToDownload(ctx, key, c.trustedLocal)
	switch {
	case err != nil:
		return Hit{}, false, err
	case stored:
		return c.pullLocal(ctx, key, dst, opts)
	}
	defer unlock()
	dl, meta, ok, err := c.openDownload(ctx, key, dst, prefixes, opts.NoBase)
	if err != nil || !ok {
		return Hit{}, false, err
	}
	defer dl.Close()
	if !dst.fits(key, meta.Paths) {
		return Hit{}, false, nil
	}
	if err := dst.inTheWay(meta.Paths); err != nil {
		return Hit{}, false, err
	}
	dir := dst.paths[0]
	need := meta.ArchiveSize
	if opts.Link {
		need += meta.Size
	}
	if free, err := c.local.FreeBytes(); err == nil && need > free {
		return Hit{}, false, remoteErr(fmt.Errorf("%w: %w: key %q: it needs %d bytes, only %d are free in the local tier at %s", tiercache.ErrLimitExceeded, ErrNoRoom, key, need, free, c.local.Root()))
	}
	if !opts.Link {
		if err := roomBeside(key, dir, meta.Size); err != nil {
			return Hit{}, false, err
		}
	}
	var s local.Stored
	var got archive.Result
	store := func(extractTo string) error {
		var err, putErr error
		s, putErr = c.local.PutArchive(ctx, key, local.Info{Description: meta.Description, Paths: meta.Paths, Signature: meta.Signature, Replaces: was}, opts.Link, func(ctx context.Context, w io.Writer, tree string) (archive.Result, error) {
			intoDir := tree == ""
			if intoDir {
				tree = extractTo
			}
			// Symlinks may be skipped in DIR, never in the local tier's tree.
			got, err = c.fillFrom(ctx, key, dl, meta, tree, localTierWriter{w}, intoDir && dst.skipSymlinks)
			var lte *localTierError
			if err != nil && intoDir && !IsRemote(err) && !errors.As(err, &lte) && !errors.Is(err, tiercache.ErrNotFound) {
				// Writing the tree failed: DIR's disk, not the
				// local tier's.
				err = fmt.Errorf("restoring into %s: %w", dir, err)
			}
			return got, err
		})
		return fillFirst(putErr, err)
	}
	var h Hit
	if opts.Link {
		err = store("")
		if err != nil && dst.skipSymlinks && fsutil.SymlinkHint(err) != "" && ctx.Err() == nil {
			// The local tier's tree needs the entry's symlinks, which
			// this system will not create: nothing was stored, so
			// download again as a copy that skips them.
			unlock()
			opts.Link = false
			return c.pullHydrate(ctx, key, dst, prefixes, opts)
		}
		if err == nil {
			unlock() // Tree, which restoreStored may call, takes it
			h, err = c.restoreStored(ctx, s, dst, opts)
		}
	} else {
		start := time.Now()
		err = c.extractTo(ctx, dst, len(meta.Paths) > 0, func(stage string) (archive.Result, error) {
			err := store(stage)
			return got, err
		})
		h = Hit{Path: dir, Key: key, Entry: s.Entry, CopyTime: time.Since(start), SkippedSymlinks: got.SkippedSymlinks, FirstSkipped: got.FirstSkipped}
		h.Entry.Tier = tiercache.TierLocal
	}
	c.endDownload(ctx, dl)
	if errors.Is(err, tiercache.ErrNotFound) {
		return Hit{}, false, nil // replaced under us: a miss
	}
	if err != nil {
		return Hit{}, false, err
	}
	if !c.opts.ReadOnly {
		_ = c.remote.Touch(ctx, key)
	}
	h.Tier = tiercache.TierRemote
	dl.report(&h, got.ArchiveSize)
	return h, true, nil
}

// Push stores the tree at dir under key: in both tiers, as PutResult
// does, or with Options.NoLocal in the remote only, the archive streaming
// from dir to the upload. Either way the upload is skipped when the
// remote already holds an identical archive, and a dir that changes size
// or file count while it is read commits nothing.
//
// The local tier keeps the archive, not the tree: the bytes streamed to
// the upload are written to it as they are made, one sequential write
// instead of a copy of every file. PutResult.Path is that archive.
//
// With PushOptions.IfAbsent, Push first asks whether key is stored, and
// does nothing if it is.
//
// The cache never stores itself: a dir holding the local tier (its own,
// or Options.LocalRoot) is archived without it (PutResult.LeftOut), and
// a dir that is the tier or inside it is refused
// (tiercache.ErrInvalidArgument). Sockets are left out, as tar leaves
// them out (PutResult.Sockets).
func (c *Cache) Push(ctx context.Context, key, dir string, opts PushOptions) (PutResult, error) {
	return c.PushPaths(ctx, key, []string{dir}, opts)
}

// tierRoot is the root of the local tier a pull must not write into and
// a push must leave out: the Cache's own, even unused (NoLocal), else
// Options.LocalRoot; "" if none.
func (c *Cache) tierRoot() string {
	if c.local != nil {
		return c.local.Root()
	}
	return c.opts.LocalRoot
}

// PushPaths is Push for one entry holding several paths, each a file or
// a directory, as actions/cache's multi-line path: a Go job's module and
// build caches under one key, say. One directory is pushed as Push
// pushes it, its tree the archive's root. Anything else is stored path
// by path, path i as the archive member named i (see
// archive.Source.Paths), and the entry records the paths (see
// PushOptions.Names), which PullPaths restores by position.
func (c *Cache) PushPaths(ctx context.Context, key string, paths []string, opts PushOptions) (PutResult, error) {
	start := time.Now()
	if err := tiercache.ValidateKey(key); err != nil {
		return PutResult{}, err
	}
	if err := local.CheckDescription(key, opts.Description); err != nil {
		return PutResult{}, fmt.Errorf("put %q: %w: %w", key, tiercache.ErrInvalidArgument, err)
	}
	dir, err := newSource(paths, opts, c.tierRoot())
	if err != nil {
		return PutResult{}, fmt.Errorf("put %q: %w", key, err)
	}
	if c.opts.ReadOnly {
		return PutResult{}, fmt.Errorf("put %q: %w", key, tiercache.ErrReadOnly)
	}
	// A pull killed while it staged inside a directory (its parent not
	// writable: see extractInto) left its stage there, which is no part
	// of the tree to save.
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			_ = sweepStages(ctx, p)
		}
	}
	if !c.opts.NoLocal {
		if err := c.needLocal("push " + strconv.Quote(key)); err != nil {
			return PutResult{}, err
		}
	}
	// absent: the remote was just seen to lack key, which the push need
	// not ask again.
	res := PutResult{LeftOut: dir.leftOut}
	absent := false
	if opts.IfAbsent {
		in, rerr, err := c.storedIn(ctx, key)
		if err != nil {
			return PutResult{}, err
		}
		res.RemoteErr = rerr
		switch {
		case in != "":
			res.AlreadyIn, res.Elapsed = in, time.Since(start)
			return res, nil
		case rerr != nil && c.opts.NoLocal:
			return PutResult{}, rerr // nowhere to store it
		case rerr != nil:
			if err := c.pushLocal(ctx, key, dir, opts.Description, &res); err != nil {
				return res, err
			}
			res.Elapsed = time.Since(start)
			return res, nil
		}
		absent = c.remote != nil
	}
	if c.opts.NoLocal {
		res, err := c.pushRemote(ctx, key, dir, opts, absent)
		res.LeftOut = dir.leftOut
		return res, err
	}
	if c.remote == nil {
		err = c.pushLocal(ctx, key, dir, opts.Description, &res)
	} else {
		err = c.pushBoth(ctx, key, dir, opts, absent, &res)
	}
	if err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// storedIn reports the tier that holds key, for PushOptions.IfAbsent: the
// remote if there is one, else the local tier; "" if neither does. A
// remote that fails to answer comes back as rerr (a *RemoteError), the
// local tier answering in its place unless NoLocal.
func (c *Cache) storedIn(ctx context.Context, key string) (in tiercache.Tier, rerr, err error) {
	if c.remote != nil {
		m, broken, err := c.currentVersion(ctx, key)
		switch {
		case broken:
			// Stored, but every pull refuses it: the push replaces it.
			return "", nil, nil
		case err == nil && c.opts.Signer != nil && !c.signedByUs(key, m):
			// Not what this push would leave: it replaces the entry
			// with one signed, as a push without IfAbsent would.
			return "", nil, nil
		case err == nil:
			return tiercache.TierRemote, nil, nil
		case errors.Is(err, tiercache.ErrNotFound):
			return "", nil, nil
		case ctx.Err() != nil:
			return "", nil, ctx.Err()
		}
		rerr = remoteErr(fmt.Errorf("remote stat %q: %w", key, err))
		if c.opts.NoLocal {
			return "", rerr, nil
		}
	}
	_, ok, err := c.local.Peek(ctx, key)
	if err != nil || !ok {
		// A damaged local copy holds nothing: the push stores it.
		return "", rerr, ignoreDropped(err)
	}
	return tiercache.TierLocal, rerr, nil
}

// pushLocal stores the archive of src in the local tier alone.
func (c *Cache) pushLocal(ctx context.Context, key string, src source, description string, res *PutResult) error {
	want, err := src.measure(ctx)
	if err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	_, err = c.storeArchive(ctx, key, src, description, want, nil, nil, nil, res)
	return err
}

// pushBoth is Push with a local tier and a remote; absent tells that the
// remote was just seen to lack key.
func (c *Cache) pushBoth(ctx context.Context, key string, src source, opts PushOptions, absent bool, res *PutResult) error {
	description := opts.Description
	want, meta, old, same, err := c.planPush(ctx, key, src, description, absent)
	if IsRemote(err) && ctx.Err() == nil {
		// The remote cannot even say what it holds: store locally only.
		res.RemoteErr = err
		return c.pushLocal(ctx, key, src, description, res)
	}
	if err != nil {
		return err
	}
	order := &pushOrder{c: c, key: key}
	defer order.release()
	if same {
		// Same shape: archives are deterministic, so the digest of the
		// archive stored locally tells whether the remote already holds
		// this exact tree, which saves the upload (a re-run job).
		var s local.Stored
		s, err = c.storeArchive(ctx, key, src, description, want, nil, nil, order, res)
		if err != nil {
			return err
		}
		if strings.EqualFold(s.SHA256, old.SHA256) && s.ArchiveSize == old.ArchiveSize {
			c.skipUpload(ctx, key, old, res)
			c.settleSkipped(ctx, key)
			return nil
		}
		// Same shape, other bytes (a file rewritten in place). Upload
		// the archive just stored.
		ru, note := c.pickBase(ctx, key, src, opts, true)
		defer ru.close()
		res.BaseNote = note
		err = c.uploadFile(ctx, meta, s, ru, res)
	} else {
		// The stream ends (and the upload may commit) only once the
		// archive is checked and committed locally. A failed upload does
		// not stop the local side (see survivingWriter).
		ru, note := c.pickBase(ctx, key, src, opts, old.Key != "")
		defer ru.close()
		res.BaseNote = note
		err = c.uploadFrom(ctx, meta, true, ru, func(w io.Writer) (produced, error) {
			s, err := c.storeArchive(ctx, key, src, description, want, &survivingWriter{w: w}, ru, order, res)
			return produced{sum: s.SHA256, index: s.Index, size: s.ArchiveSize}, err
		}, res)
	}
	if IsRemote(err) && res.Path != "" && ctx.Err() == nil {
		res.RemoteErr, res.Uploaded = err, false
		return nil
	}
	return err
}

// storeArchive writes an archive of src into the local tier under key,
// and to upload as well if it is set, failing if the tree archived is not
// of shape want. With order, it takes the push lock before the commit
// (see pushOrder). It fills res.Path and res.Entry.
func (c *Cache) storeArchive(ctx context.Context, key string, src source, description string, want tiercache.Shape, upload io.Writer, ru *reuser, order *pushOrder, res *PutResult) (local.Stored, error) {
	s, err := c.local.PutArchive(ctx, key, c.localInfo(description, src.names), false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
		if upload != nil {
			w = io.MultiWriter(w, upload)
		}
		ar, err := c.archiveChecked(ctx, key, src, want, w, true, ru)
		res.noteSockets(src, ar)
		if err == nil {
			err = order.take(ctx)
		}
		return ar, err
	})
	if err != nil {
		return s, err
	}
	e := s.Entry
	e.Tier = tiercache.TierLocal
	res.Path, res.Entry = s.Archive, e
	return s, nil
}

// pushRemote is Push with NoLocal, once the key and the mode are checked.
func (c *Cache) pushRemote(ctx context.Context, key string, dir source, opts PushOptions, absent bool) (PutResult, error) {
	start := time.Now()
	description := opts.Description
	want, meta, old, same, err := c.planPush(ctx, key, dir, description, absent)
	if err != nil {
		return PutResult{}, err
	}
	res := PutResult{Entry: tiercache.Entry{Key: key, Description: description, Paths: dir.names, Size: want.Size, Files: want.Files, Tier: tiercache.TierRemote}}
	if same {
		h := sha256.New()
		ar, err := c.archiveChecked(ctx, key, dir, want, h, false, nil)
		if err != nil {
			return res, err
		}
		res.noteSockets(dir, ar)
		if identical(h, ar, old) {
			c.skipUpload(ctx, key, old, &res)
			res.Elapsed = time.Since(start)
			return res, nil
		}
	}
	ru, note := c.pickBase(ctx, key, dir, opts, old.Key != "")
	defer ru.close()
	res.BaseNote = note
	// A signature covers the digest: hash here only then.
	digest := c.opts.Signer != nil
	err = c.uploadFrom(ctx, meta, digest, ru, func(w io.Writer) (produced, error) {
		r, err := c.archiveChecked(ctx, key, dir, want, w, digest, ru)
		res.noteSockets(dir, r)
		return produced{sum: r.SHA256, index: r.Index, size: r.ArchiveSize}, err
	}, &res)
	res.Elapsed = time.Since(start)
	return res, err
}

// archiveChecked writes an archive of src to w and fails if the tree
// archived is not of shape want. The result has a digest only if digest.
func (c *Cache) archiveChecked(ctx context.Context, key string, src source, want tiercache.Shape, w io.Writer, digest bool, ru *reuser) (archive.Result, error) {
	opts := c.opts.Write
	ru.writeOptions(&opts)
	// Without digest, only the remote store reads the bytes, and it
	// hashes what it uploads.
	opts.SkipDigest = !digest
	r, err := archive.WriteSource(ctx, w, src.Source, opts)
	if err != nil {
		return r, fmt.Errorf("archive %q: %w", key, err)
	}
	if r.Shape != want {
		return r, changedErr(src.String(), "the archive", r.Shape, want)
	}
	return r, nil
}

// pullRemote is Pull with NoLocal.
func (c *Cache) pullRemote(ctx context.Context, key string, prefixes []string, dst *target, strict bool) (Hit, bool, error) {
	return c.restore(ctx, key, prefixes, false, strict, func(sc *Cache, ctx context.Context, k string) (Hit, bool, error) {
		return sc.pullInto(ctx, k, dst)
	}, nil)
}

// pullInto is pullRemote for one key: the archive is extracted beside
// dir and verified against its manifest (see extractInto).
func (c *Cache) pullInto(ctx context.Context, key string, dst *target) (Hit, bool, error) {
	rc, meta, ok, err := c.openRemote(ctx, key)
	if err != nil || !ok {
		return Hit{}, false, err
	}
	defer rc.Close()
	if !dst.fits(key, meta.Paths) {
		return Hit{}, false, nil
	}
	if err := dst.inTheWay(meta.Paths); err != nil {
		return Hit{}, false, err
	}
	dir := dst.paths[0]
	if err := roomBeside(key, dir, meta.Size); err != nil {
		return Hit{}, false, err
	}
	var res archive.Result
	err = c.extractTo(ctx, dst, len(meta.Paths) > 0, func(stage string) (archive.Result, error) {
		var err error
		res, err = c.fillFrom(ctx, key, rc, meta, stage, nil, dst.skipSymlinks)
		return res, err
	})
	if errors.Is(err, tiercache.ErrNotFound) {
		return Hit{}, false, nil // replaced under us: a miss
	}
	if err != nil {
		return Hit{}, false, err
	}
	if !c.opts.ReadOnly {
		_ = c.remote.Touch(ctx, key)
	}
	return Hit{Path: dir, Key: key, Tier: tiercache.TierRemote, Entry: remoteEntry(meta), Downloaded: res.ArchiveSize,
		SkippedSymlinks: res.SkippedSymlinks, FirstSkipped: res.FirstSkipped}, true, nil
}

// extractTo is extractInto for a pull into dst: for an entry of several
// paths (indexed), the stage is beside the first path and each path is
// put into place in turn (see placeAll).
func (c *Cache) extractTo(ctx context.Context, dst *target, indexed bool, extract func(stage string) (archive.Result, error)) error {
	if !indexed {
		return c.extractInto(ctx, dst.paths[0], func(stage string) (archive.Result, error) {
			res, err := extract(stage)
			if err == nil {
				err = dst.leaveOut(stage, 0)
			}
			return res, err
		})
	}
	first, err := filepath.Abs(dst.paths[0])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(first), 0o755); err != nil {
		return fmt.Errorf("restoring into %s: %w", dst.paths[0], err)
	}
	stage, done, err := stageBeside(ctx, filepath.Dir(first))
	if err != nil {
		return fmt.Errorf("restoring into %s: %w", dst.paths[0], err)
	}
	defer done()
	if _, err := extract(stage); err != nil {
		return err
	}
	for i := range dst.paths {
		if err := dst.leaveOut(filepath.Join(stage, strconv.Itoa(i)), i); err != nil {
			return err
		}
	}
	_, err = placeAll(ctx, stage, dst, placeMove, nil)
	return err
}

// extractInto has extract fill a fresh directory beside dir, then moves
// the tree in (see moveInto): whatever extract fails on (a corrupt or
// truncated archive) leaves dir as it was. Errors about dir itself name
// it.
func (c *Cache) extractInto(ctx context.Context, dir string, extract func(stage string) (archive.Result, error)) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return fmt.Errorf("restoring into %s: %w", dir, err)
	}
	// Beside dir, so the tree can be renamed into place.
	stage, done, err := stageBeside(ctx, filepath.Dir(abs))
	var inside fs.FileInfo // dir, when the stage is in it
	if errors.Is(err, fs.ErrPermission) {
		// dir's parent is not the user's to write (a checkout in a
		// root-owned directory, an image's WORKDIR holding the job's
		// node_modules), but an existing dir may be: stage in it and
		// merge, as tar -x would write there.
		if fi, serr := os.Stat(abs); serr == nil && fi.IsDir() {
			if s, d, ierr := stageBeside(ctx, abs); ierr == nil {
				stage, done, err, inside = s, d, nil, fi
			}
		}
	}
	if err != nil {
		return fmt.Errorf("restoring into %s: %w", dir, err)
	}
	defer done() // removes what is left of the stage
	res, err := extract(stage)
	if err != nil {
		if inside != nil {
			// A failed pull leaves DIR as it was, its mtime too.
			done()
			_ = setRootMeta(abs, nil, dirMode(inside), inside.ModTime())
		}
		return err
	}
	if _, err := moveInto(ctx, stage, abs, res.Root); err != nil {
		return fmt.Errorf("restoring into %s: %w", dir, err)
	}
	if inside == nil {
		// What a pull killed while it staged inside dir left there.
		_ = sweepStages(ctx, abs)
	} else {
		// Removing the stage changes dir's mtime: remove it now, then
		// give dir back what moveInto gave it.
		done()
		if err := setRootMeta(abs, res.Root, dirMode(inside), inside.ModTime()); err != nil {
			return fmt.Errorf("restoring into %s: %w", dir, err)
		}
	}
	return nil
}

// moveInto puts the tree at stage into dir: by renaming stage when dir is
// absent (moved is then true), by renaming stage's members into dir when
// dir is an empty directory, else by hardlinking its files into dir;
// stage then still exists, and only its names are left to remove.
//
// dir's own mode and mtime end up as the archive's root member says
// (root, which archives made by Write never have), or else as dir had
// them, or as a new directory gets them when dir was absent: never
// stage's, which newStage made private (0700) and extraction touched.
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
		if names, err := dirNames(dir); err == nil && len(names) == 0 {
			// Empty: the stage's members are renamed into it, not the
			// stage over it, so dir keeps its inode: a shell working in
			// dir (pull KEY .) sees the tree, not a deleted directory.
			// Where they cannot be (dir is a mount point), merge.
			if err := renameMembers(stage, dir); err == nil {
				return false, setRootMeta(dir, root, dirMode(fi), fi.ModTime())
			}
		}
	}
	// Not empty (or not a directory, which treecopy reports): merge.
	// treecopy gives dir the metadata of stage's root, so stage takes
	// what dir must end with. dir may be a symlink to a directory, which
	// treecopy follows: the metadata is its target's.
	before, err := os.Stat(dir)
	if err == nil && before.IsDir() {
		if err := setRootMeta(stage, root, dirMode(before), before.ModTime()); err != nil {
			return false, err
		}
	}
	// ChmodSource: the stage is this pull's own, and a directory of the
	// entry its owner may not read (mode 000) must still be entered.
	if _, err := treecopy.Copy(ctx, stage, dir, treecopy.Options{Link: true, ChmodSource: true}); err != nil {
		return false, err
	}
	if err == nil && before.IsDir() && root == nil {
		// treecopy keeps permissions alone; a zero mtime leaves it.
		return false, setRootMeta(dir, nil, dirMode(before), time.Time{})
	}
	return false, nil
}

// dirNames returns the names in the directory dir.
func dirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// renameMembers renames every member of stage into the empty directory
// dir. On failure it renames back those it moved, so dir is empty again.
func renameMembers(stage, dir string) error {
	names, err := dirNames(stage)
	if err != nil {
		return err
	}
	for i, n := range names {
		if err := os.Rename(filepath.Join(stage, n), filepath.Join(dir, n)); err != nil {
			for _, m := range names[:i] {
				_ = os.Rename(filepath.Join(dir, m), filepath.Join(stage, m))
			}
			return err
		}
	}
	return nil
}

// dirMode is the mode an existing directory keeps through a restore:
// its permissions and its setgid, setuid and sticky bits (a group's
// shared directory, a world-writable one), which chmod would drop.
func dirMode(fi fs.FileInfo) fs.FileMode {
	return fi.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSetuid | fs.ModeSticky)
}

// setRootMeta gives dir root's mode and mtime if root is set, else mode
// and, unless it is zero, mtime.
//
// Only dir's owner may set them. A DIR that belongs to someone else but
// that the user may write into (a shared 0777 or group-writable 2775
// directory made by root) keeps its metadata as the restore left it, as
// with tar -x: the tree is in place, and refusing it then would fail the
// build for a mode nobody asked to change.
func setRootMeta(dir string, root *archive.RootMeta, mode fs.FileMode, mtime time.Time) error {
	if root != nil {
		mode, mtime = root.Mode, root.ModTime
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	foreign := fsutil.OwnedByOther(fi)
	if dirMode(fi) != mode {
		if err := os.Chmod(dir, mode); err != nil && !(foreign && errors.Is(err, fs.ErrPermission)) {
			return err
		}
	}
	if mtime.IsZero() || fi.ModTime().Equal(mtime) {
		return nil
	}
	if err := os.Chtimes(dir, time.Time{}, mtime); err != nil && !(foreign && errors.Is(err, fs.ErrPermission)) {
		return err
	}
	return nil
}

// localTierError is a failed write of a download's bytes into the local
// tier, told apart from a failed write of the tree into DIR.
type localTierError struct{ err error }

func (e *localTierError) Error() string { return "local tier: " + e.err.Error() }
func (e *localTierError) Unwrap() error { return e.err }

// localTierWriter marks its writer's errors as the local tier's.
type localTierWriter struct{ w io.Writer }

func (l localTierWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if err != nil {
		err = &localTierError{err}
	}
	return n, err
}

// freeBeside is fsutil.FreeBytes, for roomBeside; tests replace it.
var freeBeside = fsutil.FreeBytes

// roomBeside refuses, before anything is downloaded, a tree of size bytes
// that cannot fit beside dir, where it is extracted: like an entry the
// local tier has no room for, it is skipped (a RemoteError wrapping
// ErrNoRoom), so the job builds without it.
func roomBeside(key, dir string, size int64) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil // extractInto reports it
	}
	if free, err := freeBeside(filepath.Dir(abs)); err == nil && size > free {
		return remoteErr(fmt.Errorf("%w: %w: key %q: the tree is %d bytes, only %d are free beside %s", tiercache.ErrLimitExceeded, ErrNoRoom, key, size, free, dir))
	}
	return nil
}

// source is what a push archives, and the paths its entry records: none
// for one directory's tree (archived as the root), else one per path.
type source struct {
	archive.Source
	names   []string
	leftOut []string // the local tier below paths, left out (see leaveOutTier)
}

// dirSource is the source of one directory's tree.
func dirSource(dir string) source { return source{Source: archive.Source{Dir: dir}} }

// newSource makes the source of a push of paths with opts' excludes and
// names, leaving out the local tier at tier (see leaveOutTier). One path
// that is a directory is one directory's tree, as it was before entries
// could hold several paths, so its entry stays as a pull of one DIR, and
// an older tiercache, expects it.
func newSource(paths []string, opts PushOptions, tier string) (source, error) {
	if len(paths) == 0 {
		return source{}, fmt.Errorf("%w: no path to push", tiercache.ErrInvalidArgument)
	}
	ex, err := archive.NewExclude(opts.Exclude)
	if err != nil {
		return source{}, err
	}
	pats, leftOut, err := leaveOutTier(tier, paths, ex)
	if err != nil {
		return source{}, err
	}
	if pats != nil {
		if ex, err = archive.NewExclude(append(slices.Clone(opts.Exclude), pats...)); err != nil {
			return source{}, err
		}
	}
	if len(paths) == 1 && !opts.RecordPaths {
		// A missing path is reported by the measure, as Push always has.
		if fi, err := os.Stat(paths[0]); err != nil || fi.IsDir() {
			return source{Source: archive.Source{Dir: paths[0], Exclude: ex}, leftOut: leftOut}, nil
		}
	}
	names := opts.Names
	if names == nil {
		names = paths
	}
	if len(names) != len(paths) {
		return source{}, fmt.Errorf("%w: %d names for %d paths", tiercache.ErrInvalidArgument, len(names), len(paths))
	}
	if err := tiercache.ValidatePaths(names); err != nil {
		return source{}, err
	}
	return source{Source: archive.Source{Paths: paths, Exclude: ex}, names: slices.Clone(names), leftOut: leftOut}, nil
}

// leaveOutTier returns the exclude patterns that keep the local tier at
// root out of a push of paths, and where they leave it out, below each
// path holding it. Its default place, ~/.cache/tiercache, is inside the
// ~/.cache that jobs push whole, and archiving it would read the push's
// own archive as it grows (a push that fails every time) and carry this
// machine's tier to the next. A path that is the tier or lies inside it
// is refused. A tier that ex leaves out already needs no pattern. The
// patterns, anchored, apply below every path: one that would also leave
// out something else in another fails the push, naming it, rather than
// lose it.
func leaveOutTier(root string, paths []string, ex *archive.Exclude) (pats, leftOut []string, err error) {
	tier, err := os.Stat(root)
	if root == "" || err != nil {
		return nil, nil, nil // nothing there to archive
	}
	for _, p := range paths {
		if _, in := local.Within(p, root); in {
			return nil, nil, fmt.Errorf("%w: %s is the local tier or inside it (%s), which a push never archives", tiercache.ErrInvalidArgument, p, root)
		}
	}
	for i, p := range paths {
		rel, ok := local.Within(root, p)
		if !ok || excluded(ex, filepath.ToSlash(rel)) {
			continue
		}
		for j, q := range paths {
			other := filepath.Join(q, rel)
			if fi, err := os.Lstat(other); j != i && err == nil && !os.SameFile(fi, tier) {
				return nil, nil, fmt.Errorf("the local tier %s is inside %s, and leaving it out of that path would leave %s out of %s too: put the local tier outside the paths pushed", root, p, other, q)
			}
		}
		pats = append(pats, "/"+globEscape(filepath.ToSlash(rel))+"/")
		leftOut = append(leftOut, filepath.Join(p, rel))
	}
	return pats, leftOut, nil
}

// excluded reports whether ex leaves the directory at rel (slash-
// separated) out of its tree: it or a directory above it matches.
func excluded(ex *archive.Exclude, rel string) bool {
	names := strings.Split(rel, "/")
	for n := 1; n <= len(names); n++ {
		if ex.Match(strings.Join(names[:n], "/"), true) {
			return true
		}
	}
	return false
}

// globEscape escapes the characters an exclude pattern gives a meaning,
// so that s matches itself alone.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// noteSockets records in r the sockets the archive ar of src left out.
func (r *PutResult) noteSockets(src source, ar archive.Result) {
	r.Sockets, r.FirstSocket = ar.Sockets, ""
	if ar.Sockets == 0 {
		return
	}
	r.FirstSocket = filepath.Join(src.Dir, filepath.FromSlash(ar.FirstSocket))
	if i, rest, _ := strings.Cut(ar.FirstSocket, "/"); src.Dir == "" {
		if n, err := strconv.Atoi(i); err == nil && n < len(src.Paths) {
			r.FirstSocket = filepath.Join(src.Paths[n], filepath.FromSlash(rest))
		}
	}
}

// paths are the paths s archives.
func (s source) paths() []string {
	if s.Dir != "" {
		return []string{s.Dir}
	}
	return s.Paths
}

// measure returns the Shape an archive of s will have.
func (s source) measure(ctx context.Context) (tiercache.Shape, error) {
	if s.Dir != "" && s.Exclude == nil {
		// The fast path: a parallel walk.
		return local.Measure(ctx, s.Dir)
	}
	return archive.Measure(ctx, s.Source)
}

// target is where a pull restores, and what it skipped on the way.
type target struct {
	paths        []string                         // as given, or as resolve or names ordered them for the entry fits last took
	given        []string                         // the paths as given
	names        []string                         // PullOptions.Names
	subset       bool                             // paths holds those of given the entry fits last took records, by name
	skipSymlinks bool                             // PullOptions.SkipSymlinks
	resolve      func([]string) ([]string, error) // PullOptions.Resolve
	root         string                           // the local tier's, "" if none
	skipped      []string                         // entries left out for their number of paths (see fits)
	tier         []string                         // per path, where the local tier's root is below it ("" if not)
	leftOut      []string                         // what leaveOut removed, as paths below paths
}

// guard refuses a pull into the local tier at root (a path that is root
// or inside it), and notes where root lies below a path, so that the
// entry's member there is left out (see leaveOut): a tree pulled into
// ~/.cache, say, must not merge its own tiercache/ into the live tier,
// nor replace the directory holding it.
func (t *target) guard(root string) error {
	t.tier = make([]string, len(t.paths))
	for i, p := range t.paths {
		if _, in := local.Within(p, root); in {
			return fmt.Errorf("%w: %s is the local tier or inside it (%s), which a pull never writes into", tiercache.ErrInvalidArgument, p, root)
		}
		t.tier[i], _ = local.Within(root, p)
	}
	return nil
}

// onTier returns what of the tree at from would land on the local tier
// (see onTierAt), as a path below the path of t it would go to; "" if
// nothing. indexed tells that from holds t's paths as its members "0",
// "1", ...
func (t *target) onTier(from string, indexed bool) string {
	for i := range t.tier {
		dir := from
		if indexed {
			dir = filepath.Join(from, strconv.Itoa(i))
		}
		if rel := t.onTierAt(dir, i); rel != "" {
			return filepath.Join(t.paths[i], rel)
		}
	}
	return ""
}

// onTierAt returns, relative to from, the member of the tree at from
// (to be put at t's path i) that would land on the local tier: the one
// at its root's place, or one above it that is not a directory, which
// would replace a directory holding the tier; "" if none.
func (t *target) onTierAt(from string, i int) string {
	if i >= len(t.tier) || t.tier[i] == "" {
		return ""
	}
	rel := ""
	for _, name := range strings.Split(t.tier[i], string(filepath.Separator)) {
		rel = filepath.Join(rel, name)
		fi, err := os.Lstat(filepath.Join(from, rel))
		if err != nil {
			return ""
		}
		if !fi.IsDir() || rel == t.tier[i] {
			return rel
		}
	}
	return ""
}

// leaveOut removes from the tree at from, a stage to be put at t's path
// i, what would land on the local tier (see onTierAt), noting it in
// t.leftOut. The directory it leaves keeps its mode and mtime.
func (t *target) leaveOut(from string, i int) error {
	rel := t.onTierAt(from, i)
	if rel == "" {
		return nil
	}
	p := filepath.Join(from, rel)
	parent, err := os.Lstat(filepath.Dir(p))
	if err != nil {
		return err
	}
	if parent.Mode().Perm()&0o200 == 0 {
		// A read-only directory of the tree: writable for the removal.
		if err := os.Chmod(filepath.Dir(p), parent.Mode().Perm()|0o700); err != nil {
			return err
		}
	}
	err = fsutil.RemoveAll(p)
	if err == nil {
		err = setRootMeta(filepath.Dir(p), nil, dirMode(parent), parent.ModTime())
	}
	if err != nil {
		return fmt.Errorf("leaving out %s: %w", filepath.Join(t.paths[i], rel), err)
	}
	t.leftOut = append(t.leftOut, filepath.Join(t.paths[i], rel))
	return nil
}

// fits reports whether the entry k, which records paths, can be restored
// into t: an entry of one directory's tree into one path, an entry of
// several paths into as many. An entry that does not fit, the key asked
// for included, is skipped as one made for another set of paths
// (actions/cache, which folds the paths into its key, would not see it
// at all): a job whose list of paths changed misses, builds, and its
// push replaces the entry.
func (t *target) fits(k string, paths []string) bool {
	if t.resolve != nil {
		return t.fitsResolved(k, paths)
	}
	t.paths, t.subset = t.given, false
	if max(len(paths), 1) == len(t.given) {
		return t.fitsNames(k, paths)
	}
	if t.fitsSubset(paths) {
		return true
	}
	holds := "one directory's tree"
	if len(paths) > 0 {
		holds = countPaths(paths)
	}
	msg := fmt.Sprintf("key %q holds %s; the pull names %s", k, holds, countPaths(t.given))
	if !slices.Contains(t.skipped, msg) { // both tiers may have k
		t.skipped = append(t.skipped, msg)
	}
	return false
}

// fitsNames orders t's paths for the entry k, which records paths as
// many as t's, by the names the pull gave them (see PullOptions.Names).
func (t *target) fitsNames(k string, recorded []string) bool {
	if t.names == nil || len(recorded) < 2 {
		return true
	}
	order, all := t.byName(recorded)
	moved := -1 // a recorded name the pull gives at another position
	for i, j := range order {
		if j >= 0 && j != i {
			moved = i
			break
		}
	}
	switch {
	case moved < 0:
		t.paths = t.given
	case all:
		// The same names reordered: each to the path of its name.
		t.paths = t.pick(order)
	default:
		msg := fmt.Sprintf("key %q records %q as its path %d, which the pull names as path %d; by position it would get another path's content", k, recorded[moved], moved+1, order[moved]+1)
		if !slices.Contains(t.skipped, msg) {
			t.skipped = append(t.skipped, msg)
		}
		return false
	}
	return t.guardAgain()
}

// fitsSubset takes an entry recording fewer paths than t's, each one of
// the names the pull gave (see PullOptions.Names): t's paths become those
// of its names, in the entry's order.
func (t *target) fitsSubset(recorded []string) bool {
	if t.names == nil || len(recorded) == 0 || len(recorded) >= len(t.given) {
		return false
	}
	order, all := t.byName(recorded)
	if !all {
		return false
	}
	t.paths, t.subset = t.pick(order), true
	return t.guardAgain()
}

// byName matches recorded names with the names t's pull gave (see
// matchNames).
func (t *target) byName(recorded []string) (order []int, all bool) {
	return matchNames(t.names, recorded, foldsCase)
}

// matchNames returns, for each recorded name, the position of the same
// name among names (-1 if none), and whether every one has a position of
// its own. Names match as cleanName writes them; those left unmatched
// then match in any case if fold is set (a file system that folds case,
// where Beta is beta), then with "\" read as a separator (a Windows push
// read on Linux or macOS, where "\" is a byte of a name). A looser
// match comes after the exact one, among the names left, so names that
// match exactly stay apart (A and a, as a Linux push may record them);
// and a name that a looser match makes the same as another left matches
// neither, rather than one of them by chance.
func matchNames(names, recorded []string, fold bool) (order []int, all bool) {
	order = make([]int, len(recorded))
	for i := range order {
		order[i] = -1
	}
	seen := make([]bool, len(names))
	keys := []func(string) string{cleanName}
	if fold {
		keys = append(keys, func(s string) string { return foldName(cleanName(s), true) })
	}
	keys = append(keys, func(s string) string {
		return foldName(cleanName(strings.ReplaceAll(s, `\`, "/")), fold)
	})
	for _, key := range keys {
		// Positions by key among the names left; -1 for a key shared.
		at, rec := make(map[string]int), make(map[string]int)
		for j, n := range names {
			if !seen[j] {
				k := key(n)
				if _, dup := at[k]; dup {
					at[k] = -1
				} else {
					at[k] = j
				}
			}
		}
		for i, r := range recorded {
			if order[i] < 0 {
				rec[key(r)]++
			}
		}
		for i, r := range recorded {
			if order[i] >= 0 {
				continue
			}
			k := key(r)
			if j, ok := at[k]; ok && j >= 0 && !seen[j] && rec[k] == 1 {
				order[i], seen[j] = j, true
			}
		}
	}
	return order, !slices.Contains(order, -1)
}

// sameName reports whether the pull's name n is the recorded name r (see
// matchNames).
func sameName(n, r string) bool {
	_, all := matchNames([]string{n}, []string{r}, foldsCase)
	return all
}

// pick returns t's given paths in order.
func (t *target) pick(order []int) []string {
	paths := make([]string, len(order))
	for i, j := range order {
		paths[i] = t.given[j]
	}
	return paths
}

// cleanName is a path as named, compared with others (see
// PullOptions.Names): "./a/" is "a".
func cleanName(s string) string { return path.Clean(filepath.ToSlash(s)) }

// guardAgain notes again where the local tier lies below t's paths, after
// their order changed (see guard, which the pull already passed).
func (t *target) guardAgain() bool {
	if t.root != "" {
		_ = t.guard(t.root)
	}
	return true
}

// fitsResolved is fits for a pull whose paths resolve chooses from those
// the entry k records: t's paths become the ones chosen.
func (t *target) fitsResolved(k string, paths []string) bool {
	var err error
	var chosen []string
	if len(paths) == 0 {
		err = errors.New("it holds one directory's tree, with no path recorded")
	} else if chosen, err = t.resolve(paths); err == nil && len(chosen) != len(paths) {
		err = fmt.Errorf("%d paths chosen for its %d", len(chosen), len(paths))
	}
	if err == nil {
		t.paths = chosen
		if t.root != "" {
			err = t.guard(t.root)
		}
	}
	if err == nil {
		return true
	}
	// Each error quotes the recorded paths it names.
	msg := fmt.Sprintf("key %q cannot be restored by its recorded paths: %v", k, err)
	if !slices.Contains(t.skipped, msg) {
		t.skipped = append(t.skipped, msg)
	}
	return false
}

// inTheWay fails a pull into one path of an entry recording paths (which
// fits t) where something of the other kind is: the manifest says what
// the entry holds there (a directory's tree, or the one file a push of a
// single path records), so the pull fails before anything is read,
// extracted or stored, not once the tree is in the stage. It fails, not
// skips: the path is the caller's mistake, which no other candidate
// mends. Of several paths, which are directories is known only from the
// archive: placeAll checks them once the stage is filled.
func (t *target) inTheWay(paths []string) error {
	// An entry recording one path holds the file a push of one path
	// records, or a directory (--match, or a push that left out its
	// other, missing, paths): the second only under the name the pull
	// gives, as far as the manifest tells, so that one is left to placeAll,
	// which checks once the stage is filled.
	if t.resolve != nil || t.subset || len(t.paths) != 1 || len(paths) > 1 {
		return nil
	}
	if len(paths) == 1 && len(t.names) == 1 && sameName(t.names[0], paths[0]) {
		return nil
	}
	err := inTheWay(t.paths[0], len(paths) == 0)
	if err != nil && len(paths) == 1 {
		err = fmt.Errorf("%w, or a directory it records as %q (an entry pushed with --match: pull it with --match)", err, paths[0])
	}
	return err
}

// inTheWay returns the error of restoring a directory (isDir) or a file
// at p, if what is at p cannot take it: a file where a directory is, or
// a directory where something else is (a file, a dangling symlink).
func inTheWay(p string, isDir bool) error {
	dst, err := os.Stat(p)
	if err == nil && dst.IsDir() && !isDir {
		return fmt.Errorf("restoring into %s: %s is a directory; the entry holds a file there", p, p)
	}
	if _, lerr := os.Lstat(p); lerr == nil && isDir && (err != nil || !dst.IsDir()) {
		return fmt.Errorf("restoring into %s: %s is not a directory; the entry holds a directory there", p, p)
	}
	return nil
}

// countPaths says "1 path: a" or "2 paths: a, b". A path holding a
// control character is quoted: an entry's paths are whoever pushed it
// says, and a line break in the note would let one start a line of the
// job's log (a CI runner takes a line starting with "::" for a workflow
// command).
func countPaths(paths []string) string {
	shown := make([]string, len(paths))
	for i, p := range paths {
		shown[i] = p
		if strings.ContainsFunc(p, unicode.IsControl) {
			shown[i] = strconv.Quote(p)
		}
	}
	if len(paths) == 1 {
		return "1 path: " + shown[0]
	}
	return fmt.Sprintf("%d paths: %s", len(paths), strings.Join(shown, ", "))
}

// How place puts a tree's member into place.
const (
	placeMove = iota // rename it from a stage, which it empties
	placeLink        // hardlink its files from the local tier's tree
	placeCopy        // copy its files from the local tier's tree
)

// placeAll puts member i of the tree at from into dst's path i (see
// place), calling progress, if set, with the size of each file copied or
// linked. Paths a Resolve chose must each lie apart from those placed
// before it (see apart).
func placeAll(ctx context.Context, from string, dst *target, how int, progress func(int64)) (treecopy.Result, error) {
	paths := dst.paths
	var sum treecopy.Result
	// A file that cannot go where a directory is, or a directory where
	// something else is (a file, a dangling symlink), fails the pull
	// before any path is touched.
	for i, p := range paths {
		src, err := os.Lstat(filepath.Join(from, strconv.Itoa(i)))
		if err != nil {
			return sum, err
		}
		if err := inTheWay(p, src.IsDir()); err != nil {
			return sum, err
		}
	}
	placed := placedSet{before: linksOnTheWay(paths)}
	for _, i := range outerFirst(paths) {
		p := paths[i]
		check := placed.confined
		if dst.resolve != nil {
			check = placed.apart
		}
		if err := check(p); err != nil {
			return sum, fmt.Errorf("restoring into %s: %w", p, err)
		}
		r, err := place(ctx, filepath.Join(from, strconv.Itoa(i)), p, how, progress)
		if err != nil {
			return sum, fmt.Errorf("restoring into %s: %w", p, err)
		}
		placed.add(p)
		sum.Files += r.Files
		sum.Bytes += r.Bytes
		sum.Linked += r.Linked
	}
	return sum, nil
}

// outerFirst returns the indices of paths, those nearer the root first:
// a path placed after one inside it would replace what was placed there
// (and lead it, through a symlink its tree holds, anywhere), where
// placed before it, it is the outer one confined checks the inner
// one's way through.
func outerFirst(paths []string) []int {
	depth := make([]int, len(paths))
	order := make([]int, len(paths))
	for i, p := range paths {
		depth[i] = strings.Count(realPath(p), string(filepath.Separator))
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(depth[a], depth[b]) })
	return order
}

// realPath is p made absolute with the symlinks on its existing part
// resolved: where it is, however it is spelled (a symlink of the
// caller's may lead a short spelling deep into another path).
func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	var rest []string
	for a := abs; ; a = filepath.Dir(a) {
		if r, err := filepath.EvalSymlinks(a); err == nil {
			slices.Reverse(rest)
			return filepath.Join(append([]string{r}, rest...)...)
		}
		if filepath.Dir(a) == a {
			return abs
		}
		rest = append(rest, filepath.Base(a))
	}
}

// placedSet holds the paths placed so far, as the file system found
// them once placed, each looked up once: an entry records up to
// tiercache.MaxPaths of them.
type placedSet struct {
	ids   []fs.FileInfo
	names []string
	// before holds the symlinks on the way to the paths before any was
	// placed, with their targets: the caller's own, which confined
	// allows.
	before map[string]string
}

// linksOnTheWay returns the symlinks among paths and their ancestors,
// with their targets.
func linksOnTheWay(paths []string) map[string]string {
	links := map[string]string{}
	for _, p := range paths {
		for a := p; filepath.Dir(a) != a; a = filepath.Dir(a) {
			if _, seen := links[a]; seen {
				continue
			}
			if fi, err := os.Lstat(a); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				if target, err := os.Readlink(a); err == nil {
					links[a] = target
				}
			}
		}
	}
	return links
}

func (s *placedSet) add(p string) {
	if fi, err := os.Stat(p); err == nil {
		s.ids, s.names = append(s.ids, fi), append(s.names, p)
	}
}

// within returns the placed path that p is, or lies below, as the file
// system finds them (-1 if none), and the paths from p up to it, that
// one excluded.
func (s *placedSet) within(p string) (int, []string) {
	var below []string
	for a := p; ; a = filepath.Dir(a) {
		if fi, err := os.Stat(a); err == nil {
			for i, id := range s.ids {
				if os.SameFile(fi, id) {
					return i, below
				}
			}
		}
		if filepath.Dir(a) == a {
			return -1, nil
		}
		below = append(below, a)
	}
}

// apart fails if p, or a directory on the way to it, is one of those
// placed: ResolveMatched compares the names, but on a file system that
// folds case or Unicode forms (macOS, Windows) "X/b" lies inside "x", and
// a symlink that placing x brought would then lead b elsewhere. (A path
// a later one replaced lies inside that later one, which is in the set.)
func (s *placedSet) apart(p string) error {
	if i, _ := s.within(p); i >= 0 {
		return fmt.Errorf("%s lies inside %s, restored before it", p, s.names[i])
	}
	return nil
}

// confined fails if p lies inside a path placed before it (a pull may
// name "a" and "a/sub") through a symlink that placing brought: the
// entry's tree placed at "a" decides what "a/sub" is, and a symlink there
// would lead the next path out of "a", anywhere. A symlink that was
// there before, to the same target, is the caller's, and allowed.
func (s *placedSet) confined(p string) error {
	i, below := s.within(p)
	if i < 0 {
		return nil
	}
	for _, b := range below {
		// A junction, on Windows, is irregular.
		fi, err := os.Lstat(b)
		if err != nil || fi.Mode()&(fs.ModeSymlink|fs.ModeIrregular) == 0 {
			continue
		}
		if was, ok := s.before[b]; ok && fi.Mode()&fs.ModeSymlink != 0 {
			if target, err := os.Readlink(b); err == nil && target == was {
				continue
			}
		}
		return fmt.Errorf("%s is a link inside %s that the entry restored there: it is not followed", b, s.names[i])
	}
	return nil
}

// place puts the file or directory src at dst, as a pull of one
// directory restores into it: a directory's entries replace what dst
// holds at the same names, the rest being left alone, and an existing
// dst keeps its own mode and mtime (a new one gets the recorded ones).
// A file replaces a file or symlink at dst, never a directory. progress,
// if set, is called with the size of each file once it is in place.
func place(ctx context.Context, src, dst string, how int, progress func(int64)) (treecopy.Result, error) {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return treecopy.Result{}, err
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return treecopy.Result{}, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return treecopy.Result{}, err
	}
	before, statErr := os.Stat(abs)
	if fi.IsDir() {
		if how == placeMove {
			var root *archive.RootMeta
			if errors.Is(statErr, fs.ErrNotExist) {
				root = &archive.RootMeta{Mode: fi.Mode().Perm(), ModTime: fi.ModTime()}
			}
			_, err := moveInto(ctx, src, abs, root)
			var le *os.LinkError
			if err == nil || !errors.As(err, &le) || le.Op != "rename" {
				return treecopy.Result{}, err
			}
			// Not on the stage's file system (an entry's paths may be
			// on several): copy, hardlinking where treecopy can.
		}
		r, err := treecopy.Copy(ctx, src, abs, treecopy.Options{Link: how != placeCopy, Progress: progress, ChmodSource: how == placeMove})
		if err == nil && statErr == nil && before.IsDir() {
			err = setRootMeta(abs, nil, dirMode(before), before.ModTime())
		}
		return r, err
	}
	if statErr == nil && before.IsDir() {
		return treecopy.Result{}, fmt.Errorf("%s is a directory; the entry holds a file there", dst)
	}
	r := treecopy.Result{Files: 1, Bytes: fi.Size()}
	placed := func(err error) error {
		if err == nil && progress != nil {
			progress(fi.Size())
		}
		return err
	}
	if how == placeMove {
		if err := os.Rename(src, abs); err == nil {
			return r, placed(nil)
		}
	}
	// A new name beside dst, renamed over it: dst is the old file or
	// the new one, never half of it.
	// It is made in a private directory of its own, so no other process
	// can take or plant the name in between.
	tmpDir, release, err := newStage(filepath.Dir(abs))
	if err != nil {
		return r, err
	}
	defer release()
	tmp := filepath.Join(tmpDir, "file")
	if how == placeLink {
		if err := os.Link(src, tmp); err == nil {
			r.Linked = 1
			return r, placed(os.Rename(tmp, abs))
		}
	}
	if err := copyFile(src, tmp, fi); err != nil {
		return r, err
	}
	return r, placed(os.Rename(tmp, abs))
}

// copyFile copies the regular file src, described by fi, to a new file
// dst with its mode and mtime.
func copyFile(src, dst string, fi fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, fi.Mode().Perm())
	}
	if err == nil {
		err = os.Chtimes(dst, time.Time{}, fi.ModTime())
	}
	return err
}
