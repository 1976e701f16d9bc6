package tiered

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
)

// A pull (or a Restore) that finds in the local tier an earlier version
// of what it downloads (the entry last pulled into the same paths, or one
// of the newest local entries under a restore key) downloads only the
// frames that differ: the new object's index, verified against its
// manifest, lists every frame's SHA-256, and a frame the local archive
// holds with the same digest and length is read from the local file
// instead (unless it sits in a short run between frames to download:
// see deltaMinRun). Each such frame is hashed before it is used, and one that
// does not match is downloaded after all; the stream that results is
// then checked whole against the manifest like any download. So a local base can spare
// downloads, never change what is restored. A base whose file does not
// match its own verified index is damaged: once the pull has ended, it
// is dropped from the local tier (Hit.Dropped), as a damaged entry a
// pull restores from is.

// deltaMinShare: a pull reads frames from a local base only when the
// base holds at least 1/deltaMinShare of the new archive; below that,
// the extra requests (the manifest and data object checked, the index
// read) and the split download cost more than they save.
const deltaMinShare = 4

// deltaChunk bounds one ranged read of differing frames (a single frame
// may be larger, up to the 16 MiB an index admits), and deltaAhead the
// reads and local frames held ahead of the extraction: at most
// deltaAhead+1 of them are in memory at once.
const (
	deltaChunk = 8 << 20
	deltaAhead = 4
)

// deltaMinRun: frames a base holds, in a run of fewer bytes between two
// ranges to download, are downloaded with them. Each ranged read costs a
// round trip (tens of milliseconds to a cloud store, in which a link of
// 100 Mbit/s moves about this much), and frames of very compressible
// files can be a few bytes each: without this, an archive whose changed
// and unchanged frames alternate cost a read per changed frame. With it,
// the reads are at most one per deltaMinRun bytes read locally, plus
// about one per deltaChunk downloaded.
const deltaMinRun = 256 << 10

// deltaSeg is a piece of the new archive: [off, off+n) read from the
// local base at baseOff and hashing to sum, or (baseOff < 0) from the
// remote, or (mem) the index frame already read.
type deltaSeg struct {
	off, n, baseOff int64
	sum             [sha256.Size]byte
	mem             []byte
}

// deltaPull is a download of one version that takes the frames a local
// archive shares with it from that archive.
type deltaPull struct {
	rr      remote.RangeReader
	version remote.Base
	baseKey string       // the local entry whose archive serves frames
	base    local.Stored // its version in the local tier
	file    *os.File     // its archive
	segs    []deltaSeg

	damageOnce sync.Once
	damage     error // why a frame of the base failed its index, if one did

	fromBase   atomic.Int64 // bytes taken from the local archive
	downloaded atomic.Int64 // bytes read from the remote, the index included
}

// openDelta plans a pull of key that reads from a local base (see
// above), or returns nil when there is none worth it: no local
// candidate holds an indexed archive, the remote reads no ranges of a
// pinned version (remote.RangeReader), the version has no index, or the
// candidates share too little with it. Nothing is asked of the remote
// unless a local candidate exists. Any failure here only means a plain
// download, which reports it if it is the remote's. Without a plan,
// note says why, once a local candidate was found: for verbose output.
func (c *Cache) openDelta(ctx context.Context, key string, dst *target, prefixes []string) (d *deltaPull, meta remote.Meta, note string) {
	rr, ok := c.remote.(remote.RangeReader)
	if !ok || c.rawLocal == nil || c.opts.NoLocal {
		return nil, remote.Meta{}, ""
	}
	bases := c.localBases(ctx, key, dst, prefixes)
	if len(bases) == 0 {
		return nil, remote.Meta{}, ""
	}
	defer func() {
		for _, b := range bases {
			if b.file != nil {
				_ = b.file.Close()
			}
		}
	}()
	none := func(why string, args ...any) (*deltaPull, remote.Meta, string) {
		names := make([]string, len(bases))
		for i, b := range bases {
			names[i] = strconv.Quote(b.key)
		}
		return nil, remote.Meta{}, fmt.Sprintf("no frames read from the local copy of %s: "+why, append([]any{strings.Join(names, ", ")}, args...)...)
	}
	v, err := rr.OpenVersion(ctx, key)
	if err == nil {
		err = c.checkRemote(key, v.Meta)
	}
	if err != nil {
		return none("%v", err)
	}
	info := archive.IndexInfo(v.Meta.Index)
	switch {
	case info.Length == 0:
		return none("%q has no index of its frames (pushed by an older tiercache)", key)
	case info.Length > archive.MaxIndexLength:
		return none("the index of %q is %d bytes, over the limit of %d", key, info.Length, archive.MaxIndexLength)
	}
	p, err := rr.ReadBase(ctx, v, info.Offset, info.Length)
	if err != nil {
		return none("reading the index of %q: %v", key, err)
	}
	idx, err := archive.ReadIndex(tailAt{p: p, off: info.Offset}, v.Meta.ArchiveSize, info)
	if err == nil && idx.DataSize != info.Offset {
		err = fmt.Errorf("its frames end at %d, its index starts at %d", idx.DataSize, info.Offset)
	}
	if err != nil {
		return none("the index of %q: %v", key, err)
	}
	var best *localBase
	var bestShared int64
	for i := range bases {
		if n := bases[i].sharedWith(idx); n > bestShared {
			best, bestShared = &bases[i], n
		}
	}
	var segs []deltaSeg
	if best != nil {
		segs, bestShared = planDelta(idx.Frames, best.frames)
	}
	if best == nil || bestShared*deltaMinShare < v.Meta.ArchiveSize {
		return none("it shares %d of the %d bytes of %q (in runs worth reading locally), under the 1/%d a base must share", bestShared, v.Meta.ArchiveSize, key, deltaMinShare)
	}
	d = &deltaPull{rr: rr, version: v, baseKey: best.key, base: best.stored, file: best.file, segs: segs}
	best.file = nil // d owns it now
	d.downloaded.Add(int64(len(p)))
	d.segs = append(d.segs, deltaSeg{off: info.Offset, n: info.Length, mem: p})
	if err := d.check(); err != nil {
		_ = d.file.Close()
		return none("%v", err)
	}
	return d, v.Meta, ""
}

// download is the archive a hydration reads: from the remote, or through
// a delta pull that reads the frames a local base shares with it.
type download struct {
	io.ReadCloser
	delta   *deltaPull
	note    string // why no base was used, if one was looked for
	dropped error  // why the base was dropped, once endDownload found it damaged
}

// openDownload opens key's archive for a hydration into dst (nil for
// Restore), through a delta pull unless noBase or none is worth it (see
// openDelta). A missing key is (nil, Meta{}, false, nil).
func (c *Cache) openDownload(ctx context.Context, key string, dst *target, prefixes []string, noBase bool) (*download, remote.Meta, bool, error) {
	dl := &download{}
	if !noBase {
		var meta remote.Meta
		if dl.delta, meta, dl.note = c.openDelta(ctx, key, dst, prefixes); dl.delta != nil {
			dl.ReadCloser = dl.delta.open(ctx)
			return dl, meta, true, nil
		}
	}
	rc, meta, ok, err := c.openRemote(ctx, key)
	if err != nil || !ok {
		return nil, remote.Meta{}, ok, err
	}
	dl.ReadCloser = rc
	return dl, meta, true, nil
}

// endDownload ends a delta pull once the extraction is over: its reads
// have stopped, so whether its base was damaged is known, and a damaged
// base is dropped.
func (c *Cache) endDownload(ctx context.Context, dl *download) {
	if dl.delta != nil {
		_ = dl.Close()
		dl.dropped = c.dropDamaged(ctx, dl.delta)
	}
}

// report records in h what dl read: got archive bytes, all downloaded
// unless a base supplied some.
func (dl *download) report(h *Hit, got int64) {
	h.Downloaded, h.Dropped, h.BaseNote = got, dl.dropped, dl.note
	if d := dl.delta; d != nil {
		h.Downloaded, h.Base, h.FromBase = d.downloaded.Load(), d.baseKey, d.fromBase.Load()
	}
}

// frameID identifies a frame by its compressed bytes.
type frameID struct {
	sum [sha256.Size]byte
	n   int64
}

// localBase is a local archive a pull may read frames from.
type localBase struct {
	key    string
	stored local.Stored
	file   *os.File
	frames map[frameID]int64 // offset of each frame in file
}

// planDelta returns the segments that read frames, in order, from a
// base holding base (the offset of each of its frames) or the remote,
// and the bytes read from the base. A run of frames the base holds
// between two frames it lacks is downloaded with them if it is shorter
// than deltaMinRun; consecutive downloaded frames are read together, up
// to deltaChunk bytes at once.
func planDelta(frames []archive.IndexFrame, base map[frameID]int64) ([]deltaSeg, int64) {
	at := make([]int64, len(frames)) // offset in the base, or -1
	for i, f := range frames {
		at[i] = -1
		if b, ok := base[frameID{f.SHA256, f.Length}]; ok {
			at[i] = b
		}
	}
	for i := 0; i < len(frames); {
		j, n := i, int64(0)
		for ; j < len(frames) && at[j] >= 0; j++ {
			n += frames[j].Length
		}
		if j > i && i > 0 && j < len(frames) && n < deltaMinRun {
			for k := i; k < j; k++ {
				at[k] = -1
			}
		}
		i = max(j, i+1)
	}
	var segs []deltaSeg
	var fromBase int64
	for i, f := range frames {
		if at[i] >= 0 {
			segs = append(segs, deltaSeg{off: f.Offset, n: f.Length, baseOff: at[i], sum: f.SHA256})
			fromBase += f.Length
			continue
		}
		if k := len(segs); k > 0 && segs[k-1].baseOff < 0 && segs[k-1].off+segs[k-1].n == f.Offset && segs[k-1].n+f.Length <= deltaChunk {
			segs[k-1].n += f.Length
			continue
		}
		segs = append(segs, deltaSeg{off: f.Offset, n: f.Length, baseOff: -1})
	}
	return segs, fromBase
}

// sharedWith returns the bytes of idx's frames that b holds.
func (b *localBase) sharedWith(idx archive.Index) int64 {
	var n int64
	for _, f := range idx.Frames {
		if _, ok := b.frames[frameID{f.SHA256, f.Length}]; ok {
			n += f.Length
		}
	}
	return n
}

// localBases opens the local archives a pull of key into dst (nil for
// Restore, which has none) may take frames from, best first: the entry
// last pulled into dst's paths, then the local entries of c's scope
// under each restore prefix, newest first, at most maxBaseTries of them
// in all (so an unrelated entry pulled since does not hide the one that
// shares), each with an index verified against the local tier's record
// of it. Only the local tier is read.
func (c *Cache) localBases(ctx context.Context, key string, dst *target, prefixes []string) []localBase {
	type cand struct{ scope, key string }
	var cands []cand
	seen := map[cand]bool{{c.opts.Scope, key}: true}
	add := func(scope, k string) {
		if cd := (cand{scope, k}); k != "" && !seen[cd] {
			seen[cd] = true
			cands = append(cands, cd)
		}
	}
	if dst != nil {
		if scope, k, ok, _ := c.rawLocal.LastPull(dst.paths); ok {
			add(scope, k)
		}
	}
	for _, p := range prefixes {
		if keys, err := c.candidates(ctx, p, true, false); err == nil {
			for _, k := range keys {
				add(c.opts.Scope, k)
			}
		}
	}
	var bases []localBase
	for _, cd := range cands {
		if len(bases) == maxBaseTries {
			break
		}
		if b, ok := c.openLocalBase(ctx, cd.scope, cd.key); ok {
			bases = append(bases, b)
		}
	}
	return bases
}

// openLocalBase opens the archive the local tier keeps of key in scope,
// with its frames, if it has a verified index.
func (c *Cache) openLocalBase(ctx context.Context, scope, key string) (localBase, bool) {
	lc, err := c.rawLocal.InScope(scope)
	if err != nil {
		return localBase{}, false
	}
	s, ok, err := lc.Lookup(ctx, key)
	if err != nil || !ok || s.Archive == "" || s.Index.Length == 0 {
		return localBase{}, false
	}
	f, err := os.Open(s.Archive)
	if err != nil {
		return localBase{}, false
	}
	idx, err := archive.ReadIndex(f, s.ArchiveSize, s.Index)
	if err != nil {
		_ = f.Close()
		return localBase{}, false
	}
	b := localBase{key: key, stored: s, file: f, frames: make(map[frameID]int64, len(idx.Frames))}
	for _, fr := range idx.Frames {
		b.frames[frameID{fr.SHA256, fr.Length}] = fr.Offset
	}
	return b, true
}

// open returns the version's archive as a stream: the segments in
// order, up to deltaAhead of them read ahead concurrently from the first
// Read on (a pull that finds it cannot use the entry reads nothing).
// Close stops the reads and closes the local archive.
func (d *deltaPull) open(ctx context.Context) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	return &deltaReader{d: d, ctx: ctx, cancel: cancel, order: make(chan chan segResult, deltaAhead)}
}

// start starts reading the segments ahead.
func (r *deltaReader) start() {
	r.started = true
	d, ctx := r.d, r.ctx
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(r.order)
		for _, s := range d.segs {
			done := make(chan segResult, 1)
			select {
			case r.order <- done:
			case <-ctx.Done():
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				b, err := d.read(ctx, s)
				done <- segResult{b, err}
			}()
		}
	}()
}

// read returns s's bytes: a local frame only if it hashes to what the
// index records, else the remote's.
func (d *deltaPull) read(ctx context.Context, s deltaSeg) ([]byte, error) {
	if s.mem != nil {
		return s.mem, nil
	}
	if s.baseOff >= 0 {
		b := make([]byte, s.n)
		_, err := d.file.ReadAt(b, s.baseOff)
		if err == nil && sha256.Sum256(b) == s.sum {
			d.fromBase.Add(s.n)
			return b, nil
		}
		// A damaged or shortened local file: the download has it.
		why := "does not hash to what its index records"
		if err != nil {
			why = "cannot be read: " + err.Error()
		}
		d.damageOnce.Do(func() {
			d.damage = fmt.Errorf("%w: key %q: the local archive %s, read as the base of a pull: its frame at %d+%d %s (it was downloaded instead)",
				tiercache.ErrIntegrity, d.baseKey, d.base.Archive, s.baseOff, s.n, why)
		})
	}
	b, err := d.rr.ReadBase(ctx, d.version, s.off, s.n)
	if err != nil {
		return nil, err
	}
	d.downloaded.Add(int64(len(b)))
	return b, nil
}

type segResult struct {
	b   []byte
	err error
}

// deltaReader serves a deltaPull's segments in order.
type deltaReader struct {
	d       *deltaPull
	ctx     context.Context
	cancel  context.CancelFunc
	served  int  // segments taken from order
	started bool // see start
	order   chan chan segResult
	wg      sync.WaitGroup
	cur     *bytes.Reader
	err     error
	closed  bool
}

func (r *deltaReader) Read(p []byte) (int, error) {
	if !r.started && r.err == nil {
		r.start()
	}
	for r.err == nil {
		if r.cur != nil && r.cur.Len() > 0 {
			return r.cur.Read(p)
		}
		done, ok := <-r.order
		if !ok {
			r.err = io.EOF
			if r.served < len(r.d.segs) {
				// Cancelled before every segment was read: a cut-off
				// stream must not look like a whole one.
				r.err = fmt.Errorf("pull of %q stopped: %w", r.d.version.Meta.Key, context.Cause(r.ctx))
			}
			break
		}
		r.served++
		res := <-done
		if res.err != nil {
			r.err = res.err
			break
		}
		r.cur = bytes.NewReader(res.b)
	}
	return 0, r.err
}

func (r *deltaReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.err == nil {
		r.err = errors.New("read of a closed pull stream")
	}
	r.cancel()
	if r.started {
		go func() { // the producer may be blocked on a full order
			for range r.order {
			}
		}()
	}
	r.wg.Wait()
	return r.d.file.Close()
}

// dropDamaged drops the base from the local tier if a frame of it failed
// its index, and returns why (nil if none did). It is called once the
// stream is closed.
func (c *Cache) dropDamaged(ctx context.Context, d *deltaPull) error {
	if d == nil || d.damage == nil {
		return nil
	}
	_ = c.rawLocal.Drop(context.WithoutCancel(ctx), d.base)
	return d.damage
}

// errDeltaShort guards the plan: the segments must tile the archive.
var errDeltaShort = errors.New("the frames read do not tile the archive")

// check reports whether d's segments tile its version's archive.
func (d *deltaPull) check() error {
	var off int64
	for _, s := range d.segs {
		if s.off != off {
			return errDeltaShort
		}
		off += s.n
	}
	if off != d.version.Meta.ArchiveSize {
		return errDeltaShort
	}
	return nil
}
