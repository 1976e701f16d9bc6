package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

var _ remote.BaseStore = (*Store)(nil)

// OpenBase returns the current version of key: its Meta and its data
// object, which it checks exists with the size the manifest records. A
// missing key or data object returns an error wrapping
// tiercache.ErrNotFound, a data object of another size one wrapping
// tiercache.ErrIntegrity. With copies off (see lacksCopies), it returns
// errNoCopies before any request.
func (s *Store) OpenBase(ctx context.Context, key string) (remote.Base, error) {
	n, err := s.namesFor(key)
	if err != nil {
		return remote.Base{}, err
	}
	if s.lacksCopies() {
		return remote.Base{}, errNoCopies
	}
	return s.openVersion(ctx, key, n)
}

// OpenVersion returns the current version of key, as OpenBase does
// whether or not the server copies.
func (s *Store) OpenVersion(ctx context.Context, key string) (remote.Base, error) {
	n, err := s.namesFor(key)
	if err != nil {
		return remote.Base{}, err
	}
	return s.openVersion(ctx, key, n)
}

func (s *Store) openVersion(ctx context.Context, key string, n names) (remote.Base, error) {
	m, err := s.readManifest(ctx, n)
	if err != nil {
		return remote.Base{}, err
	}
	name := n.data(m.Data)
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &name})
	if err != nil {
		err = mapError(err, s.bucket, "stat data of", key)
		if errors.Is(err, tiercache.ErrNotFound) {
			return remote.Base{}, fmt.Errorf("%w (the entry was replaced or deleted while it was read)", err)
		}
		return remote.Base{}, err
	}
	if size := aws.ToInt64(out.ContentLength); size != m.Meta.ArchiveSize {
		return remote.Base{}, fmt.Errorf("%w: s3: data of key %q is %d bytes, its manifest says %d",
			tiercache.ErrIntegrity, key, size, m.Meta.ArchiveSize)
	}
	return remote.Base{Meta: m.Meta, Ref: name}, nil
}

// ReadBase returns bytes [off, off+n) of b's archive, in one ranged GET
// (resumed if the body is cut) whose answer must describe that range of
// an archive of b.Meta.ArchiveSize bytes.
func (s *Store) ReadBase(ctx context.Context, b remote.Base, off, n int64) ([]byte, error) {
	size := b.Meta.ArchiveSize
	if _, _, _, ok := s.dataStemOf(b.Ref); !ok {
		return nil, fmt.Errorf("%w: s3: base %q of key %q is not a data object of this store", tiercache.ErrInvalidArgument, b.Ref, b.Meta.Key)
	}
	if off < 0 || n < 0 || off > size || n > size-off {
		return nil, fmt.Errorf("%w: s3: bytes %d+%d are outside the %d-byte archive of key %q",
			tiercache.ErrInvalidArgument, off, n, size, b.Meta.Key)
	}
	buf := make([]byte, n)
	if n == 0 {
		return buf, nil // no range is empty: nothing to ask
	}
	d := &download{s: s, key: b.Meta.Key, name: b.Ref, size: size, chunk: s.cfg.PartSize, attempts: s.cfg.MaxAttempts}
	if err := d.fetch(ctx, buf, off, nil); err != nil {
		return nil, err
	}
	return buf, nil
}

// Why copies stopped, for a Reuser's CopyFailed.
var (
	errNoCopies = fmt.Errorf("%w: the server does not implement UploadPartCopy (501 NotImplemented, or known not to compose parts from copies)", remote.ErrNoCopy)
	errNoETag   = errors.New("the server answered a copy with no ETag")
)

// partLimit is the most parts a Put from a Reuser may have: maxParts,
// lowered by tests.
var partLimit int32 = maxParts

// reusePart is a part being formed or sent: the stream's bytes [off,
// off+n), held in buf, and past its end in more, the second buffer of a
// wide part (see reuseUpload.wide), which is never a copy. A copy part's
// bytes equal the base archive's [baseOff, baseOff+n); it is uploaded
// from buf if the copy fails.
type reusePart struct {
	buf     *[]byte
	more    *[]byte
	n       int
	off     int64
	copy    bool
	baseOff int64
}

// room is what p's buffers hold.
func (p *reusePart) room() int {
	if p.more == nil {
		return len(*p.buf)
	}
	return len(*p.buf) + len(*p.more)
}

// tail is the free space after p's n bytes.
func (p *reusePart) tail() []byte {
	if p.more == nil {
		return (*p.buf)[p.n:]
	}
	return (*p.more)[p.n-len(*p.buf):]
}

// reuseUpload is a Put from a remote.Reuser: a multipart upload, created
// at the first part, whose parts are copied from the base where they lie
// inside one of the reader's runs.
type reuseUpload struct {
	s        *Store
	n        names
	dataName string
	ru       remote.Reuser
	base     remote.Base
	source   string // the CopySource of the base
	// why, when set, is why this Put copies nothing (stopped from the
	// start); CopyFailed is told so at the first run.
	why error

	uploadID *string // nil until the first part is sent
	num      int32   // parts sent
	g        *errgroup.Group
	gctx     context.Context
	free     chan *[]byte
	alloc    int // buffers allocated

	mu    sync.Mutex
	parts []types.CompletedPart

	stopped  atomic.Bool // copies stopped for the rest of the Put
	stopOnce sync.Once
	copied   atomic.Int64
	// wide is set, and copies stop, once the parts left would no longer
	// hold the rest of the largest archive a plain upload stores
	// (partLimit parts of PartSize) if further parts were short: the
	// parts after are wide, two buffers each (see budgetLow).
	wide bool

	// A copy's part is taken only if its ETag is the MD5 of the bytes
	// it stands for, where the server's ETags are MD5s: the SHA-256
	// committed is the read bytes', so a part of other bytes (a base
	// rewritten under its name, a server's faulty copy) would commit an
	// entry no pull accepts. Whether they are is learnt at the first
	// mismatch, by uploading that part: its ETag tells (see wrongCopy).
	probing atomic.Bool
	probed  chan struct{} // closed once the probe's upload answered
	opaque  atomic.Bool   // ETags are not MD5s: copies go unchecked
}

// uploadReusing is upload for a Reuser. Parts are formed as
// uploadMultipart forms them, at most PartSize bytes (twice that once
// the part budget runs low: see budgetLow) and all but the last at
// least MinPartSize, but cut so that a part lies either inside
// one run the reader reports, contiguous in the stream and the base
// (a copy part, sent as UploadPartCopy), or not (uploaded). Every byte
// is read into the part's buffer and hashed all the same, so a copy that
// fails is uploaded from the buffer, and copying stops for the rest of
// the Put. A stream that ends within its first part goes up in one
// PutObject, with no copy.
//
// The reader is read with plain Reads: a Read returns bytes of one
// frame of the archive, whose run, if any, the reader knows by then
// (see remote.Reuser), and it grows as frames follow. So each Read's
// bytes are placed by asking Reused where they start.
func (s *Store) uploadReusing(ctx context.Context, n names, dataName string, ru remote.Reuser, h hash.Hash) (size int64, sum string, idx remote.IndexInfo, err error) {
	u := &reuseUpload{s: s, n: n, dataName: dataName, ru: ru, base: ru.Base(), probed: make(chan struct{})}
	switch _, _, _, ours := s.dataStemOf(u.base.Ref); {
	case s.lacksCopies():
		u.why = errNoCopies
	case !ours:
		u.why = fmt.Errorf("the base %q is not a data object of this store", u.base.Ref)
	}
	u.stopped.Store(u.why != nil)
	u.source = copySource(s.bucket, u.base.Ref)

	pctx, cancelParts := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(pctx)
	g.SetLimit(s.cfg.Concurrency)
	// As in uploadMultipart: at most Concurrency parts in flight, each
	// holding a buffer, and one being filled; split holds two for a
	// moment, the second one waited for if need be (see nextBuf), so
	// there are never more than Concurrency+1.
	u.g, u.gctx = g, gctx
	u.free = make(chan *[]byte, s.cfg.Concurrency+1)
	u.alloc = 1
	cur := &reusePart{buf: s.getBuf()}
	defer func() {
		if cur != nil {
			u.release(cur)
		}
		cancelParts()
		_ = g.Wait() // on an early return, let every part stop first
		close(u.free)
		for b := range u.free {
			s.putBuf(b)
		}
		if err != nil && u.uploadID != nil {
			s.abortUpload(ctx, dataName, u.uploadID)
		}
	}()

	for {
		if gctx.Err() != nil {
			return 0, "", remote.IndexInfo{}, u.failure()
		}
		t := cur.tail()
		nr, rerr := ru.Read(t)
		if nr > 0 {
			h.Write(t[:nr])
			size += int64(nr)
			if cur, err = u.place(cur, nr); err != nil {
				return 0, "", remote.IndexInfo{}, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, "", remote.IndexInfo{}, fmt.Errorf("s3: put key %q: reading the archive: %w", n.key, rerr)
		}
	}
	if u.uploadID == nil {
		// Nothing sent yet: the whole archive is in cur.
		return s.uploadWhole(ctx, n, dataName, ru, h, (*cur.buf)[:cur.n])
	}
	if cur.n > 0 {
		// The last part, of any size, in its mode.
		last := cur
		cur = nil
		if err := u.send(last); err != nil {
			return 0, "", remote.IndexInfo{}, err
		}
	}
	if err := g.Wait(); err != nil {
		return 0, "", remote.IndexInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return 0, "", remote.IndexInfo{}, mapError(err, s.bucket, "upload archive of", n.key)
	}
	if err := s.completeUpload(ctx, n, dataName, u.uploadID, u.parts, size); err != nil {
		return 0, "", remote.IndexInfo{}, err
	}
	if u.copied.Load() > 0 {
		if err := s.checkComposed(ctx, n, dataName, size); err != nil {
			return 0, "", remote.IndexInfo{}, err
		}
	}
	return s.uploaded(ctx, n, dataName, ru, h, size)
}

// checkComposed checks that the object dataName, composed of copied and
// uploaded parts, has the size bytes that were read, and deletes it if
// not, or if that cannot be checked: a server that mishandled a copy
// range must not get the object committed. Only a wrong size, or no
// object at all, is the server's integrity failure; a HEAD that fails
// otherwise (a timeout, 5xx after the retries) is reported as itself.
func (s *Store) checkComposed(ctx context.Context, n names, dataName string, size int64) error {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &dataName})
	if err == nil && aws.ToInt64(out.ContentLength) == size {
		return nil
	}
	dctx, cancel := detached(ctx)
	defer cancel()
	_, _ = s.client.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &dataName})
	if err != nil {
		err = mapError(err, s.bucket, "check the composed archive of", n.key)
		if errors.Is(err, tiercache.ErrNotFound) {
			// Just completed, yet missing.
			return fmt.Errorf("%w: s3: put key %q: the composed archive does not exist once completed: %w", tiercache.ErrIntegrity, n.key, err)
		}
		return fmt.Errorf("s3: put key %q: nothing was committed: %w", n.key, err)
	}
	return fmt.Errorf("%w: s3: put key %q: the composed archive is %d bytes, %d were read",
		tiercache.ErrIntegrity, n.key, aws.ToInt64(out.ContentLength), size)
}

// place takes the k bytes just read into p's buffer after its p.n bytes,
// cutting parts where the runs they lie in (or not) require, and returns
// the part being filled then. A part that fills its buffer is sent. On
// an error it returns the part still holding a buffer, if any.
func (u *reuseUpload) place(p *reusePart, k int) (*reusePart, error) {
	for rest := k; rest > 0; {
		bo, rn := u.reused(p.off + int64(p.n))
		take := 0
		switch {
		case p.n == 0:
			// A new part takes the mode of its first bytes.
			p.copy, p.baseOff = rn > 0, bo
			take = rest
			if rn > 0 {
				take = int(min(rn, int64(rest)))
			}
		case p.copy && rn > 0 && bo == p.baseOff+int64(p.n):
			take = int(min(rn, int64(rest))) // the run goes on
		case p.copy && p.n >= MinPartSize:
			// The run ends, with enough for a part of its own.
			np, err := u.split(p, rest)
			if err != nil {
				return np, err
			}
			p = np
			continue
		case p.copy:
			// Too short to be a part: uploaded, with what follows.
			p.copy = false
			continue
		case rn == 0:
			// Fresh bytes. A Read does not span frames, and runs are
			// made of frames, so the rest of it is fresh too.
			take = rest
		case p.n >= MinPartSize:
			// A run starts: the fresh part is long enough to end here.
			// The run is copied even if it is short so far, since it
			// may grow; if it does not, its part turns into an upload
			// part at no cost.
			np, err := u.split(p, rest)
			if err != nil {
				return np, err
			}
			p = np
			continue
		default:
			// A run starts, but the fresh part is too short to end
			// here: fill it to the minimum with the run's bytes (Reused
			// answers mid-run too) and copy the rest of the run.
			take = int(min(rn, int64(rest), int64(MinPartSize-p.n)))
		}
		p.n += take
		rest -= take
		if p.n == p.room() {
			// Full (then rest is 0: a Read fills at most the buffer).
			if u.wide && p.more == nil && !p.copy && u.wideSize() > int64(len(*p.buf)) {
				// Grows to a wide part instead. Only fresh bytes
				// follow: nothing splits it (see split).
				buf, err := u.nextBuf()
				if err != nil {
					return p, err
				}
				p.more = buf
				continue
			}
			if err := u.send(p); err != nil {
				return nil, err
			}
			buf, err := u.nextBuf()
			if err != nil {
				return nil, err
			}
			p = &reusePart{buf: buf, off: p.off + int64(p.n)}
		}
	}
	return p, nil
}

// split sends p, but for the rest bytes that follow its p.n in its
// buffer, which it moves to a new part and returns. On an error it
// returns p if p was not sent. p is not wide: a part is split only
// where a run starts or ends, and runs end when wide parts begin.
func (u *reuseUpload) split(p *reusePart, rest int) (*reusePart, error) {
	buf, err := u.nextBuf()
	if err != nil {
		return p, err
	}
	copy(*buf, (*p.buf)[p.n:p.n+rest])
	if err := u.send(p); err != nil {
		u.free <- buf
		return nil, err
	}
	return &reusePart{buf: buf, off: p.off + int64(p.n)}, nil
}

// reused is the reader's Reused(off), as far as it can be copied: never
// beyond the base's end, and nothing once copies stopped.
func (u *reuseUpload) reused(off int64) (baseOff, n int64) {
	baseOff, n = u.ru.Reused(off)
	if n <= 0 || baseOff < 0 || baseOff >= u.base.Meta.ArchiveSize {
		return 0, 0
	}
	n = min(n, u.base.Meta.ArchiveSize-baseOff)
	if u.stopped.Load() {
		if u.why != nil {
			u.stop(u.why) // no copy tried at all: say so, once there was something to copy
		}
		return 0, 0
	}
	if u.wide {
		return 0, 0
	}
	return baseOff, n
}

// stop stops copies for the rest of the Put, and tells the reader why
// the first time.
func (u *reuseUpload) stop(why error) {
	u.stopped.Store(true)
	u.stopOnce.Do(func() { u.ru.CopyFailed(why) })
}

// budgetLow reports whether the parts after part num, which ends at
// stream offset end, must be wide so that any archive a plain upload
// stores (partLimit parts of PartSize) still fits in partLimit parts.
// The archive's size is not known (it is streamed), and a plain upload
// spends no part on less than PartSize, so short parts (copies, and the
// uploads between them) can only be afforded with wider parts later.
// Deciding after the next part is still safe while that part, however
// short, leaves room for the largest such archive's rest in wide parts;
// so copying goes on as long as it can (at the default part size, for
// some 5,900 parts of MinPartSize out of 10,000). Where two buffers would exceed
// MaxPartSize, parts stay PartSize and copying stops after the first.
func (u *reuseUpload) budgetLow(num int32, end int64) bool {
	rest := max(0, int64(partLimit)*u.s.cfg.PartSize-end)
	wide := u.wideSize()
	return int64(num)+1+(rest+wide-1)/wide > int64(partLimit)
}

// wideSize is the size of a wide part: two buffers, if that is not
// over MaxPartSize.
func (u *reuseUpload) wideSize() int64 {
	if w := 2 * u.s.cfg.PartSize; w <= MaxPartSize {
		return w
	}
	return u.s.cfg.PartSize
}

// release returns p's buffers to u.free.
func (u *reuseUpload) release(p *reusePart) {
	u.free <- p.buf
	if p.more != nil {
		u.free <- p.more
	}
}

// nextBuf returns a buffer for the next part: a new one while fewer
// than Concurrency+1 exist, else one a finished part returned.
func (u *reuseUpload) nextBuf() (*[]byte, error) {
	if u.alloc < u.s.cfg.Concurrency+1 {
		u.alloc++
		return u.s.getBuf(), nil
	}
	select {
	case b := <-u.free:
		return b, nil
	case <-u.gctx.Done():
		return nil, u.failure()
	}
}

// failure is why the parts' context ended: a part failed, or ctx ended.
func (u *reuseUpload) failure() error {
	if err := u.g.Wait(); err != nil {
		return err
	}
	return mapError(context.Cause(u.gctx), u.s.bucket, "upload archive of", u.n.key)
}

// send starts sending p as the next part, creating the upload first if
// p is the first part. p's buffer goes back to u.free once sent, or at
// once if send fails.
func (u *reuseUpload) send(p *reusePart) error {
	if u.uploadID == nil {
		id, err := u.s.startUpload(u.gctx, u.n, u.dataName)
		if err != nil {
			u.release(p)
			return err
		}
		u.uploadID = id
	}
	if u.num >= partLimit {
		u.release(p)
		return fmt.Errorf("%w: s3: put key %q: the archive needs more than %d parts of up to %d bytes; raise the part size",
			tiercache.ErrLimitExceeded, u.n.key, partLimit, u.s.cfg.PartSize)
	}
	u.num++
	num := u.num
	if !u.wide && u.budgetLow(num, p.off+int64(p.n)) {
		u.wide = true
		if !u.stopped.Load() {
			// p is still copied: its size is set. Copies failing
			// later have nothing more to stop, so this is the reason.
			err := fmt.Errorf("%d of the %d parts an upload may have hold its first %d bytes; the rest goes up in parts of %d bytes, so that any archive an upload without a base could store still fits",
				num, partLimit, p.off+int64(p.n), u.wideSize())
			u.stopOnce.Do(func() { u.ru.CopyFailed(err) })
		}
	}
	u.g.Go(func() error {
		defer u.release(p)
		if p.more != nil {
			part, err := u.uploadWide(num, p)
			if err != nil {
				return err
			}
			u.addPart(part)
			return nil
		}
		data := (*p.buf)[:p.n]
		var sum [md5.Size]byte // of data, once a copy's ETag was not it
		var wrong error        // why the copy's part is not taken, if probe
		probe := false
		if p.copy && !u.stopped.Load() {
			etag, err := u.copyPart(u.gctx, num, p)
			if err == nil && !u.opaque.Load() {
				if sum = md5.Sum(data); !etagIs(etag, sum) {
					probe, err = u.wrongCopy(num, etag, sum)
					wrong = err
				}
			}
			switch {
			case err == nil:
				u.addPart(types.CompletedPart{ETag: etag, PartNumber: aws.Int32(num)})
				u.copied.Add(int64(p.n))
				u.ru.Copied(p.off, int64(p.n))
				return nil
			case u.gctx.Err() != nil:
				// Cancelled, or another part failed: not the copy's
				// fault, and nothing to fall back for.
				return mapError(err, u.s.bucket, fmt.Sprintf("copy part %d of", num), u.n.key)
			case wrong != nil:
				// The probe stops copies once its upload tells.
			default:
				// The bytes are in hand: upload them instead.
				u.stop(u.s.copyError(err, u.n.key))
			}
		}
		// Uploading a part number again replaces a part copied wrong.
		part, err := u.s.uploadPart(u.gctx, u.n, u.dataName, u.uploadID, num, data)
		if probe {
			if err == nil && !etagIs(part.ETag, sum) {
				u.opaque.Store(true) // nothing to check copies against
			} else {
				u.stop(wrong)
			}
			close(u.probed)
		}
		if err != nil {
			return err
		}
		u.addPart(part)
		return nil
	})
	return nil
}

// uploadWide is uploadPart for wide part p, whose bytes lie in two
// buffers.
func (u *reuseUpload) uploadWide(num int32, p *reusePart) (types.CompletedPart, error) {
	out, err := u.s.client.UploadPart(u.gctx, &s3.UploadPartInput{
		Bucket:        &u.s.bucket,
		Key:           &u.dataName,
		UploadId:      u.uploadID,
		PartNumber:    aws.Int32(num),
		Body:          io.NewSectionReader(twoBufs{*p.buf, (*p.more)[:p.n-len(*p.buf)]}, 0, int64(p.n)),
		ContentLength: aws.Int64(int64(p.n)),
	})
	if err != nil {
		return types.CompletedPart{}, mapError(err, u.s.bucket, fmt.Sprintf("upload part %d of", num), u.n.key)
	}
	return types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}, nil
}

// twoBufs is the bytes of a, then of b, as an io.ReaderAt.
type twoBufs struct{ a, b []byte }

func (t twoBufs) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(t.a)) {
		n = copy(p, t.a[off:])
	}
	if i := off + int64(n) - int64(len(t.a)); n < len(p) && i < int64(len(t.b)) {
		n += copy(p[n:], t.b[i:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// wrongCopy is what to do with copied part num whose ETag is not sum,
// the MD5 of the bytes it stands for: the server copied other bytes, or
// its ETags are not MD5s (SSE-KMS, some gateways). The first such part
// is the probe (probe true): it is uploaded, and its upload's ETag tells
// which. The others wait for that: nil if ETags are not MD5s here (the
// copy is taken, unchecked, as before: the size check after completion
// is all there is), else why the part is uploaded instead.
func (u *reuseUpload) wrongCopy(num int32, etag *string, sum [md5.Size]byte) (probe bool, err error) {
	err = fmt.Errorf("the server's copy for part %d has ETag %s, not %x, the MD5 of the base's bytes it stands for (the base's object was rewritten, or the server copied other bytes)",
		num, aws.ToString(etag), sum)
	if u.probing.CompareAndSwap(false, true) {
		return true, err
	}
	select {
	case <-u.probed:
	case <-u.gctx.Done():
		return false, err
	}
	if u.opaque.Load() {
		return false, nil
	}
	return false, err
}

// etagIs reports whether etag is the MD5 sum, as a plain ETag spells it.
func etagIs(etag *string, sum [md5.Size]byte) bool {
	return strings.EqualFold(strings.Trim(aws.ToString(etag), `"`), hex.EncodeToString(sum[:]))
}

func (u *reuseUpload) addPart(p types.CompletedPart) {
	u.mu.Lock()
	u.parts = append(u.parts, p)
	u.mu.Unlock()
}

// copyPart copies p's range of the base as part num, and returns the
// part's ETag, or the SDK's error, or errNoETag. No
// x-amz-copy-source-if-* condition is sent: some servers (R2) do not
// implement them, and a data object never changes under its name.
func (u *reuseUpload) copyPart(ctx context.Context, num int32, p *reusePart) (*string, error) {
	out, err := u.s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
		Bucket:          &u.s.bucket,
		Key:             &u.dataName,
		UploadId:        u.uploadID,
		PartNumber:      aws.Int32(num),
		CopySource:      &u.source,
		CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", p.baseOff, p.baseOff+int64(p.n)-1)),
	})
	if err != nil {
		return nil, err
	}
	if out.CopyPartResult == nil || aws.ToString(out.CopyPartResult.ETag) == "" {
		// Some gateways answer 200 without having made the part.
		return nil, errNoETag
	}
	return out.CopyPartResult.ETag, nil
}

// copyError says why a copy failed, in words for the user, and
// remembers a server that does not implement copies.
func (s *Store) copyError(err error, key string) error {
	if errors.Is(err, errNoETag) {
		return err
	}
	code, status := errorCode(err)
	switch {
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		s.noCopy.Store(true)
		return errNoCopies
	case code == "NoSuchKey" || (code == "" && status == http.StatusNotFound):
		return errors.New("the base archive is gone (NoSuchKey)")
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return errors.New("the server refused the copy (412 PreconditionFailed)")
	case code == "InvalidRequest" || code == "InvalidArgument":
		return fmt.Errorf("the server refused the copy (%s): %w", code, err)
	}
	return fmt.Errorf("the copy failed: %w", mapError(err, s.bucket, "copy a part of", key))
}

// lacksCopies reports whether copies are off for s's server (see
// Config.NoCopy).
func (s *Store) lacksCopies() bool { return s.noCopy.Load() }

// copySource is the x-amz-copy-source of object name in bucket: each
// path segment escaped, '+' too, since some servers unescape the header
// as a query string, where '+' is a space.
func copySource(bucket, name string) string {
	segs := strings.Split(bucket+"/"+name, "/")
	for i, seg := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(seg), "+", "%2B")
	}
	return strings.Join(segs, "/")
}
