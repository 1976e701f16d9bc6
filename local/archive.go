package local

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
)

// archiveFile is the name of a version's archive, beside meta.json.
const archiveFile = "archive.tar.zst"

// linkedFile, in a version directory, says its tree has been hardlinked
// into a caller's directory (see MarkLinked); a tree made after that
// removes it.
const linkedFile = "linked"

// archiveMeta is what meta.json records of a version's archive: the same
// size and digest the remote tier's manifest records for the same bytes.
type archiveMeta struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Index locates the archive's index frame (archive.Result.Index of
	// the push, or the manifest's of the download); zero, and absent from
	// the files of older versions, when there is none.
	Index indexMeta `json:"index,omitzero"`
}

// indexMeta is archive.IndexInfo as meta.json spells it, field for field
// so that the two convert.
type indexMeta struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

// checkIndex returns an error unless i is no index or one that could end
// an archive of size bytes: of positive length, inside the archive and
// ending at its end, with a lowercase hex digest. It does not read the
// frame (archive.ReadIndex does).
func checkIndex(i archive.IndexInfo, size int64) error {
	switch {
	case i == archive.IndexInfo{}:
		return nil
	case i.Length <= 0 || i.Offset < 0 || i.Offset > size || size-i.Offset != i.Length:
		return fmt.Errorf("index at %d+%d does not end an archive of %d bytes", i.Offset, i.Length, size)
	case !isHexDigest(i.SHA256) || strings.ToLower(i.SHA256) != i.SHA256:
		return fmt.Errorf("index SHA-256 %q is not 64 lowercase hex digits", i.SHA256)
	}
	return nil
}

// errGone reports a version that vanished (replaced, then swept past its
// grace) between finding it and reading it.
var errGone = errors.New("version gone")

// Stored is one version of a local entry, as Lookup and PutArchive
// return it. Its paths stay readable for the grace period after the
// version stops being current.
type Stored struct {
	// Entry is the version's metadata, Tier unset.
	Entry tiercache.Entry
	// Tree is the path of the expanded tree, or "" when the version is
	// kept as an archive alone (see Cache.Get, which makes the tree).
	Tree string
	// Archive is the path of the version's .tar.zst, the same bytes as
	// the remote tier's object, or "" for a version kept as a tree alone
	// (stored by Put, or by a tiercache that kept only trees).
	Archive string
	// ArchiveSize and SHA256 are the archive's recorded size and
	// lower-case hex digest; a reader must check them, since the file
	// could have been damaged on disk since.
	ArchiveSize int64
	SHA256      string
	// Index locates the archive's index frame as recorded (zero if none):
	// a reader verifies it with archive.ReadIndex before using it.
	Index archive.IndexInfo
	// Linked reports that Tree has been hardlinked into a directory
	// outside the tier (see MarkLinked): a file changed in place there
	// changed it too, so that the archive's digest no longer vouches
	// for it.
	Linked bool

	version string
	meta    meta
}

// Lookup finds the current version of key and records the access, as Get
// does, but never makes a tree: a version kept as an archive has Tree
// "" unless a Get made one. It is what a caller that reads the archive
// itself (a restore into a directory of its own) needs. An entry whose
// pointer or metadata is unusable, or kept as a tree alone whose tree is
// missing, is dropped and reported as a miss with an error wrapping
// tiercache.ErrIntegrity.
func (c *Cache) Lookup(ctx context.Context, key string) (Stored, bool, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return Stored{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Stored{}, false, err
	}
	version, m, ok, err := c.resolve(key)
	if err != nil {
		return Stored{}, false, c.dropBroken(ctx, key, version, err)
	}
	if !ok {
		return Stored{}, false, nil
	}
	vdir := filepath.Join(c.dataDir, version)
	s := Stored{version: version, meta: m}
	if m.Archive == nil {
		touchAccess(vdir)
		s.Tree = filepath.Join(vdir, treeDir)
	} else {
		s.Archive = filepath.Join(vdir, archiveFile)
		s.ArchiveSize, s.SHA256, s.Index = m.Archive.Size, m.Archive.SHA256, archive.IndexInfo(m.Archive.Index)
		ok, err := c.useTree(ctx, c.nameOf(key), vdir)
		if err != nil {
			return Stored{}, false, fmt.Errorf("lookup %q: %w", key, err)
		}
		if ok {
			s.Tree = filepath.Join(vdir, treeDir)
			_, err := os.Lstat(filepath.Join(vdir, linkedFile))
			s.Linked = err == nil
		}
	}
	s.Entry = c.entry(version, m)
	return s, true, nil
}

// MarkLinked records that s's tree is about to be hardlinked into a
// directory outside the tier, where a build may change its files in
// place, and so the tree's: Lookup then reports it Linked. The mark
// goes with the tree when prune drops it.
func (c *Cache) MarkLinked(s Stored) error {
	if s.version == "" || s.Archive == "" {
		return nil // a tree alone: no digest to vouch for it anyway
	}
	// Read-only: the mark of an earlier link, 0444, cannot be opened
	// for writing but by root.
	mark := filepath.Join(c.dataDir, s.version, linkedFile)
	f, err := os.OpenFile(mark, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("key %q: marking its tree linked: %w", s.Entry.Key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("key %q: marking its tree linked: %w", s.Entry.Key, err)
	}
	c.own(mark)
	return nil
}

// Peek returns the entry of key's current version, as Lookup finds it,
// but records no access and takes no lock: for a caller that only asks
// whether key is stored (a lookup that restores nothing, a push skipped
// when the key is there), which is not a use of the entry. A miss is
// (Entry{}, false, nil); a damaged entry, which Lookup would drop, an
// error wrapping tiercache.ErrIntegrity.
func (c *Cache) Peek(ctx context.Context, key string) (tiercache.Entry, bool, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return tiercache.Entry{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return tiercache.Entry{}, false, err
	}
	version, m, ok, err := c.resolve(key)
	if !ok || err != nil {
		return tiercache.Entry{}, false, err
	}
	return c.entry(version, m), true, nil
}

// dropBroken removes the pointer of key, if it still names version,
// when err, resolve's, says the pointer or the version's metadata is
// unusable: a damaged entry no reader can use, which fsck --repair would
// remove, and which a pull would otherwise fail on every time. It
// returns err. Metadata a newer tiercache wrote is not damaged, and
// stays.
func (c *Cache) dropBroken(ctx context.Context, key, version string, err error) error {
	if errors.Is(err, tiercache.ErrIntegrity) && !errors.Is(err, errNewerMeta) && ctx.Err() == nil {
		_ = c.evict(ctx, c.nameOf(key), version)
	}
	return err
}

// touchAccess records an access to a version. It only steers LRU
// eviction: failing (a read-only mount, say) must not fail a hit.
func touchAccess(vdir string) {
	now := time.Now()
	_ = os.Chtimes(vdir, now, now)
}

// useTree records an access to the version directory vdir of the key
// stored under name and reports whether it holds a tree, under the stripe
// lock Prune holds to remove a tree (see dropTree): a tree found here was
// just marked used, so it stays for the grace period.
func (c *Cache) useTree(ctx context.Context, name, vdir string) (bool, error) {
	lock, err := c.lockStripe(ctx, name)
	if err != nil {
		return false, err
	}
	defer lock.Unlock()
	touchAccess(vdir)
	return hasTree(vdir), nil
}

// hasTree reports whether the version directory vdir holds a tree.
func hasTree(vdir string) bool {
	fi, err := os.Lstat(filepath.Join(vdir, treeDir))
	return err == nil && fi.IsDir()
}

// PutArchive stores under key, with info, an entry kept as an archive:
// the bytes fill
// writes to w, which must be a .tar.zst that archive.Extract accepts.
// fill returns the archive.Result of what it wrote (archive.Write and
// archive.Extract compute it anyway): its Shape, SHA-256 and Index are
// recorded as given, its ArchiveSize must be the number of bytes written
// to w, and its Index, if any, must end the archive (a downloader sets
// the one the remote manifest records).
// With withTree, fill also writes the expanded tree into the directory it
// is given (else that argument is ""), which is kept beside the archive
// as if Get had made it.
//
// One sequential write of the compressed bytes is all a push or a
// download costs the local tier, instead of a write of every file. The
// entry is committed atomically after fill returns nil; if fill fails or
// ctx is cancelled, nothing is committed.
func (c *Cache) PutArchive(ctx context.Context, key string, info Info, withTree bool, fill func(ctx context.Context, w io.Writer, tree string) (archive.Result, error)) (Stored, error) {
	if err := checkPut(key, info); err != nil {
		return Stored{}, err
	}
	if fill == nil {
		return Stored{}, fmt.Errorf("%w: nil fill for key %q", tiercache.ErrInvalidArgument, key)
	}
	version, m, err := c.putVersion(ctx, key, info, func(ctx context.Context, ver string) (tiercache.Shape, *archiveMeta, error) {
		tree := ""
		if withTree {
			tree = filepath.Join(ver, treeDir)
			if err := os.Mkdir(tree, 0o755); err != nil {
				return tiercache.Shape{}, nil, err
			}
		}
		f, err := os.OpenFile(filepath.Join(ver, archiveFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			return tiercache.Shape{}, nil, err
		}
		cw := &countingWriter{w: bufio.NewWriterSize(f, 1<<20)}
		res, err := fill(ctx, cw, tree)
		if err == nil {
			err = cw.w.(*bufio.Writer).Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		sh := res.Shape
		switch {
		case err != nil:
			return sh, nil, err
		case sh.Size < 0 || sh.Files < 0:
			return sh, nil, fmt.Errorf("%w: fill reported %s", tiercache.ErrInvalidArgument, sh)
		case !isHexDigest(res.SHA256):
			return sh, nil, fmt.Errorf("%w: fill reported SHA-256 %q", tiercache.ErrInvalidArgument, res.SHA256)
		case res.ArchiveSize != cw.n:
			return sh, nil, fmt.Errorf("%w: fill reported an archive of %d bytes and wrote %d", tiercache.ErrInvalidArgument, res.ArchiveSize, cw.n)
		}
		if err := checkIndex(res.Index, cw.n); err != nil {
			return sh, nil, fmt.Errorf("%w: fill reported an %w", tiercache.ErrInvalidArgument, err)
		}
		return sh, &archiveMeta{Size: cw.n, SHA256: strings.ToLower(res.SHA256), Index: indexMeta(res.Index)}, nil
	})
	if err != nil {
		return Stored{}, err
	}
	vdir := filepath.Join(c.dataDir, version)
	s := Stored{Entry: c.entry(version, m), Archive: filepath.Join(vdir, archiveFile),
		ArchiveSize: m.Archive.Size, SHA256: m.Archive.SHA256, Index: archive.IndexInfo(m.Archive.Index), version: version, meta: m}
	if withTree {
		s.Tree = filepath.Join(vdir, treeDir)
	}
	return s, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range strings.ToLower(s) {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// CheckArchive compares what an extraction or inspection of s's archive
// read with what the version records, and reports any difference as
// tiercache.ErrIntegrity: the local file was damaged since it was
// stored.
func (s Stored) CheckArchive(r archive.Result) error {
	m := s.meta
	switch {
	case m.Archive == nil:
		return fmt.Errorf("%w: key %q: the local entry has no archive", tiercache.ErrInvalidArgument, s.Entry.Key)
	case r.ArchiveSize != m.Archive.Size || !strings.EqualFold(r.SHA256, m.Archive.SHA256):
		return fmt.Errorf("%w: key %q: the local archive %s is %d bytes with SHA-256 %s, it was stored as %d bytes with %s", tiercache.ErrIntegrity, s.Entry.Key, s.Archive, r.ArchiveSize, r.SHA256, m.Archive.Size, m.Archive.SHA256)
	case r.Size != m.Size || r.Files != m.Files:
		return fmt.Errorf("%w: key %q: the local archive %s holds %d files of %d bytes, the entry records %d files of %d bytes", tiercache.ErrIntegrity, s.Entry.Key, s.Archive, r.Files, r.Size, m.Files, m.Size)
	}
	return nil
}

// ExtractLimits returns o lowered to what the entry records (see
// archive.ExtractOptions.Within), and expecting the entry's paths.
func (s Stored) ExtractLimits(o archive.ExtractOptions) archive.ExtractOptions {
	o = o.Within(s.meta.Size, s.meta.Files)
	o.Paths = len(s.meta.Paths)
	return o
}

// Damaged wraps err, which reading s's archive met (see IsCorrupt), as
// tiercache.ErrIntegrity, once: err may wrap it already.
func (s Stored) Damaged(err error) error {
	if errors.Is(err, tiercache.ErrIntegrity) {
		return fmt.Errorf("key %q: the local archive %s: %w", s.Entry.Key, s.Archive, err)
	}
	return fmt.Errorf("%w: key %q: the local archive %s: %w", tiercache.ErrIntegrity, s.Entry.Key, s.Archive, err)
}

// IsCorrupt reports whether err, from reading a local archive, means the
// file is damaged (rather than the reader failing to write or being
// cancelled): the archive then fails its checks, and Drop should remove
// the entry.
func IsCorrupt(err error) bool {
	return errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, tiercache.ErrUnsafeArchive) || errors.Is(err, tiercache.ErrLimitExceeded)
}

// Sound reads s's archive whole and reports, as an error wrapping
// tiercache.ErrIntegrity, whether it differs from the size and SHA-256
// recorded for it. A caller whose extraction was refused by its own
// options (lower limits, StrictSymlinks) uses it to tell that refusal,
// which must not cost the entry, from damage, which Drop should remove.
func (s Stored) Sound() error {
	if s.Archive == "" {
		return fmt.Errorf("%w: key %q: the local entry has no archive", tiercache.ErrInvalidArgument, s.Entry.Key)
	}
	f, err := os.Open(s.Archive)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != s.ArchiveSize || sum != s.SHA256 {
		return fmt.Errorf("%w: key %q: the local archive %s is %d bytes with SHA-256 %s, it was stored as %d bytes with %s", tiercache.ErrIntegrity, s.Entry.Key, s.Archive, n, sum, s.ArchiveSize, s.SHA256)
	}
	return nil
}

// Drop removes s's version from the cache if it is still current: for an
// entry found damaged, so that the next reader fetches a fresh copy
// instead of failing on it again. A newer version is left alone.
func (c *Cache) Drop(ctx context.Context, s Stored) error {
	if s.version == "" {
		return nil
	}
	name := nameOf(tiercache.ScopedKey(s.Entry.Scope, s.Entry.Key))
	if err := c.evict(ctx, name, s.version); err != nil && !errors.Is(err, errReplaced) {
		return fmt.Errorf("drop %q: %w", s.Entry.Key, err)
	}
	if !c.noSync {
		return syncPath(c.indexDir)
	}
	return nil
}

// materialize extracts s's archive into the tree beside it, once however
// many processes ask: under the key's lock (see Lock), which the tiered
// cache's hydration also holds, so a caller holding it must not call Get.
// It fails with errGone if the version vanished, and with an error
// wrapping tiercache.ErrIntegrity if the archive fails its checks.
func (c *Cache) materialize(ctx context.Context, s Stored) (string, error) {
	unlock, err := c.Lock(ctx, s.Entry.Key)
	if err != nil {
		return "", err
	}
	defer unlock()
	vdir := filepath.Join(c.dataDir, s.version)
	tree := filepath.Join(vdir, treeDir)
	// Made while we waited, perhaps longer ago than the grace: this is
	// a use of it all the same.
	if ok, err := c.useTree(ctx, nameOf(tiercache.ScopedKey(s.Entry.Scope, s.Entry.Key)), vdir); err != nil {
		return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
	} else if ok {
		return tree, nil
	}
	f, err := os.Open(s.Archive)
	if errors.Is(err, fs.ErrNotExist) {
		return "", c.goneOrDamaged(s, err)
	}
	if err != nil {
		return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
	}
	defer f.Close()
	st, err := c.newStaging()
	if err != nil {
		return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
	}
	defer st.release()
	dst := filepath.Join(st.dir, treeDir)
	if err := os.Mkdir(dst, 0o755); err != nil {
		return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
	}
	res, err := archive.Extract(ctx, f, dst, s.ExtractLimits(archive.ExtractOptions{}))
	if err == nil {
		err = s.CheckArchive(res)
	} else if IsCorrupt(err) {
		err = s.Damaged(err)
	}
	if err != nil {
		return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
	}
	c.ownTree(dst)
	if c.flushTreeOf(s.meta) {
		if err := syncTree(dst); err != nil {
			return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
		}
	}
	// A mark left by a tree dropped before it is not this tree's.
	if err := os.Remove(filepath.Join(vdir, linkedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
	}
	if err := os.Rename(dst, tree); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", c.goneOrDamaged(s, err)
		}
		return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
	}
	if !c.noSync {
		if err := syncPath(vdir); err != nil {
			return "", fmt.Errorf("get %q: %w", s.Entry.Key, err)
		}
	}
	touchAccess(vdir)
	return tree, nil
}

// flushTreeOf reports whether a tree made from the archive of a version
// with metadata m must be flushed before it is published. A version
// written unflushed in this boot needs no more: a crash loses it whole
// (see Options.SyncData). A flushed one does, else a crash could leave
// it with a torn tree that nothing marks as such.
func (c *Cache) flushTreeOf(m meta) bool {
	return !c.noSync && (c.boot == "" || m.UnsyncedBoot != c.boot)
}

// goneOrDamaged tells why s's version directory lacks what it should
// hold (missing, s's error): errGone if the version is no longer current,
// replaced and swept meanwhile; else the entry is damaged, and the error
// wraps tiercache.ErrIntegrity so that the caller drops it.
func (c *Cache) goneOrDamaged(s Stored, missing error) error {
	cur, err := c.current(nameOf(tiercache.ScopedKey(s.Entry.Scope, s.Entry.Key)))
	if err != nil {
		return fmt.Errorf("get %q: %w", s.Entry.Key, err)
	}
	if cur != s.version {
		return errGone
	}
	return fmt.Errorf("get %q: %w: the current version lost a file: %w", s.Entry.Key, tiercache.ErrIntegrity, missing)
}

// Tree returns the path of s's expanded tree, extracting it from the
// archive first if need be, as Get does. Like Get, it drops a damaged
// archive, and then fails with an error wrapping tiercache.ErrIntegrity.
// A caller holding key's Lock must not call it.
func (c *Cache) Tree(ctx context.Context, s Stored) (string, error) {
	if s.Tree != "" {
		return s.Tree, nil
	}
	p, err := c.materialize(ctx, s)
	if errors.Is(err, errGone) {
		return "", fmt.Errorf("get %q: %w: the version was replaced and removed meanwhile", s.Entry.Key, tiercache.ErrNotFound)
	}
	if errors.Is(err, tiercache.ErrIntegrity) {
		_ = c.Drop(ctx, s)
	}
	return p, err
}

// dropTree removes the tree made beside an archive in version of name,
// unless it was used within the grace period: a reader given its path by
// Get may still be reading it. It reports whether it removed it.
func (c *Cache) dropTree(ctx context.Context, name, version string) (bool, error) {
	lock, err := c.lockStripe(ctx, name)
	if err != nil {
		return false, err
	}
	defer lock.Unlock()
	vdir := filepath.Join(c.dataDir, version)
	fi, err := os.Stat(vdir)
	if err != nil {
		return false, ignoreNotExist(err)
	}
	if time.Since(fi.ModTime()) < c.grace || !hasTree(vdir) {
		return false, nil
	}
	if err := c.toTrash(filepath.Join(vdir, treeDir), version+".tree"); err != nil {
		return false, err
	}
	// Best effort: a mark left behind only makes the next tree look
	// linked, which costs a trusted reader a download.
	_ = os.Remove(filepath.Join(vdir, linkedFile))
	// The rename set vdir's mtime, which is the entry's last access:
	// losing its tree is no use of the entry.
	_ = os.Chtimes(vdir, time.Time{}, fi.ModTime())
	return true, nil
}

// dropTrees removes trees made beside archives, least recently used
// first, until the entries' bytes on disk fit maxBytes, and lowers each
// record's Stored by what it removed. Trees used within the grace period
// stay, as do trees it fails to remove. The entries whose stored keys
// skip holds (about to be evicted whole) are left out: neither their
// trees nor their bytes count.
func (c *Cache) dropTrees(ctx context.Context, recs []record, maxBytes int64, skip map[string]bool) error {
	var total int64
	var trees []int
	for i, r := range recs {
		if r.broken || skip[tiercache.ScopedKey(r.entry.Scope, r.entry.Key)] {
			continue
		}
		total += r.entry.Stored
		if r.arch != nil && r.tree {
			trees = append(trees, i)
		}
	}
	slices.SortFunc(trees, func(a, b int) int { return recs[a].entry.LastAccess.Compare(recs[b].entry.LastAccess) })
	for _, i := range trees {
		if total <= maxBytes {
			break
		}
		r := &recs[i]
		ok, err := c.dropTree(ctx, r.name, r.version)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			// Dropping a tree is only cleanup: one that cannot be moved
			// (on Windows, while a reader has a file open in it) stays
			// and keeps counting, and a later Prune tries again.
			continue
		}
		if ok {
			r.tree = false
			r.entry.Stored -= r.entry.Size
			total -= r.entry.Size
		}
	}
	return nil
}
