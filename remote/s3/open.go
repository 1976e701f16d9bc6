package s3

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// errClosed is returned by Read after Close.
var errClosed = errors.New("s3: read from a closed archive stream")

// Open reads the manifest of key, then streams the data object it names
// as ranged GETs (see Requests in the package doc), up to Concurrency
// ranges ahead of the reader. A data object missing because a concurrent
// Put or Delete removed it with its manifest between the two reads is a
// miss too, reported by Open itself, which sends the first GET; one
// missing while the manifest that names it stays, or of another size
// than it records, is a damaged entry (see remote.Store.Open). A
// resumed range carries If-Match on the object's ETag, so it cannot
// splice two versions. Read and Close must not run concurrently. The
// returned Meta's LastAccess is as committed (Stat and List report
// recorded accesses).
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	n, err := s.namesFor(key)
	if err != nil {
		return nil, remote.Meta{}, err
	}
	m, err := s.readManifest(ctx, n)
	if err != nil {
		return nil, remote.Meta{}, err
	}
	size := m.Meta.ArchiveSize
	d := &download{
		s:        s,
		key:      key,
		name:     n.data(m.Data),
		size:     size,
		chunk:    s.cfg.PartSize,
		attempts: s.cfg.MaxAttempts,
	}
	if size == 0 {
		// No range of an empty object exists; still check it does.
		if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &d.name}); err != nil {
			return s.damagedOpen(ctx, n, m, d.mapErr(err))
		}
		return io.NopCloser(strings.NewReader("")), m.Meta, nil
	}
	// The first range is requested here, so a missing data object is an
	// error of Open and its ETag pins the version for the other ranges;
	// on the stream's context, so that Close stops it too.
	sctx, cancel := context.WithCancel(ctx)
	body, etag, err := d.get(sctx, 0, min(d.chunk, size)-1)
	if err != nil {
		cancel()
		return s.damagedOpen(ctx, n, m, err)
	}
	d.etag = etag
	return d.start(sctx, cancel, body), m.Meta, nil
}

// damagedOpen is Open's answer to err, met opening the data object of m:
// an entry whose data is of another size is damaged (err wraps
// tiercache.ErrIntegrity), and so is one whose data is missing while the
// manifest that names it is still there (not replaced or deleted under
// the reader): both return m's Meta too, so that the caller may remove
// that version (see remote.Store.Open).
func (s *Store) damagedOpen(ctx context.Context, n names, m manifest, err error) (io.ReadCloser, remote.Meta, error) {
	if errors.Is(err, tiercache.ErrIntegrity) {
		return nil, m.Meta, err
	}
	if !errors.Is(err, tiercache.ErrNotFound) {
		return nil, remote.Meta{}, err
	}
	if now, rerr := s.readManifest(ctx, n); rerr != nil || now.Data != m.Data {
		return nil, remote.Meta{}, err // replaced or deleted meanwhile
	}
	return nil, m.Meta, fmt.Errorf("%w: s3: key %q: its manifest names data object %s, which is missing", tiercache.ErrIntegrity, n.label, n.data(m.Data))
}

// download fetches one data object.
type download struct {
	s        *Store
	key      string
	name     string
	size     int64
	chunk    int64
	attempts int
	etag     string // of the first response; read-only once streaming
}

// mapErr maps a request error; a missing object means the entry was
// replaced or deleted since its manifest was read.
func (d *download) mapErr(err error) error {
	err = mapError(err, d.s.bucket, "get data of", d.key)
	if errors.Is(err, tiercache.ErrNotFound) {
		return fmt.Errorf("%w (the entry was replaced or deleted while it was read)", err)
	}
	return err
}

// get requests bytes [first, last] of the object and checks the response
// describes exactly that range of an object of the manifest's size. It
// returns the body and the object's ETag. Only an object of another size
// is tiercache.ErrIntegrity: a server that answers with another range, or
// ignores the Range (200 with the whole object, which HTTP allows and
// which is the range when the whole object was asked for), says nothing
// of what is stored.
func (d *download) get(ctx context.Context, first, last int64) (io.ReadCloser, string, error) {
	in := &s3.GetObjectInput{
		Bucket: &d.s.bucket,
		Key:    &d.name,
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
	}
	if d.etag != "" {
		in.IfMatch = aws.String(d.etag)
	}
	out, err := d.s.client.GetObject(ctx, in)
	if err != nil {
		return nil, "", d.mapErr(err)
	}
	cr, length := aws.ToString(out.ContentRange), aws.ToInt64(out.ContentLength)
	rf, rl, total, ok := parseContentRange(cr)
	var bad error
	switch {
	case cr == "" && first == 0 && last == d.size-1 && length == d.size:
		// 200 with the whole object, which was asked for.
	case ok && total != d.size:
		bad = fmt.Errorf("%w: s3: data of key %q: asked for bytes %d-%d of %d, got range %q of an object of another size",
			tiercache.ErrIntegrity, d.key, first, last, d.size, cr)
	case cr == "":
		bad = fmt.Errorf("s3: data of key %q: asked for bytes %d-%d of %d, got %d bytes without a Content-Range: the server or a proxy ignored the Range header",
			d.key, first, last, d.size, length)
	case !ok || rf != first || rl != last || length != last-first+1:
		bad = fmt.Errorf("s3: data of key %q: asked for bytes %d-%d of %d, the server answered with range %q (%d bytes)",
			d.key, first, last, d.size, cr, length)
	}
	if bad != nil {
		_ = out.Body.Close()
		return nil, "", bad
	}
	return out.Body, aws.ToString(out.ETag), nil
}

// parseContentRange parses "bytes FIRST-LAST/TOTAL".
func parseContentRange(s string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	f, l, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	first, err1 = strconv.ParseInt(f, 10, 64)
	last, err2 = strconv.ParseInt(l, 10, 64)
	total, err3 = strconv.ParseInt(tot, 10, 64)
	return first, last, total, err1 == nil && err2 == nil && err3 == nil
}

// fetch fills buf with bytes [off, off+len(buf)) from body (may be nil),
// re-requesting the remainder when a body fails mid-transfer.
func (d *download) fetch(ctx context.Context, buf []byte, off int64, body io.ReadCloser) error {
	got, resumes := 0, 0
	for {
		if body == nil {
			var err error
			body, _, err = d.get(ctx, off+int64(got), off+int64(len(buf))-1)
			if err != nil {
				return err
			}
		}
		nr, err := io.ReadFull(body, buf[got:])
		_ = body.Close()
		body = nil
		got += nr
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return mapError(ctx.Err(), d.s.bucket, "get data of", d.key)
		}
		if errors.Is(err, ErrDeadline) {
			return mapError(err, d.s.bucket, "get data of", d.key)
		}
		resumes++
		if resumes > d.attempts {
			return fmt.Errorf("s3: get data of key %q: bytes from %d: gave up after %d interrupted reads: %w",
				d.key, off+int64(got), resumes, err)
		}
		if err := sleepBackoff(ctx, resumes, d.s.cfg.MaxBackoff); err != nil {
			return mapError(err, d.s.bucket, "get data of", d.key)
		}
	}
}

// sleepBackoff waits before resumption attempt n (1-based): full jitter
// over 100ms × 2^(n-1), capped at limit.
func sleepBackoff(ctx context.Context, n int, limit time.Duration) error {
	d := min(100*time.Millisecond<<min(n-1, 16), limit)
	t := time.NewTimer(rand.N(d + 1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// chunk is one range of the object on its way to the reader.
type chunk struct {
	done chan struct{} // closed when buf is filled or err is set
	buf  *[]byte
	n    int
	err  error
}

// stream reassembles the ranges in order. A producer goroutine starts one
// fetch per range and queues its chunk; the queue's capacity (Concurrency)
// bounds the ranges fetched ahead of the reader, so at most
// Concurrency+1 buffers exist: the queued ones and the one being read.
type stream struct {
	d       *download
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	queue   chan *chunk
	nchunks int

	cur    *chunk
	off    int
	popped int // chunks taken from queue
	err    error
	closed bool
}

// start streams the object from first, the body of its first range,
// requested on ctx; cancel ends ctx.
func (d *download) start(ctx context.Context, cancel context.CancelFunc, first io.ReadCloser) *stream {
	st := &stream{
		d:       d,
		ctx:     ctx,
		cancel:  cancel,
		queue:   make(chan *chunk, d.s.cfg.Concurrency),
		nchunks: int((d.size + d.chunk - 1) / d.chunk),
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer close(st.queue)
		body := first
		for off := int64(0); off < d.size; off += d.chunk {
			c := &chunk{done: make(chan struct{})}
			select {
			case st.queue <- c:
			case <-ctx.Done():
				if body != nil {
					_ = body.Close()
				}
				return
			}
			st.wg.Add(1)
			go func(off int64, body io.ReadCloser) {
				defer st.wg.Done()
				defer close(c.done)
				c.n = int(min(d.chunk, d.size-off))
				c.buf = d.s.getBufFor(c.n)
				c.err = d.fetch(ctx, (*c.buf)[:c.n], off, body)
			}(off, body)
			body = nil
		}
	}()
	return st
}

// Read implements io.Reader.
func (st *stream) Read(p []byte) (int, error) {
	for {
		if st.err != nil {
			return 0, st.err
		}
		if st.cur != nil {
			if st.off < st.cur.n {
				nr := copy(p, (*st.cur.buf)[st.off:st.cur.n])
				st.off += nr
				return nr, nil
			}
			st.d.s.putBuf(st.cur.buf)
			st.cur = nil
		}
		c, ok := <-st.queue
		if !ok {
			// The producer also stops early when ctx ends: that must
			// not look like the end of the archive.
			st.err = io.EOF
			if st.popped < st.nchunks {
				st.err = mapError(cmp.Or(st.ctx.Err(), errClosed), st.d.s.bucket, "get data of", st.d.key)
			}
			continue
		}
		st.popped++
		<-c.done
		if c.err != nil {
			st.d.s.putBuf(c.buf)
			st.err = c.err
			continue
		}
		st.cur, st.off = c, 0
	}
}

// Close stops the background fetches, waits for them and releases the
// buffers. It is idempotent.
func (st *stream) Close() error {
	if st.closed {
		return nil
	}
	st.closed = true
	st.cancel()
	st.wg.Wait()
	for c := range st.queue {
		if c.buf != nil {
			st.d.s.putBuf(c.buf)
		}
	}
	if st.cur != nil {
		st.d.s.putBuf(st.cur.buf)
		st.cur = nil
	}
	st.err = errClosed
	return nil
}
