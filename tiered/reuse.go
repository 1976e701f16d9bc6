package tiered

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
)

// maxBaseTries bounds the candidates a push asks the remote about before
// it gives up on a base: each costs a manifest read and an index read.
const maxBaseTries = 3

// pickBase chooses the entry whose frames a push of key from src may
// have the remote copy instead of receiving, in the order the user
// expects: PushOptions.Base, alone if set; the entry the last pull
// restored into the same paths on this machine; the newest entry under each of
// PushOptions.BasePrefixes in turn; the key's own current version (old,
// if hasOld). It returns nil, with why, when nothing qualifies or no
// candidate's index could be read and verified: the push then compresses
// and uploads everything, as it always did. When the remote cannot copy,
// the base is one the local tier keeps (see localBase), and only spares
// compression.
func (c *Cache) pickBase(ctx context.Context, key string, src source, opts PushOptions, hasOld bool) (*reuser, string) {
	if opts.NoBase {
		return nil, ""
	}
	_, copies := c.remote.(remote.BaseStore)
	cands, err := c.baseCandidates(ctx, key, src, opts, hasOld)
	if err != nil {
		return nil, err.Error()
	}
	if !copies {
		return c.localBase(ctx, cands, "the remote cannot copy ranges of stored archives")
	}
	var notes []error
	for i, cd := range cands {
		if i == maxBaseTries {
			break
		}
		rs, err := remote.InScope(c.rawRemote, cd.scope)
		if err != nil {
			notes = append(notes, fmt.Errorf("base %q: %w", cd.key, err))
			continue
		}
		ru, err := openBase(ctx, rs.(remote.BaseStore), cd.key)
		if err == nil {
			c.offerLocal(ctx, cd.scope, cd.key, ru)
			return ru, ""
		}
		if ctx.Err() != nil {
			return nil, ""
		}
		if errors.Is(err, remote.ErrNoCopy) {
			// No base can be copied from: skip the other candidates'
			// reads, but a local copy can still spare compression.
			return c.localBase(ctx, cands, err.Error())
		}
		notes = append(notes, fmt.Errorf("base %q: %w", cd.key, err))
	}
	if len(notes) == 0 {
		return nil, ""
	}
	return nil, errors.Join(notes...).Error()
}

// baseCand is a candidate base: an entry of scope.
type baseCand struct{ scope, key string }

// baseCandidates lists the candidate bases of a push, best first (see
// pickBase). A base may lie in another scope than the push's: its bytes
// are only copied, and the new object's digest (and signature) is the
// push's own, so a bad base breaks the entry's checks, never passes them.
func (c *Cache) baseCandidates(ctx context.Context, key string, src source, opts PushOptions, hasOld bool) ([]baseCand, error) {
	var cands []baseCand
	seen := map[baseCand]bool{}
	add := func(scope, k string) {
		if c := (baseCand{scope, k}); k != "" && !seen[c] {
			seen[c] = true
			cands = append(cands, c)
		}
	}
	if opts.Base != "" {
		// The base asked for, or none: another would be a surprise,
		// and the reason it was not used is then the push's note.
		return []baseCand{{c.opts.Scope, opts.Base}}, nil
	}
	if c.local != nil && !c.opts.NoLocal {
		if scope, k, ok, _ := c.local.LastPull(src.paths()); ok {
			add(scope, k)
		}
	}
	for _, p := range opts.BasePrefixes {
		for _, sc := range c.scopes() {
			keys, err := sc.candidates(ctx, p, false, true)
			if err != nil {
				return nil, fmt.Errorf("listing base candidates: %v", err)
			}
			if len(keys) > 0 {
				add(sc.opts.Scope, keys[0])
				break
			}
		}
	}
	if hasOld {
		add(c.opts.Scope, key)
	}
	return cands, nil
}

// localBase is pickBase for a remote that cannot copy (why says so):
// the first candidate the local tier keeps as an archive with an index
// still spares the compression of the frames the push shares with it,
// though every byte is uploaded. Its index is checked against the local
// tier's record of it. It returns nil, with why, when there is none.
func (c *Cache) localBase(ctx context.Context, cands []baseCand, why string) (*reuser, string) {
	for i, cd := range cands {
		if i == maxBaseTries {
			break
		}
		fs, f := c.localFrames(ctx, cd.scope, cd.key, func(s local.Stored, f *os.File) (archive.Index, error) {
			if s.Index.Length == 0 {
				return archive.Index{}, errors.New("no index")
			}
			return archive.ReadIndex(f, s.ArchiveSize, s.Index)
		})
		if fs != nil {
			return &reuser{localKey: cd.key, local: fs, localFile: f}, why
		}
	}
	return nil, why
}

// localFrames opens the archive the local tier keeps of key in scope as
// a FrameSource of the frames index returns for it, or returns nil (with
// no file open) if there is none, index fails, or the push does not use
// the local tier.
func (c *Cache) localFrames(ctx context.Context, scope, key string, index func(local.Stored, *os.File) (archive.Index, error)) (*archive.FrameSource, *os.File) {
	if c.rawLocal == nil || c.opts.NoLocal {
		return nil, nil
	}
	lc, err := c.rawLocal.InScope(scope)
	if err != nil {
		return nil, nil
	}
	s, ok, err := lc.Lookup(ctx, key)
	if err != nil || !ok || s.Archive == "" {
		return nil, nil
	}
	f, err := os.Open(s.Archive)
	if err != nil {
		return nil, nil
	}
	idx, err := index(s, f)
	var fs *archive.FrameSource
	if err == nil {
		fs, err = archive.NewFrameSource(f, idx)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil
	}
	return fs, f
}

// openBase reads and verifies the index of key's current version, and
// returns a reuser of its frames.
func openBase(ctx context.Context, bs remote.BaseStore, key string) (*reuser, error) {
	b, err := bs.OpenBase(ctx, key)
	if errors.Is(err, tiercache.ErrNotFound) {
		return nil, errors.New("not stored")
	}
	if err != nil {
		return nil, err
	}
	info := archive.IndexInfo(b.Meta.Index)
	switch {
	case info.Length == 0:
		return nil, errors.New("its archive has no index (stored by an older version)")
	case info.Length > archive.MaxIndexLength:
		return nil, fmt.Errorf("%w: its index is %d bytes, over the limit of %d", tiercache.ErrIntegrity, info.Length, archive.MaxIndexLength)
	}
	p, err := bs.ReadBase(ctx, b, info.Offset, info.Length)
	if err != nil {
		return nil, fmt.Errorf("reading its index: %w", err)
	}
	idx, err := archive.ReadIndex(tailAt{p: p, off: info.Offset}, b.Meta.ArchiveSize, info)
	if errors.Is(err, archive.ErrIndexVersion) {
		return nil, fmt.Errorf("its index is not one this version can use: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("its index does not match its manifest: %w", err)
	}
	ru := &reuser{base: b, idx: idx, byHash: make(map[[32]byte][]archive.IndexFrame, len(idx.Frames))}
	for _, f := range idx.Frames {
		ru.byHash[f.SHA256] = append(ru.byHash[f.SHA256], f)
	}
	return ru, nil
}

// offerLocal lets the push copy, instead of compressing, the frames it
// shares with ru's base, when the local tier keeps the same version of
// the base as an archive (the base was pulled or pushed on this machine).
// The base's verified index vouches for each frame copied, and each must
// decompress to the bytes it replaces (see archive.FrameSource), so a
// damaged local file costs only the compression it would have saved.
// Like the pull record, the local tier is consulted only by a push that
// uses it.
func (c *Cache) offerLocal(ctx context.Context, scope, key string, ru *reuser) {
	ru.local, ru.localFile = c.localFrames(ctx, scope, key, func(s local.Stored, _ *os.File) (archive.Index, error) {
		if s.SHA256 != strings.ToLower(ru.base.Meta.SHA256) || s.ArchiveSize != ru.base.Meta.ArchiveSize {
			return archive.Index{}, errors.New("another version")
		}
		return ru.idx, nil
	})
}

// tailAt serves ReadIndex the bytes p of an archive, which start at off.
type tailAt struct {
	p   []byte
	off int64
}

func (t tailAt) ReadAt(b []byte, off int64) (int, error) {
	i := off - t.off
	if i < 0 || i > int64(len(t.p)) {
		return 0, fmt.Errorf("%w: read at %d outside the index read at %d+%d", tiercache.ErrIntegrity, off, t.off, len(t.p))
	}
	n := copy(b, t.p[i:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// reuser is the remote.Reuser side of an upload that repeats frames of
// a base archive. The archive writer reports each frame before writing
// it (onFrame); a frame whose compressed bytes the base's verified index
// lists, by SHA-256 and length, is a run the store may copy. Equal
// compressed bytes, not equal tar bytes, decide: the upload's digest is
// computed over the bytes compressed here, so the object the store
// composes is the one a full upload would have made, byte for byte, or
// its reads fail their verification.
type reuser struct {
	base   remote.Base
	idx    archive.Index
	byHash map[[32]byte][]archive.IndexFrame

	// local offers the base's frames from the local tier's copy, held
	// open in localFile; nil without one (see offerLocal).
	local     *archive.FrameSource
	localFile *os.File
	// localKey is set, and base and byHash are not, for a base that the
	// remote cannot copy from (see localBase): its local copy only spares
	// compression.
	localKey string

	mu       sync.Mutex
	runs     []reuseRun // by off, disjoint; adjacent ones contiguous in both are merged
	found    []span     // the frames found in the base, by off
	copiedAt []span     // the ranges the store copied, as it reported them

	copied atomic.Int64
	failed atomic.Pointer[error]
}

// reuseRun is a run of the stream, [off, off+n), equal to the base
// archive's [baseOff, baseOff+n).
type reuseRun struct{ off, baseOff, n int64 }

// span is the stream's bytes [off, off+n).
type span struct{ off, n int64 }

// onFrame records f if the base holds the same frame. It is
// archive.WriteOptions.OnFrame, called before f's bytes are written.
func (r *reuser) onFrame(f archive.IndexFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next int64 = -1 // the base offset that would extend the last run
	if k := len(r.runs); k > 0 && r.runs[k-1].off+r.runs[k-1].n == f.Offset {
		next = r.runs[k-1].baseOff + r.runs[k-1].n
	}
	var pick *archive.IndexFrame
	for i, b := range r.byHash[f.SHA256] {
		if b.Length != f.Length {
			continue
		}
		if pick == nil || b.Offset == next {
			pick = &r.byHash[f.SHA256][i]
		}
	}
	if pick == nil {
		return
	}
	r.found = append(r.found, span{f.Offset, f.Length})
	if pick.Offset == next {
		r.runs[len(r.runs)-1].n += f.Length
		return
	}
	r.runs = append(r.runs, reuseRun{off: f.Offset, baseOff: pick.Offset, n: f.Length})
}

// Base implements remote.Reuser.
func (r *reuser) Base() remote.Base { return r.base }

// Reused implements remote.Reuser.
func (r *reuser) Reused(off int64) (baseOff, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.runs), func(i int) bool { return r.runs[i].off+r.runs[i].n > off })
	if i == len(r.runs) || r.runs[i].off > off {
		return 0, 0
	}
	d := off - r.runs[i].off
	return r.runs[i].baseOff + d, r.runs[i].n - d
}

// Copied implements remote.Reuser.
func (r *reuser) Copied(off, n int64) {
	r.copied.Add(n)
	r.mu.Lock()
	r.copiedAt = append(r.copiedAt, span{off, n})
	r.mu.Unlock()
}

// framesCopied is how many of the frames found in the base the ranges
// the store copied cover whole: frames none of whose bytes were sent. A
// frame split between a copied part and an uploaded one (parts are cut
// where S3's minimum part size requires, not at frames) does not count.
func (r *reuser) framesCopied() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := slices.Clone(r.copiedAt)
	slices.SortFunc(cs, func(a, b span) int { return cmp.Compare(a.off, b.off) })
	n, i := 0, 0
	for _, f := range r.found {
		for i < len(cs) && cs[i].off+cs[i].n <= f.off {
			i++
		}
		// Covered from f.off by contiguous copied ranges (each part
		// is one range) as far as f's end?
		end := f.off
		for j := i; j < len(cs) && cs[j].off <= end && end < f.off+f.n; j++ {
			end = max(end, cs[j].off+cs[j].n)
		}
		if end >= f.off+f.n {
			n++
		}
	}
	return n
}

// CopyFailed implements remote.Reuser.
func (r *reuser) CopyFailed(err error) { r.failed.CompareAndSwap(nil, &err) }

// writeOptions sets the archive writer's options for r: its OnFrame, and
// the local frames to copy. Nothing without a base.
func (r *reuser) writeOptions(o *archive.WriteOptions) {
	if r != nil {
		o.Reuse = r.local
		if r.copies() {
			o.OnFrame = r.onFrame
		}
	}
}

// copies reports whether r is a base the remote copies frames from.
func (r *reuser) copies() bool { return r != nil && r.localKey == "" }

// close releases the local copy of the base, once the push has written
// its archive.
func (r *reuser) close() {
	if r != nil && r.local != nil {
		r.local.Close()
		_ = r.localFile.Close()
		r.local = nil
	}
}

// report fills res with what the upload reused.
func (r *reuser) report(res *PutResult) {
	if r == nil {
		return
	}
	res.FramesKept = int(r.local.Copied())
	if !r.copies() {
		res.Base = r.localKey
		return
	}
	res.FramesReused = r.framesCopied()
	res.Base = r.base.Meta.Key
	res.Copied = r.copied.Load()
	if e := r.failed.Load(); e != nil {
		res.BaseNote = fmt.Sprintf("copying from base %q stopped, the rest uploaded: %v", res.Base, *e)
	}
}

// reusingReader and reusingDigestReader are the upload streams of
// uploadFrom with a base: remote.Reusers, and Indexers (and Digesters)
// as the stream without one.
type reusingReader struct {
	*indexReader
	*reuser
}

type reusingDigestReader struct {
	*digestReader
	*reuser
}

var (
	_ remote.Reuser = reusingReader{}
	_ remote.Reuser = reusingDigestReader{}
)
