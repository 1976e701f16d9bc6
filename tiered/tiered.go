// Package tiered composes the local directory tier over a remote store:
// reads go through the local tier and hydrate from the remote on a miss,
// writes go to both, and each tier prunes to its own limits.
//
// The local tier keeps each entry as its archive, the remote object's
// bytes: Push writes the stream it uploads into it, and a download is
// kept as it is extracted, so every file is written once (see Pull and
// Push). Hydration happens once per key however many goroutines ask (a
// singleflight group) and however many processes share the local root (the
// local tier's per-key lock): the first caller downloads, verifies the
// archive's recorded size and SHA-256 while extracting it (into the local
// tier's staging for Get, beside the directory for Pull) and keeping its
// bytes, and commits atomically; the others find the new entry. A push
// does not wait for a hydration of its key: if it commits locally first,
// its newer version stays the local entry (see lockToDownload).
// The shared download runs under context.WithoutCancel so that one caller
// giving up does not fail the others; each caller still returns as soon as
// its own context is done.
//
// Pull and Push are the whole of a CI job's restore and save, between a
// directory and the cache, through the local tier or, with
// Options.NoLocal, straight to and from the remote.
package tiered

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/sign"
)

// Options configure a Cache. The zero value is a local-only cache.
type Options struct {
	// Remote is the shared remote tier; nil means local-only.
	Remote remote.Store
	// NoLocal makes Pull and Push go straight between a directory and
	// the remote, for machines that live for one job: a local archive
	// there is never read again, and writing it is one sequential write
	// of the compressed bytes the job can skip.
	// It needs Remote, and is implied by a nil local tier (see New).
	NoLocal bool
	// LocalRoot is the root of the machine's local tier for a Cache
	// given none (see New): other jobs may use it though this one does
	// not, so Pull never writes into it and Push leaves it out, as they
	// treat the Cache's own local tier (used or not, with NoLocal). It
	// is ignored beside a local tier, and while nothing is there.
	LocalRoot string
	// ReadOnly makes the cache safe for untrusted jobs: Get and Restore
	// hydrate from the remote, while Put, Invalidate and Prune fail with
	// tiercache.ErrReadOnly before any write request leaves the process,
	// and no access is recorded remotely.
	ReadOnly bool
	// Write configures archive creation for uploads.
	Write archive.WriteOptions
	// Extract configures the limits applied to downloaded archives.
	Extract archive.ExtractOptions
	// Progress, if set, is called as archive bytes move, from the
	// goroutine doing the transfer. It must be quick and safe for
	// concurrent use.
	Progress func(Progress)
	// TouchInterval is the least time between two access records that
	// local hits of one key send the remote, counted across every
	// process using the same local tier (see local.Cache.RemoteAccess).
	// Zero means DefaultTouchInterval; negative sends one on every local
	// hit.
	TouchInterval time.Duration
	// Scope is the scope the Cache writes its entries to and reads first
	// (see tiercache.ScopedKey); "" is the default scope, where every
	// entry stored before scopes lives.
	Scope string
	// ReadScopes are scopes a lookup reads after Scope, in order, never
	// writing them: a pull request's job reads its base branch's
	// entries. See Restore for the order of keys and scopes.
	ReadScopes []string
	// Signer, if set, signs every entry the Cache uploads (see package
	// sign), so that jobs trusting its public key accept them.
	Signer ed25519.PrivateKey
	// Trust, if set, makes the Cache accept only entries signed by one of
	// its keys: an unsigned entry, one signed by another key or one
	// changed since it was signed is a miss (see UntrustedError), checked
	// before any byte of its archive is trusted; and a local entry serves
	// only if it was fetched from a signed entry it still matches.
	Trust *sign.Trust
}

// DefaultTouchInterval is the default Options.TouchInterval. Remote
// pruning needs to know which keys are in use, not each use: an hour
// keeps a busy persistent runner's local hits off the network while
// leaving eviction order right to within the hour.
const DefaultTouchInterval = time.Hour

// Cache is local over remote. It implements tiercache.Backend; Pull and
// Push restore into and store from a directory, and the other methods
// (Restore, PutResult, PruneTiers, TierStats) expose per-tier detail.
// Make one with New; the zero Cache is not usable.
type Cache struct {
	// local and remote are the tiers' views of opts.Scope.
	local  *local.Cache
	remote remote.Store
	opts   Options
	*state
	// reads are the views of opts.ReadScopes, in order.
	reads []*Cache
	// readScope marks a view of one of them: its entries are read,
	// never written.
	readScope bool
}

var _ tiercache.Backend = (*Cache)(nil)

// New returns a Cache over the given local tier.
//
// l may be nil when opts.Remote is set: the Cache is then remote-only
// (NoLocal), for machines that must not even create a local tier. It
// serves Pull and Push, and its local tier reads as empty: List,
// ListTiers, Stats, TierStats, Invalidate, Prune, the prunes and Fsck
// work on the remote alone. Get, Restore and Put, which
// hand out or fill a local entry, fail with an error wrapping
// tiercache.ErrInvalidArgument.
func New(l *local.Cache, opts Options) (*Cache, error) {
	opts.NoLocal = opts.NoLocal || l == nil
	if opts.NoLocal && opts.Remote == nil {
		return nil, fmt.Errorf("%w: no local tier (or NoLocal) and no remote", tiercache.ErrInvalidArgument)
	}
	for _, s := range append([]string{opts.Scope}, opts.ReadScopes...) {
		if err := tiercache.ValidateScope(s); err != nil {
			return nil, err
		}
	}
	// Refused now rather than by the first Put or Get.
	if err := cmp.Or(opts.Write.Validate(), opts.Extract.Validate()); err != nil {
		return nil, err
	}
	root := &Cache{opts: opts, state: &state{touching: make(chan struct{}, maxTouches), rawLocal: l, rawRemote: opts.Remote}}
	c, err := root.view(opts.Scope)
	if err != nil {
		return nil, err
	}
	c.opts.ReadScopes = opts.ReadScopes
	for _, s := range opts.ReadScopes {
		if s == opts.Scope {
			continue
		}
		v, err := root.view(s)
		if err != nil {
			return nil, err
		}
		v.readScope = true
		c.reads = append(c.reads, v)
	}
	return c, nil
}

// needLocal fails the methods a remote-only Cache (see New) cannot serve.
func (c *Cache) needLocal(op string) error {
	if c.local == nil {
		return fmt.Errorf("%s: %w: no local tier (a remote-only cache has no local entry to hand out or fill)", op, tiercache.ErrInvalidArgument)
	}
	return nil
}

// Local returns the local tier, nil for a remote-only Cache.
func (c *Cache) Local() *local.Cache { return c.local }

// HasRemote reports whether a remote tier is configured.
func (c *Cache) HasRemote() bool { return c.remote != nil }

// Get implements tiercache.Backend: local first, then a verified hydration
// from the remote.
func (c *Cache) Get(ctx context.Context, key string) (string, bool, error) {
	h, ok, err := c.get(ctx, key)
	if err == nil && !ok && h.Dropped != nil {
		// The damaged local copy was all there was (see
		// tiercache.Backend); a remote copy would have made a hit.
		err = h.Dropped
	}
	return h.Path, ok, err
}

func (c *Cache) get(ctx context.Context, key string) (Hit, bool, error) {
	return c.getFrom(ctx, key, nil)
}

// getFrom is get, whose download, if it has one, may read frames from a
// local entry under one of prefixes (see openDelta).
func (c *Cache) getFrom(ctx context.Context, key string, prefixes []string) (Hit, bool, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return Hit{}, false, err
	}
	lh, ok, err := c.localHit(ctx, key)
	if err != nil || ok {
		return lh, ok, err
	}
	if c.remote == nil {
		return lh, false, nil
	}
	h, ok, err := c.hydrate(ctx, key, prefixes)
	if IsUntrusted(err) {
		// A miss, as for every entry this Cache may not use; Restore
		// reports it in Hit.Untrusted.
		return Hit{Untrusted: []error{err}, Dropped: lh.Dropped}, false, nil
	}
	if !ok && h.Dropped == nil {
		h.Dropped = lh.Dropped
	}
	return h, ok, err
}

func (c *Cache) localHit(ctx context.Context, key string) (Hit, bool, error) {
	h, ok, err := c.localEntry(ctx, key)
	if ok {
		c.touchRemote(ctx, key)
	}
	return h, ok, err
}

// localEntry is a local hit that tells the remote nothing.
func (c *Cache) localEntry(ctx context.Context, key string) (Hit, bool, error) {
	if err := c.needLocal("get " + strconv.Quote(key)); err != nil {
		return Hit{}, false, err
	}
	var p string
	if c.opts.Trust != nil {
		s, ok, err := c.local.Lookup(ctx, key)
		if errors.Is(err, tiercache.ErrIntegrity) {
			return Hit{Dropped: err}, false, nil // damaged (its metadata or tree lost), and dropped
		}
		if err != nil || !ok || !c.trustedTree(s) {
			return Hit{}, false, err
		}
		// The tree of the version checked, not of one a concurrent
		// push made current since.
		p, err = c.local.Tree(ctx, s)
		switch {
		case errors.Is(err, tiercache.ErrNotFound):
			return Hit{}, false, nil // replaced meanwhile
		case errors.Is(err, tiercache.ErrIntegrity):
			return Hit{Dropped: err}, false, nil // damaged, and dropped
		case err != nil:
			return Hit{}, false, err
		}
	} else {
		var ok bool
		var err error
		p, ok, err = c.local.Get(ctx, key)
		switch {
		case errors.Is(err, tiercache.ErrIntegrity):
			return Hit{Dropped: err}, false, nil // damaged, and dropped
		case err != nil || !ok:
			return Hit{}, false, err
		}
	}
	e, err := c.local.EntryAt(p)
	if err != nil {
		return Hit{}, false, err
	}
	return Hit{Path: p, Key: key, Tier: tiercache.TierLocal, Entry: e}, true, nil
}

// touchRemote records the access remotely so the shared tier's LRU sees
// keys that persistent machines keep hitting locally. It is best effort:
// a failed touch must not fail a read. It runs in the background, so a
// local hit does not wait for a round trip to the remote (see Wait). It
// is skipped while the local tier says the remote heard of an access to
// key less than TouchInterval ago, so most local hits need no network.
func (c *Cache) touchRemote(ctx context.Context, key string) {
	if c.remote == nil || c.opts.ReadOnly {
		return
	}
	now := time.Now()
	interval := c.opts.TouchInterval
	if interval == 0 {
		interval = DefaultTouchInterval
	}
	if interval > 0 {
		// A record in the future (the clock went back) counts as stale.
		if last, ok := c.local.RemoteAccess(key); ok && !last.After(now) && now.Sub(last) < interval {
			return
		}
	}
	select {
	case c.touching <- struct{}{}:
	default:
		// Enough records in flight: a burst of hits must not become a
		// burst of requests, and the LRU needs recency, not every hit.
		return
	}
	c.touches.Go(func() {
		defer func() { <-c.touching }()
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), touchTimeout)
		defer cancel()
		if c.remote.Touch(tctx, key) == nil {
			_ = c.local.SetRemoteAccess(key, now)
		}
	})
}

// touchTimeout bounds a background access record.
const touchTimeout = 30 * time.Second

// maxTouches bounds the access records in flight at once.
const maxTouches = 2

// Wait waits until the access records that local hits send to the remote
// in the background are done (or have failed: they are best effort). A
// process should call it before exiting, or the remote tier's LRU may
// miss its last hits.
func (c *Cache) Wait() { c.touches.Wait() }

type flight struct {
	hit Hit
	ok  bool
}

// hydrate downloads key into the local tier (see the package doc). The
// callers one hydration serves share the first one's prefixes, which
// choose a local base: that changes what is downloaded, never what is
// restored.
func (c *Cache) hydrate(ctx context.Context, key string, prefixes []string) (Hit, bool, error) {
	ch := c.group.DoChan(c.storedKey(key), func() (any, error) {
		fctx := context.WithoutCancel(ctx)
		h, ok, err := c.hydrateLocked(fctx, key, prefixes)
		return flight{h, ok}, err
	})
	select {
	case <-ctx.Done():
		return Hit{}, false, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return Hit{}, false, r.Err
		}
		f := r.Val.(flight)
		return f.hit, f.ok, nil
	}
}

func (c *Cache) hydrateLocked(ctx context.Context, key string, prefixes []string) (Hit, bool, error) {
	unlock, was, stored, err := c.lockToDownload(ctx, key, c.trustedTree)
	switch {
	case err != nil:
		return Hit{}, false, err
	case stored:
		return c.localHit(ctx, key)
	}
	defer unlock()
	dl, meta, ok, err := c.openDownload(ctx, key, nil, prefixes, false)
	if err != nil || !ok {
		return Hit{}, false, err
	}
	defer dl.Close()
	if free, err := c.local.FreeBytes(); err == nil && meta.Size+meta.ArchiveSize > free {
		// Nothing is written: the entry is skipped like one that fails
		// its checks, so a machine short of room builds without it.
		return Hit{}, false, remoteErr(fmt.Errorf("%w: %w: key %q: it needs %d bytes, only %d are free in the local tier at %s", tiercache.ErrLimitExceeded, ErrNoRoom, key, meta.Size+meta.ArchiveSize, free, c.local.Root()))
	}
	// The caller wants a tree: the download is extracted into it while
	// its bytes are kept as the entry's archive. The extraction's Shape,
	// just verified against the manifest, is recorded as is: walking a
	// large tree again costs a sizeable share of a cold pull.
	var got archive.Result
	var fillErr error
	s, err := c.local.PutArchive(ctx, key, local.Info{Description: meta.Description, Paths: meta.Paths, Signature: meta.Signature, Replaces: was}, true, func(ctx context.Context, w io.Writer, dir string) (archive.Result, error) {
		got, fillErr = c.fillFrom(ctx, key, dl, meta, dir, w, false)
		return got, fillErr
	})
	err = fillFirst(err, fillErr)
	p := s.Tree
	c.endDownload(ctx, dl)
	if err != nil {
		// The data object vanished under a concurrent replace: a miss
		// for this caller, not a failure.
		if errors.Is(err, tiercache.ErrNotFound) {
			return Hit{}, false, nil
		}
		return Hit{}, false, err
	}
	if !c.opts.ReadOnly {
		_ = c.remote.Touch(ctx, key)
	}
	// Describe the version this call committed: a concurrent writer of
	// the key may already have replaced it, and p stays readable for the
	// local tier's grace period either way.
	e, err := c.local.EntryAt(p)
	if err != nil {
		return Hit{}, false, err
	}
	h := Hit{Path: p, Key: key, Tier: tiercache.TierRemote, Entry: e}
	dl.report(&h, got.ArchiveSize)
	return h, true, nil
}

// lockToDownload takes the local tier's lock on key for a download, so
// that one process downloads it however many ask. If the local tier holds
// key by then (stored by another process while we waited), it releases
// the lock at once and reports stored: the caller reads the local entry
// instead, and making its tree takes the same lock. unlock may be called
// more than once.
//
// The lock keeps out other downloads, not pushes, which must not wait
// for one: was is the local version the download is to replace, for
// local.Info.Replaces, so that a push committed meanwhile, newer than
// what the remote served when asked, stays the local entry.
func (c *Cache) lockToDownload(ctx context.Context, key string, serves func(local.Stored) bool) (unlock func(), was local.Version, stored bool, err error) {
	var waiting func()
	if c.opts.Progress != nil {
		waiting = func() { c.opts.Progress(Progress{Op: "wait", Key: key, Total: -1}) }
	}
	release, err := c.local.LockNotify(ctx, key, waiting)
	if err != nil {
		return nil, was, false, err
	}
	unlock = sync.OnceFunc(release)
	// Read before the lookup: a push committing between the two is then
	// either found or not replaced.
	was, err = c.local.Current(key)
	if err != nil {
		unlock()
		return nil, was, false, err
	}
	// A local version the caller cannot use (serves: trustedLocal for a
	// restore from its archive, trustedTree for Get's tree) is replaced
	// by the download, which is checked.
	if s, ok, err := c.local.Lookup(ctx, key); ignoreDropped(err) != nil || (ok && serves(s)) {
		unlock()
		return nil, was, ok, err
	}
	return unlock, was, false, nil
}

// fillFrom extracts the archive read from rc into dir and verifies it
// against meta, writing every byte it reads to tee as well if tee is set.
func (c *Cache) fillFrom(ctx context.Context, key string, rc io.Reader, meta remote.Meta, dir string, tee io.Writer, skipSymlinks bool) (archive.Result, error) {
	src := &sourceReader{r: rc}
	var r io.Reader = src
	if tee != nil {
		// Outside src: a failed write to tee is the local tier's
		// failure, not the download's.
		r = io.TeeReader(r, tee)
	}
	tail := newIndexTail(archive.IndexInfo(meta.Index))
	if tail != nil {
		r = io.TeeReader(r, tail)
	}
	if c.opts.Progress != nil {
		r = &progressReader{r: r, p: Progress{Op: "download", Key: key, Total: meta.ArchiveSize}, fn: c.opts.Progress}
	}
	// The manifest says what the archive must hold, and verify insists on
	// it exactly; extracting no more than that stops a decompression bomb
	// at the first byte past the recorded size instead of after it has
	// filled the disk.
	opts := extractOptions(c.opts.Extract, meta)
	opts.SkipSymlinks = skipSymlinks
	res, err := archive.Extract(ctx, r, dir, opts)
	switch {
	case err == nil:
		if err := verify(key, meta, res); err != nil {
			return res, c.refuseDamaged(ctx, key, meta, err)
		}
		// The archive is the one the manifest records; so must its
		// index be, before the local tier records it as the archive's.
		if err := tail.check(); err != nil {
			return res, c.refuseDamaged(ctx, key, meta, fmt.Errorf("key %q: %w", key, err))
		}
		res.Index = archive.IndexInfo(meta.Index)
		return res, nil
	case errors.Is(err, tiercache.ErrNotFound):
		return res, err
	case src.err != nil:
		// The download failed, not the disk; the store may have found
		// the object is not what the manifest records.
		err = fmt.Errorf("extract %q: %w", key, err)
		if damaged(err) {
			return res, c.refuseDamaged(ctx, key, meta, err)
		}
		return res, remoteErr(err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return res, fmt.Errorf("extract %q: %w", key, err)
	case damaged(err):
		return res, c.refuseDamaged(ctx, key, meta, fmt.Errorf("extract %q: %w", key, err))
	case errors.Is(err, tiercache.ErrUnsafeArchive) || errors.Is(err, tiercache.ErrLimitExceeded):
		// The object is hostile, or beyond this Cache's limits.
		return res, remoteErr(fmt.Errorf("extract %q: %w", key, err))
	}
	return res, fmt.Errorf("extract %q: %w", key, err)
}

// damaged reports whether err, refusing a remote entry's archive, says
// its bytes are not the ones its manifest records, rather than that
// this Cache's limits or safety checks refuse them (which other clients
// may accept).
func damaged(err error) bool {
	return errors.Is(err, tiercache.ErrIntegrity) && !errors.Is(err, tiercache.ErrUnsafeArchive) && !errors.Is(err, tiercache.ErrLimitExceeded)
}

// CorruptError reports a remote entry whose archive is not the one its
// manifest records (its bytes fail the recorded size or SHA-256, or do
// not decode, or hold another tree or index than recorded), which a
// pull refused. Kept, such an entry would be refused by every pull for
// good: a push of the same tree finds the manifest identical to its own
// archive and skips the upload. So a Cache that refuses one removes it
// from the remote, unless it may not write there (Options.ReadOnly, or
// a read scope) or the key no longer holds the version it read.
type CorruptError struct {
	// Key is the entry's key.
	Key string
	// Err is the refusal; it wraps tiercache.ErrIntegrity.
	Err error
	// Removed tells that the entry is no longer in the remote: the
	// next push of the key uploads its tree.
	Removed bool
	// Kept, when the entry was not removed, says why: an error wrapping
	// tiercache.ErrReadOnly when the Cache may not write there, else
	// the failure of the removal, or that the key holds another version
	// now.
	Kept error
}

// Error says what was wrong with the entry, and whether it was removed.
func (e *CorruptError) Error() string {
	if e.Removed {
		return e.Err.Error() + "; the entry has been removed from the remote"
	}
	return fmt.Sprintf("%v; the entry was not removed from the remote: %v", e.Err, e.Kept)
}

// Unwrap returns Err: Kept is not part of the refusal (a read-only
// Cache's refusal must not read as a refused write).
func (e *CorruptError) Unwrap() error { return e.Err }

// refuseDamaged returns err, the refusal of key's remote version meta
// whose archive is damaged, as a RemoteError wrapping a *CorruptError,
// once it has removed that version from the remote where it may.
//
// Only that version is removed (see remote.Store.DeleteVersion): a
// version pushed since it was read stays. An archive damaged in transit
// (over plain HTTP) rather than in the store is removed all the same,
// which costs one miss; keeping a damaged entry would cost a miss to
// every job until someone removed it.
func (c *Cache) refuseDamaged(ctx context.Context, key string, meta remote.Meta, err error) error {
	ce := &CorruptError{Key: key, Err: err}
	switch {
	case c.opts.ReadOnly:
		ce.Kept = tiercache.ErrReadOnly
	case c.readScope:
		ce.Kept = fmt.Errorf("%w: scope %q is only read here", tiercache.ErrReadOnly, c.opts.Scope)
	default:
		ce.Removed, ce.Kept = c.removeVersion(ctx, key, meta)
	}
	return remoteErr(ce)
}

// removeVersion deletes key from the remote if it still holds the
// version meta describes (remote.Store.DeleteVersion), and reports
// whether the key no longer holds it, or why it was kept.
func (c *Cache) removeVersion(ctx context.Context, key string, meta remote.Meta) (bool, error) {
	gone, err := c.remote.DeleteVersion(ctx, key, meta)
	switch {
	case gone:
		// Storage left behind by a failed cleanup is Prune's.
		return true, nil
	case err != nil:
		return false, fmt.Errorf("removing it: %w", err)
	}
	return false, errors.New("the key holds another version now, which stays")
}

// extractOptions are o for the entry m: limited to what m records (see
// archive.ExtractOptions.Within), and expecting its paths.
func extractOptions(o archive.ExtractOptions, m remote.Meta) archive.ExtractOptions {
	o = o.Within(m.Size, m.Files)
	o.Paths = len(m.Paths)
	return o
}

// indexTail keeps, of the archive stream written to it, the bytes of the
// index frame info locates, so that the frame can be checked once the
// stream has been read, without reading it again. A nil *indexTail (no
// index recorded) keeps nothing and checks nothing.
type indexTail struct {
	info archive.IndexInfo
	seen int64  // bytes of the stream written so far
	buf  []byte // the frame's bytes; nil if it is too long to keep
}

// newIndexTail returns an indexTail for info, or nil if info records no
// index.
func newIndexTail(info archive.IndexInfo) *indexTail {
	if info.Length == 0 {
		return nil
	}
	t := &indexTail{info: info}
	if info.Length > 0 && info.Length <= archive.MaxIndexLength {
		t.buf = make([]byte, info.Length)
	}
	return t
}

func (t *indexTail) Write(p []byte) (int, error) {
	start := t.seen
	t.seen += int64(len(p))
	if t.buf == nil {
		return len(p), nil
	}
	lo, hi := max(start, t.info.Offset), min(t.seen, t.info.Offset+int64(len(t.buf)))
	if lo < hi {
		copy(t.buf[lo-t.info.Offset:], p[lo-start:hi-start])
	}
	return len(p), nil
}

// ReadAt serves the kept frame to archive.ReadIndex, as far as the
// stream reached.
func (t *indexTail) ReadAt(p []byte, off int64) (int, error) {
	if t.buf == nil || off < t.info.Offset {
		return 0, fmt.Errorf("%w: the index frame at %d+%d was not kept", tiercache.ErrIntegrity, t.info.Offset, t.info.Length)
	}
	kept := min(t.seen, t.info.Offset+int64(len(t.buf))) - t.info.Offset
	if i := off - t.info.Offset; i < kept {
		n := copy(p, t.buf[i:kept])
		if n == len(p) {
			return n, nil
		}
		return n, io.EOF
	}
	return 0, io.EOF
}

// check verifies the kept frame against info with archive.ReadIndex, once
// the whole stream has been written: a mismatch is an integrity error.
// An authentic index of a newer version passes: a newer tiercache wrote
// it, and the archive, read sequentially, needs none.
func (t *indexTail) check() error {
	if t == nil {
		return nil
	}
	if _, err := archive.ReadIndex(t, t.seen, t.info); err != nil && !errors.Is(err, archive.ErrIndexVersion) {
		return fmt.Errorf("%w: the archive's index does not match the one its manifest records: %w", tiercache.ErrIntegrity, err)
	}
	return nil
}

// sourceReader remembers the first error of the stream it reads, so a
// failed extraction can tell a failed download from a failed write.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// openRemote opens key's archive in the remote tier; a missing key is
// (nil, Meta{}, false, nil).
func (c *Cache) openRemote(ctx context.Context, key string) (io.ReadCloser, remote.Meta, bool, error) {
	rc, meta, err := c.remote.Open(ctx, key)
	switch {
	case errors.Is(err, tiercache.ErrNotFound):
		return nil, remote.Meta{}, false, nil
	case errors.Is(err, tiercache.ErrIntegrity) && meta.Key != "":
		// Its data missing or of another size: the entry is damaged,
		// and removed (see remote.Store.Open).
		return nil, remote.Meta{}, false, c.refuseDamaged(ctx, key, meta, fmt.Errorf("remote get %q: %w", key, err))
	case err != nil:
		return nil, remote.Meta{}, false, remoteErr(fmt.Errorf("remote get %q: %w", key, err))
	}
	if err := c.checkRemote(key, meta); err != nil {
		rc.Close()
		return nil, remote.Meta{}, false, err
	}
	return rc, meta, true, nil
}

// verify checks what was extracted against what the manifest recorded.
// The digest covers every byte read, so a stream cut at a tar block
// boundary (which Go's tar reader accepts as complete) is caught here.
func verify(key string, m remote.Meta, r archive.Result) error {
	switch {
	case r.ArchiveSize != m.ArchiveSize:
		return fmt.Errorf("%w: key %q: archive is %d bytes, the manifest records %d", tiercache.ErrIntegrity, key, r.ArchiveSize, m.ArchiveSize)
	case !strings.EqualFold(r.SHA256, m.SHA256):
		return fmt.Errorf("%w: key %q: archive SHA-256 %s, the manifest records %s", tiercache.ErrIntegrity, key, r.SHA256, m.SHA256)
	case r.Size != m.Size || r.Files != m.Files:
		return fmt.Errorf("%w: key %q: archive holds %d files of %d bytes, the manifest records %d files of %d bytes", tiercache.ErrIntegrity, key, r.Files, r.Size, m.Files, m.Size)
	}
	return nil
}

// Restore looks up key, then each restore prefix in order, and returns the
// first hit. For a prefix, the entry whose key is the prefix itself
// wins, else the newest entry (by creation time, the remote's for keys
// it holds: see candidates) whose key starts with it, across both tiers. With Options.ReadScopes, key is looked up in
// the Cache's scope and then in each read scope in turn, and then each
// prefix in each scope in turn: the newest match is decided within a
// scope before moving to the next. A miss is (Hit{}, false, nil).
//
// A hit downloaded from the remote reads the frames it shares with a
// local entry under a prefix (of the newest few, the one sharing most)
// from that entry's archive, as Pull does (Hit.Base); Get, with no
// prefixes, downloads every byte.
func (c *Cache) Restore(ctx context.Context, key string, prefixes []string) (Hit, bool, error) {
	get := func(sc *Cache, ctx context.Context, k string) (Hit, bool, error) { return sc.getFrom(ctx, k, prefixes) }
	return c.restore(ctx, key, prefixes, true, false, get, (*Cache).localEntry)
}

// getter looks key up in the scope of sc, a Cache of restore's scopes.
type getter func(sc *Cache, ctx context.Context, key string) (Hit, bool, error)

// restore tries key in each scope (see scopes), then the candidates of
// each prefix in each scope in turn (see candidates; the local tier's
// too if withLocal), each once, with get, and returns the first hit.
// Once the remote has failed, it tries the rest with fallback, which must
// not ask the remote, or with nothing if fallback is nil. An entry that
// fails Options.Trust is a miss, listed in Hit.Untrusted, and one the
// remote served that failed its checks (see refusedEntry) is a miss
// listed in Hit.Refused, unless strict: then each ends the lookup with its
// error (the latter as a remote failure).
func (c *Cache) restore(ctx context.Context, key string, prefixes []string, withLocal, strict bool, get, fallback getter) (Hit, bool, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return Hit{}, false, err
	}
	for _, p := range prefixes {
		if err := tiercache.ValidateKey(p); err != nil {
			return Hit{}, false, fmt.Errorf("restore key: %w", err)
		}
	}
	// After the remote's first failure, only the local tier is asked
	// (by fallback): one outage costs one round of retries, not one per
	// candidate, and what the local tier holds is still restored.
	var down error
	var untrusted, refused []error
	try := func(sc *Cache, k string) (Hit, bool, error) {
		if down != nil {
			if fallback == nil {
				return Hit{}, false, nil
			}
			h, ok, err := fallback(sc, ctx, k)
			if IsRemote(err) && refusedEntry(err) && !strict && ctx.Err() == nil {
				// A local entry too large for the room left.
				refused = append(refused, err)
				return Hit{}, false, nil
			}
			if ok {
				h.Scope = sc.opts.Scope
			}
			return h, ok, err
		}
		h, ok, err := get(sc, ctx, k)
		untrusted = append(untrusted, h.Untrusted...)
		if IsUntrusted(err) && !strict {
			untrusted = append(untrusted, err)
			return Hit{}, false, nil
		}
		if IsRemote(err) && ctx.Err() == nil {
			if refusedEntry(err) && !strict {
				// The remote answered: one bad entry must not keep
				// the other candidates from being asked.
				refused = append(refused, err)
				return Hit{}, false, nil
			}
			down = err
			return Hit{}, false, nil
		}
		if ok {
			h.Scope = sc.opts.Scope
		}
		return h, ok, err
	}
	found := func(h Hit, ok bool, err error) (Hit, bool, error) {
		if ok {
			h.RemoteErr = down
		}
		h.Untrusted, h.Refused = untrusted, refused
		return h, ok, err
	}
	scopes := c.scopes()
	for _, sc := range scopes {
		if h, ok, err := try(sc, key); err != nil || ok {
			return found(h, ok, err)
		}
	}
	type scopedKey struct{ scope, key string }
	tried := map[scopedKey]bool{}
	for _, sc := range scopes {
		tried[scopedKey{sc.opts.Scope, key}] = true
	}
	for _, p := range prefixes {
		for _, sc := range scopes {
			cands, err := sc.candidates(ctx, p, withLocal, down == nil)
			if IsRemote(err) && ctx.Err() == nil {
				down = err
				cands, err = sc.candidates(ctx, p, withLocal, false)
			}
			if err != nil {
				return found(Hit{}, false, err)
			}
			for _, k := range cands {
				if tried[scopedKey{sc.opts.Scope, k}] {
					continue
				}
				tried[scopedKey{sc.opts.Scope, k}] = true
				if h, ok, err := try(sc, k); err != nil || ok {
					return found(h, ok, err)
				}
			}
		}
	}
	// A miss because the remote failed is reported as its failure.
	h, _, _ := found(Hit{}, false, nil)
	return h, false, down
}

// refusedEntry reports whether err, a remote failure, is one of the
// entry rather than of the remote: an object that failed its checks
// (corrupt, hostile, beyond the limits) or is too large for the room
// left.
func refusedEntry(err error) bool {
	return errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, tiercache.ErrUnsafeArchive) || errors.Is(err, tiercache.ErrLimitExceeded)
}

// candidates returns the keys starting with prefix in the remote tier (if
// withRemote) and, if withLocal, the local one: prefix itself first if
// it is a key, then newest first.
//
// Every machine must rank the same keys the same way, or a restore key
// picks one entry on the machine that pushed and another on a fresh one.
// So a key the remote holds is dated by the remote's commit time, which
// all machines see, and the local time counts only for keys the remote
// lacks (or when it is not asked). Local times are this machine's own: a
// push whose upload is skipped, or a hydration, dates the local entry
// now while the remote keeps its first upload's date. Refreshing the
// remote's date on a skipped push instead would cost a write per re-run
// job and still leave hydrations skewed.
//
// The remote's date is the store's own clock (remote.KeyTime.Committed,
// on S3 the server's), not Meta.Created, the pushing machine's clock:
// Keys lists it without reading each entry's metadata, which on S3
// would cost a GET per key under prefix. The two orders differ only for
// entries committed within the clocks' skew (or, on S3, within one
// second of each other: ties go to key order), and every machine sees
// the same one. The entry chosen is read and verified as any other.
func (c *Cache) candidates(ctx context.Context, prefix string, withLocal, withRemote bool) ([]string, error) {
	newest := map[string]time.Time{}
	if c.remote != nil && withRemote {
		kts, err := c.remote.Keys(ctx, prefix)
		if err != nil {
			return nil, remoteErr(fmt.Errorf("remote list %q: %w", prefix, err))
		}
		for _, kt := range kts {
			newest[kt.Key] = kt.Committed
		}
	}
	if withLocal {
		locals, err := c.local.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, e := range locals {
			if _, inRemote := newest[e.Key]; !inRemote && e.Scope == c.opts.Scope && strings.HasPrefix(e.Key, prefix) {
				newest[e.Key] = e.Created
			}
		}
	}
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		// The prefix itself, if it is a key, comes first, as
		// actions/cache takes a restore key's exact match before
		// its newest partial one.
		switch prefix {
		case a:
			return -1
		case b:
			return 1
		}
		if c := newest[b].Compare(newest[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return keys, nil
}

// Put implements tiercache.Backend.
func (c *Cache) Put(ctx context.Context, key, sourceDir, description string) (string, error) {
	r, err := c.PutResult(ctx, key, sourceDir, description)
	return r.Path, err
}

// PutResult stores sourceDir under key locally and uploads it, unless the
// remote already holds an identical archive under key.
//
// With a remote, the local copy and the archive (streamed to the upload,
// or hashed when the remote holds a tree of the same shape) are made at
// the same time, both from sourceDir: a push costs about the longer of
// the two rather than their sum. sourceDir is measured first, and each
// side commits only if both saw a tree of that size and file count, so a
// tree that changes during the push fails it instead of leaving the tiers
// with different snapshots.
//
// A failure of the remote alone (see RemoteError) does not fail the put:
// the tree is still stored locally, and PutResult returns with
// RemoteErr set and a nil error.
//
// A sourceDir holding the local tier is refused (tiercache.ErrInvalidArgument):
// the tree is copied whole into the tier. Push leaves the tier out.
func (c *Cache) PutResult(ctx context.Context, key, sourceDir, description string) (PutResult, error) {
	start := time.Now()
	if err := tiercache.ValidateKey(key); err != nil {
		return PutResult{}, err
	}
	if c.opts.ReadOnly {
		return PutResult{}, fmt.Errorf("put %q: %w", key, tiercache.ErrReadOnly)
	}
	if err := c.needLocal("put " + strconv.Quote(key)); err != nil {
		return PutResult{}, err
	}
	if err := c.local.CheckSource(sourceDir); err != nil {
		return PutResult{}, fmt.Errorf("put %q: %w (Push leaves the local tier out of a tree that holds it)", key, err)
	}
	var res PutResult
	var err error
	if c.remote == nil {
		res.Path, err = c.local.Put(ctx, key, sourceDir, description)
	} else {
		err = c.putBoth(ctx, key, sourceDir, description, &res)
	}
	if res.Path != "" {
		// The metadata of the version just stored, not of whatever is
		// current now: another process may have replaced or removed the
		// key already.
		e, eerr := c.local.EntryAt(res.Path)
		if eerr != nil && err == nil {
			err = eerr
		}
		res.Entry = e
	}
	if err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// testHookMeasured, if set, runs after a push measured the source tree.
var testHookMeasured func()

func (c *Cache) putBoth(ctx context.Context, key, src, description string, res *PutResult) error {
	want, meta, old, same, err := c.planPush(ctx, key, dirSource(src), description, false)
	if IsRemote(err) && ctx.Err() == nil {
		// The remote cannot even say what it holds: store locally only.
		res.RemoteErr = err
		res.Path, err = c.local.Put(ctx, key, src, description)
		return err
	}
	if err != nil {
		return err
	}
	order := &pushOrder{c: c, key: key}
	defer order.release()
	err = c.putBothPlanned(ctx, key, src, description, want, meta, old, same, order, res)
	if IsRemote(err) && res.Path != "" && ctx.Err() == nil {
		res.RemoteErr, res.Uploaded = err, false
		return nil
	}
	return err
}

// putBothPlanned is putBoth once the push is planned. A failed upload
// does not stop the local copy (see survivingWriter), so a remote failure
// returns with res.Path set. order is taken before the local commit.
func (c *Cache) putBothPlanned(ctx context.Context, key, src, description string, want tiercache.Shape, meta, old remote.Meta, same bool, order *pushOrder, res *PutResult) error {
	if same {
		// Same shape: archives are deterministic, so the digest of a
		// fresh one tells whether the remote already holds this exact
		// tree, which saves the upload (the common case of a re-run job).
		p, s, ar, err := c.copyWhileArchiving(ctx, key, src, description, want, io.Discard, order)
		res.Path = p
		if err != nil {
			return err
		}
		if strings.EqualFold(ar.SHA256, old.SHA256) && ar.ArchiveSize == old.ArchiveSize {
			c.skipUpload(ctx, key, old, res)
			c.settleSkipped(ctx, key)
			return nil
		}
		// Rare: same shape, other bytes. Upload the archive just stored.
		return c.uploadFile(ctx, meta, s, nil, res)
	}
	// The stream ends (and the upload may commit) only once both sides
	// saw the same tree and the local copy is committed.
	return c.uploadFrom(ctx, meta, true, nil, func(w io.Writer) (produced, error) {
		var err error
		var s local.Stored
		res.Path, s, _, err = c.copyWhileArchiving(ctx, key, src, description, want, &survivingWriter{w: w}, order)
		return produced{sum: s.SHA256, index: s.Index, size: s.ArchiveSize}, err
	}, res)
}

// uploadFile uploads under meta the archive of the stored version s, and
// the digest and index s recorded when it was written. With a base (ru),
// the frames s's index lists are matched against the base's before the
// first byte goes.
func (c *Cache) uploadFile(ctx context.Context, meta remote.Meta, s local.Stored, ru *reuser, res *PutResult) error {
	return c.uploadFrom(ctx, meta, true, ru, func(w io.Writer) (produced, error) {
		f, err := os.Open(s.Archive)
		if err != nil {
			return produced{}, err
		}
		defer f.Close()
		if ru.copies() && s.Index.Length > 0 {
			// An index that does not read back only costs the reuse.
			if idx, err := archive.ReadIndex(f, s.ArchiveSize, s.Index); err == nil {
				for _, fr := range idx.Frames {
					ru.onFrame(fr)
				}
			}
		}
		_, err = io.Copy(w, f)
		return produced{sum: s.SHA256, index: s.Index, size: s.ArchiveSize}, err
	}, res)
}

// survivingWriter passes writes on until the upload reading them ends,
// then discards them: the archive still runs to its end, so the local
// copy made beside it commits even when the remote fails.
type survivingWriter struct {
	w     io.Writer
	ended bool
}

func (s *survivingWriter) Write(p []byte) (int, error) {
	if s.ended {
		return len(p), nil
	}
	n, err := s.w.Write(p)
	if errors.Is(err, errUploadEnded) {
		s.ended = true
		return len(p), nil
	}
	return n, err
}

// planPush measures src and looks up key remotely, unless absent says
// the remote was just seen to lack it. same reports that the remote holds
// a tree of the same shape, which may be identical.
func (c *Cache) planPush(ctx context.Context, key string, src source, description string, absent bool) (want tiercache.Shape, meta, old remote.Meta, same bool, err error) {
	// The lookup is a round trip to the remote: it runs while the tree
	// is measured, which takes about as long on a large tree.
	type statOut struct {
		m      remote.Meta
		broken bool
		err    error
	}
	stat := make(chan statOut, 1)
	if absent {
		stat <- statOut{err: tiercache.ErrNotFound}
	} else {
		go func() {
			m, broken, err := c.currentVersion(ctx, key)
			stat <- statOut{m, broken, err}
		}()
	}
	want, err = src.measure(ctx)
	st := <-stat
	if err != nil {
		return want, meta, old, false, fmt.Errorf("put %q: %w", key, err)
	}
	meta = remote.Meta{Key: key, Description: description, Paths: src.names, Size: want.Size, Files: want.Files}
	if testHookMeasured != nil {
		testHookMeasured()
	}
	old, err = st.m, st.err
	switch {
	case errors.Is(err, tiercache.ErrNotFound):
		return want, meta, old, false, nil
	case err != nil:
		return want, meta, old, false, remoteErr(fmt.Errorf("remote stat %q: %w", key, err))
	}
	// A broken entry is replaced even by an identical tree.
	same = !st.broken && old.Size == want.Size && old.Files == want.Files
	if c.opts.Signer != nil && same && !c.signedByUs(key, old) {
		// The same bytes, unsigned or signed by another key: upload
		// them again, signed, so that trusting jobs accept them.
		same = false
	}
	return want, meta, old, same, nil
}

// currentVersion returns the Meta of key's remote entry, for a push to
// compare its tree with, and broken if the entry's data object is
// missing or not of the size its manifest records: a pull refuses such
// an entry before reading a byte of it, without the Meta it would need
// to remove it (see refuseDamaged), so a push must replace it even with
// an identical tree. A store that reads pinned versions
// (remote.RangeReader) tells, asked for the version: for S3 that costs
// what Stat does (the manifest, and a HEAD of the data object instead of
// the access record's), so every push may ask. Damage that keeps the
// size is left to the pulls that refuse it. Errors are Stat's.
func (c *Cache) currentVersion(ctx context.Context, key string) (m remote.Meta, broken bool, err error) {
	rr, ok := c.remote.(remote.RangeReader)
	if !ok {
		m, err = c.remote.Stat(ctx, key)
		return m, false, err
	}
	v, err := rr.OpenVersion(ctx, key)
	switch {
	case err == nil:
		return v.Meta, false, nil
	case !errors.Is(err, tiercache.ErrIntegrity) && !errors.Is(err, tiercache.ErrNotFound):
		return remote.Meta{}, false, err
	}
	// No key, a manifest that does not parse, or a manifest whose data
	// object is missing or of another size: only the last is broken.
	m, err = c.remote.Stat(ctx, key)
	return m, err == nil, err
}

// skipUpload records in res that the remote already holds the pushed tree
// as old, and records the push remotely as a use of key all the same, so
// remote pruning does not take a key in use for an unused one. The record
// is best effort, like every access record.
func (c *Cache) skipUpload(ctx context.Context, key string, old remote.Meta, res *PutResult) {
	res.UploadSkipped = true
	res.ArchiveSize = old.ArchiveSize
	_ = c.remote.Touch(ctx, key)
}

// pushOrder makes concurrent pushes of key on one machine commit both
// tiers in one order. Each commits its local copy before its upload
// commits, and nothing else orders those commits across pushes: two of
// them could leave the local tier with one tree and the remote with the
// other, so that this machine restores its own while every other
// restores the other. A push takes the local tier's push lock of key
// (see local.Cache.LockPush) once its archive is checked, just before
// its local commit, and releases it once its upload has committed or
// failed: a second push waits there, with its archive made and its
// upload not yet committed. Downloads do not take that lock, so no pull
// waits for an upload. A nil *pushOrder takes nothing.
type pushOrder struct {
	c      *Cache
	key    string
	unlock func()
}

// take takes the push lock. It runs in the fill of the local commit,
// which may be the producer of an upload: release, after the upload,
// sees what it set.
func (o *pushOrder) take(ctx context.Context) error {
	if o == nil {
		return nil
	}
	var waiting func()
	if o.c.opts.Progress != nil {
		waiting = func() { o.c.opts.Progress(Progress{Op: "wait-push", Key: o.key, Total: -1}) }
	}
	unlock, err := o.c.local.LockPush(ctx, o.key, waiting)
	if err != nil {
		return err
	}
	o.unlock = unlock
	return nil
}

// release releases the push lock if it was taken.
func (o *pushOrder) release() {
	if o != nil && o.unlock != nil {
		o.unlock()
		o.unlock = nil
	}
}

// settleSkipped makes the local tier agree with the remote after a push
// that committed its local copy and skipped its upload, the remote
// having held the same archive when the push looked: an upload of
// another push may have replaced it since. Called with the push lock
// held, so no push of this machine commits remotely meanwhile: if the
// remote holds another archive now, or cannot say, the local copy goes
// (a local miss downloads the remote's). One that lacks key was pruned or
// invalidated, which no push of this machine does.
func (c *Cache) settleSkipped(ctx context.Context, key string) {
	m, err := c.remote.Stat(ctx, key)
	switch {
	case errors.Is(err, tiercache.ErrNotFound):
		return
	case err != nil:
		m = remote.Meta{} // no archive has this digest
	}
	// Best effort, as the access record before it.
	_, _ = c.local.InvalidateUnless(ctx, key, m.SHA256, m.ArchiveSize)
}

// identical reports whether the archive hashed into h, described by r, is
// the one old records.
func identical(h hash.Hash, r archive.Result, old remote.Meta) bool {
	return hex.EncodeToString(h.Sum(nil)) == old.SHA256 && r.ArchiveSize == old.ArchiveSize
}

// copyWhileArchiving copies src into the local tier while it writes an
// archive of src both to the local tier, beside the copy, and to w, all
// in one fill: the entry commits only if both sides saw a tree of shape
// want, and a side that fails stops the other; with order, once it has
// taken the push lock (see pushOrder). It returns the local tree (empty
// if nothing was committed), the stored version and the archive's result.
func (c *Cache) copyWhileArchiving(ctx context.Context, key, src, description string, want tiercache.Shape, w io.Writer, order *pushOrder) (string, local.Stored, archive.Result, error) {
	var ar archive.Result
	s, err := c.local.PutArchive(ctx, key, c.localInfo(description, nil), true, func(ctx context.Context, lw io.Writer, dir string) (archive.Result, error) {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) {
			ar, err = c.archiveChecked(gctx, key, dirSource(src), want, io.MultiWriter(lw, w), true, nil)
			return err
		})
		g.Go(func() error {
			got, err := local.Copy(gctx, src, dir)
			if err == nil && got != want {
				err = changedErr(src, "the local copy", got, want)
			}
			return err
		})
		err := g.Wait()
		if err == nil {
			err = order.take(ctx)
		}
		return ar, err
	})
	return s.Tree, s, ar, err
}

// changedErr reports a source tree that changed while a push read it.
func changedErr(src, what string, got, want tiercache.Shape) error {
	return fmt.Errorf("%s changed while it was being stored: %s holds %s, it had %s when the push began; push again once nothing writes to it", src, what, got, want)
}

// errUploadEnded is what a producer's writes fail with once the upload
// has stopped reading.
var errUploadEnded = errors.New("upload ended")

// produced is what the producer of an upload knows once it has written
// the whole archive, and the store records.
type produced struct {
	// sum is the SHA-256 of the bytes written, if the producer hashed
	// them.
	sum string
	// index is the archive's index (archive.Result.Index), if it has
	// one.
	index archive.IndexInfo
	// size is the archive's size in bytes, if the producer hashed it.
	size int64
}

// uploadFrom uploads under meta what produce writes, produce running in a
// goroutine of its own. The stream ends when produce returns: with nil,
// the upload may commit; with an error, it fails with that error. The
// store records the index produce returns (see remote.Indexer). With
// digested, produce also returns the SHA-256 of what it wrote, which the
// store records instead of hashing the bytes again (see
// remote.Digester): a push that keeps the archive locally hashes it for
// the local tier.
func (c *Cache) uploadFrom(ctx context.Context, meta remote.Meta, digested bool, ru *reuser, produce func(w io.Writer) (produced, error), res *PutResult) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	x := &indexReader{}
	d := &digestReader{indexReader: x}
	// A signature covers the archive's size and digest, which a digesting
	// producer reports.
	signing := c.opts.Signer != nil && digested
	go func() {
		p, err := produce(pw)
		// Before the close, which the reader's EOF follows.
		x.index, d.sum = remote.IndexInfo(p.index), p.sum
		if signing && err == nil {
			m := meta
			m.ArchiveSize, m.SHA256, m.Index = p.size, p.sum, x.index
			x.sig = sign.Sign(c.opts.Signer, c.fieldsOf(meta.Key, m))
		}
		pw.CloseWithError(err) // nil closes with EOF
		done <- err
	}()
	var r io.Reader = pr
	if c.opts.Progress != nil {
		r = &progressReader{r: pr, p: Progress{Op: "upload", Key: meta.Key, Total: -1}, fn: c.opts.Progress}
	}
	x.Reader = r
	switch {
	case ru.copies() && digested:
		r = reusingDigestReader{d, ru}
	case ru.copies():
		r = reusingReader{x, ru}
	case digested:
		r = d
	default:
		r = x
	}
	m, err := c.remote.Put(ctx, meta, r)
	// Unblock the producer if Put stopped reading early, then wait for
	// it so no goroutine outlives the call.
	pr.CloseWithError(errUploadEnded)
	werr := <-done
	switch {
	case werr != nil && !errors.Is(werr, errUploadEnded):
		return werr // what spoiled the stream also failed the upload
	case err != nil:
		return remoteErr(fmt.Errorf("upload %q: %w", meta.Key, err))
	case werr != nil:
		return werr
	}
	res.Uploaded = true
	res.Signed = signing
	res.ArchiveSize = m.ArchiveSize
	ru.report(res)
	return nil
}

// indexReader is a remote.Indexer whose index is set by the producer of
// the stream before it ends.
type indexReader struct {
	io.Reader
	index remote.IndexInfo
	// sig is the entry's signature (see Options.Signer), nil if unsigned;
	// set like the index.
	sig *tiercache.Signature
}

func (x *indexReader) Index() remote.IndexInfo { return x.index }

// Signature makes every upload stream a remote.Signed.
func (x *indexReader) Signature() *tiercache.Signature { return x.sig }

// digestReader is an indexReader that is a remote.Digester too, its
// digest set like the index.
type digestReader struct {
	*indexReader
	sum string
}

func (d *digestReader) SHA256() string { return d.sum }

// Invalidate removes key from both tiers, the remote first. In
// read-only mode it fails with tiercache.ErrReadOnly. A failure of the
// remote is a RemoteError and leaves the local entry: removed alone, it
// would come back from the remote with the next pull.
func (c *Cache) Invalidate(ctx context.Context, key string) error {
	if err := tiercache.ValidateKey(key); err != nil {
		return err
	}
	if c.opts.ReadOnly {
		return fmt.Errorf("invalidate %q: %w", key, tiercache.ErrReadOnly)
	}
	if c.remote != nil {
		if err := c.remote.Delete(ctx, key); err != nil {
			return remoteErr(fmt.Errorf("remote delete %q: %w", key, err))
		}
	}
	if c.local == nil {
		return nil // remote-only: nothing stored locally
	}
	return c.local.Invalidate(ctx, key)
}

// Prune implements tiercache.Backend over the Cache's scope, the keys
// List gives: the least recently used keys are evicted from both tiers
// until the keys left fit the limits, bytes counted as List reports them
// (Entry.Stored where set). A key's last use is its latest in either
// tier (List gives the local one's, where held): another machine's use,
// which the remote records, keeps a key this one has not used. Only the
// versions listed are evicted (see local.Cache.InvalidateIf and
// remote.Store.DeleteVersion): a put committed meanwhile stays. When
// only the remote fails, the local tier is still pruned, by its own
// entries, and the failure returned as a *RemoteError. PruneTiers gives
// each tier limits of its own. In read-only mode it fails with
// tiercache.ErrReadOnly.
func (c *Cache) Prune(ctx context.Context, maxEntries int, maxBytes int64) (int, error) {
	l := policy.Limits{MaxEntries: maxEntries, MaxBytes: maxBytes}
	if err := l.Validate(); err != nil {
		return 0, err
	}
	if c.opts.ReadOnly {
		return 0, fmt.Errorf("prune: %w", tiercache.ErrReadOnly)
	}
	items := map[string]*policy.Item{}
	locals := map[string]local.Version{}
	if c.rawLocal != nil {
		ls, err := c.rawLocal.ListVersions(ctx)
		if err != nil {
			return 0, fmt.Errorf("prune: %w", err)
		}
		for _, e := range ls {
			if e.Scope == c.opts.Scope {
				items[e.Key] = &policy.Item{Key: e.Key, Size: cmp.Or(e.Stored, e.Size), LastAccess: e.LastAccess}
				locals[e.Key] = e.Version
			}
		}
	}
	remotes := map[string]remote.Meta{}
	var remoteFailed error
	if c.remote != nil {
		metas, err := c.remote.List(ctx, "")
		if err != nil {
			// What it may have listed is not all: prune locally alone.
			remoteFailed = remoteErr(fmt.Errorf("prune: remote: %w", err))
			metas = nil
		}
		for _, m := range metas {
			remotes[m.Key] = m
			it := items[m.Key]
			if it == nil {
				it = &policy.Item{Key: m.Key, Size: cmp.Or(m.ArchiveSize, m.Size)}
				items[m.Key] = it
			}
			if m.LastAccess.After(it.LastAccess) {
				it.LastAccess = m.LastAccess
			}
		}
	}
	if testHookPruneListed != nil {
		testHookPruneListed(tiercache.TierRemote)
	}
	list := make([]policy.Item, 0, len(items))
	for _, it := range items {
		list = append(list, *it)
	}
	victims, err := policy.Victims(list, l, time.Now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range victims {
		removed := false
		if m, ok := remotes[v.Key]; ok && remoteFailed == nil {
			gone, err := c.remote.DeleteVersion(ctx, v.Key, m)
			if err != nil {
				return n, remoteErr(fmt.Errorf("prune: remote delete %q: %w", v.Key, err))
			}
			if !gone {
				continue // put again since it was listed: not this victim
			}
			removed = true
		}
		if ver, ok := locals[v.Key]; ok {
			gone, err := c.local.InvalidateIf(ctx, v.Key, ver)
			if err != nil {
				return n, fmt.Errorf("prune: %w", err)
			}
			removed = removed || gone
		}
		if removed {
			n++
		}
	}
	return n, remoteFailed
}

// PruneTiers prunes the local tier to lim and the remote tier to rem,
// every limit of each (MaxAge too: see local.Cache.PruneLimits and
// remote.Store.Prune for whose clock measures it). A
// remote prune is a write: in read-only mode it fails with
// tiercache.ErrReadOnly, and so does a local one, so an untrusted job
// cannot evict what trusted ones rely on. The result lists the evicted
// entries of every scope, with those evicted before an error; each is
// reported to the limits' OnEvict too.
func (c *Cache) PruneTiers(ctx context.Context, lim, rem policy.Limits) (PruneResult, error) {
	var res PruneResult
	if err := c.checkPrune(lim, rem); err != nil {
		return res, err
	}
	lim.OnEvict = recordTo(&res, tiercache.TierLocal, lim.OnEvict)
	rem.OnEvict = recordTo(&res, tiercache.TierRemote, rem.OnEvict)
	var errs []error
	if c.local != nil { // remote-only: nothing to evict locally
		n, err := c.local.PruneLimits(ctx, lim)
		res.Local = n
		if err != nil {
			// An entry the local tier could not evict is no reason
			// to leave the remote over its limits.
			errs = append(errs, fmt.Errorf("local tier: %w", err))
			if ctx.Err() != nil {
				return res, errs[0]
			}
		}
	}
	if c.remote != nil && !rem.Unlimited() {
		n, err := c.remote.Prune(ctx, rem)
		res.Remote = n
		if err != nil {
			errs = append(errs, fmt.Errorf("remote tier: %w", err))
		}
	}
	switch len(errs) {
	case 0:
		return res, nil
	case 1:
		return res, errs[0]
	}
	return res, fmt.Errorf("%w; %w", errs[0], errs[1])
}

// List implements tiercache.Backend for the Cache's scope: one Entry per
// key, the local one when the key is local (Tier "local"), else the
// remote one (Tier "remote"). When only the remote fails, it returns
// the local entries with that failure as a *RemoteError, as ListTiers
// does. ListTiers reports both tiers separately, and every scope.
func (c *Cache) List(ctx context.Context) ([]tiercache.Entry, error) {
	locals, remotes, err := c.ListTiers(ctx)
	if err != nil && !IsRemote(err) {
		return nil, err
	}
	seen := make(map[string]bool, len(locals))
	out := make([]tiercache.Entry, 0, len(locals)+len(remotes))
	for _, e := range locals {
		if e.Scope == c.opts.Scope {
			seen[e.Key] = true
			out = append(out, e)
		}
	}
	for _, e := range remotes {
		if e.Scope == c.opts.Scope && !seen[e.Key] {
			out = append(out, e)
		}
	}
	return out, err
}

// ListTiers returns the entries of each tier in every scope, with Tier
// and Scope set. The local
// tier never needs the remote: when only the remote fails, ListTiers
// returns the local entries with that failure as a *RemoteError.
func (c *Cache) ListTiers(ctx context.Context) (locals, remotes []tiercache.Entry, err error) {
	ls, rs, err := c.listTiers(ctx, false)
	entries := func(l []Listed) []tiercache.Entry {
		if l == nil {
			return nil
		}
		out := make([]tiercache.Entry, len(l))
		for i := range l {
			out[i] = l[i].Entry
		}
		return out
	}
	return entries(ls), entries(rs), err
}

// Listed is an entry as ListTrust found it.
type Listed struct {
	tiercache.Entry
	// Untrusted is why a pull with Options.Trust would not restore this
	// copy of the entry: it wraps sign.ErrUnsigned, sign.ErrUnknownSigner
	// or sign.ErrBadSignature. Nil if the pull would restore it, and
	// always without Options.Trust. (A local copy such a pull refuses is
	// downloaded again, if the remote copy passes.)
	Untrusted error
}

// ListTrust is ListTiers with each entry checked as a pull with
// Options.Trust checks it, in the entry's own scope: it tells which
// entries such a pull would restore, without downloading any.
func (c *Cache) ListTrust(ctx context.Context) (locals, remotes []Listed, err error) {
	return c.listTiers(ctx, c.opts.Trust != nil)
}

// listTiers lists both tiers, checking each entry's signature if check.
func (c *Cache) listTiers(ctx context.Context, check bool) (locals, remotes []Listed, err error) {
	if c.rawLocal != nil { // remote-only: an empty local tier
		ls, err := c.rawLocal.ListVersions(ctx)
		if err != nil {
			return nil, nil, err
		}
		locals = make([]Listed, 0, len(ls))
		for _, l := range ls {
			e := Listed{Entry: l.Entry}
			e.Tier = tiercache.TierLocal
			if check {
				e.Untrusted = c.localUntrusted(l.Scope, l.Entry, archiveMeta(l.Entry, l.ArchiveSize, l.SHA256, l.Index))
			}
			locals = append(locals, e)
		}
	}
	if c.rawRemote == nil {
		return locals, nil, nil
	}
	metas, err := c.rawRemote.List(ctx, "")
	if err != nil {
		return locals, nil, remoteErr(fmt.Errorf("remote list: %w", err))
	}
	remotes = make([]Listed, 0, len(metas))
	for _, m := range metas {
		e := Listed{Entry: remoteEntry(m)}
		if check {
			e.Untrusted = c.opts.Trust.Verify(fieldsIn(e.Scope, e.Key, m), m.Signature)
		}
		remotes = append(remotes, e)
	}
	return locals, remotes, nil
}

// Stats implements tiercache.Backend over List: when only the remote
// fails, it returns the local entries' aggregates with that failure.
func (c *Cache) Stats(ctx context.Context) (tiercache.Stats, error) {
	es, err := c.List(ctx)
	if IsRemote(err) {
		// The local entries' aggregates, with the remote's failure.
		s, _ := tiercache.StatsOf(es, nil)
		return s, err
	}
	return tiercache.StatsOf(es, err)
}

// TierStats returns aggregates per tier. When only the remote fails, it
// returns the local tier's (Remote nil) with that failure as a
// *RemoteError, as ListTiers does.
func (c *Cache) TierStats(ctx context.Context) (TierStats, error) {
	return c.tierStats(ctx, func(tiercache.Entry) bool { return true })
}

// ScopeStats is TierStats of the Cache's scope alone.
func (c *Cache) ScopeStats(ctx context.Context) (TierStats, error) {
	return c.tierStats(ctx, func(e tiercache.Entry) bool { return e.Scope == c.opts.Scope })
}

// tierStats is TierStats of the entries for which in is true.
func (c *Cache) tierStats(ctx context.Context, in func(tiercache.Entry) bool) (TierStats, error) {
	locals, remotes, err := c.ListTiers(ctx)
	if err != nil && !IsRemote(err) {
		return TierStats{}, err
	}
	ls, _ := tiercache.StatsOf(slices.DeleteFunc(locals, func(e tiercache.Entry) bool { return !in(e) }), nil)
	ts := TierStats{Local: ls}
	if err != nil {
		return ts, err
	}
	if c.remote != nil {
		rs, _ := tiercache.StatsOf(slices.DeleteFunc(remotes, func(e tiercache.Entry) bool { return !in(e) }), nil)
		ts.Remote = &rs
	}
	return ts, nil
}

// progressReader reports bytes read to a Progress callback.
type progressReader struct {
	r  io.Reader
	p  Progress
	fn func(Progress)
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	if n > 0 {
		pr.p.Done += int64(n)
		pr.fn(pr.p)
	}
	return n, err
}
