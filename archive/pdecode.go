package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/semaphore"
)

// Parallel decoding. Write cuts its stream into independent zstd frames
// (see frameSize), so a reader can decode several at once and hand the
// tar reader their bytes in order. One goroutine cuts the input into
// frames by walking their block headers, which costs no decoding; workers
// decode the frames; the tar reader reads the results in stream order.
// Every byte still passes through the same tar reader and the same member
// checks as in a sequential decode, and the input is still hashed whole,
// in order, so nothing about what is accepted changes: only who decodes.
//
// A frame is decoded in memory only if its header declares its size, no
// more than maxParallelFrame, with no dictionary and a window within the
// decoder limit. At the first frame that does not (the one frame of
// `zstd`'s own output, say, or an archive from before Write cut frames),
// the rest of the stream goes to the sequential streaming decoder, which
// applies its checks and errors as before.

// maxDecoders bounds the frames decoded at once, whatever the core count.
const maxDecoders = 8

// maxParallelFrame is the most bytes a frame decoded in memory may
// declare: the frames Write makes hold at most frameSize, and an index
// admits up to maxIndexedFrame.
const maxParallelFrame = maxIndexedFrame

// decodeBudget bounds the compressed and decoded bytes held at once for
// frames read ahead, so memory stays bounded whatever the archive: enough
// for each worker and two more to hold a frame of Write's mean size, and
// never less than the largest frame decoded in memory needs. Reading
// further ahead is slower, not faster: the tar reader sets the pace, and
// frames decoded long before it reads them have left the CPU's caches.
// Sized for frames of frameSize (8 MiB) instead, a cold pull of the 400 MB
// bench tree took twice the CPU and 1.8 times as long.
func decodeBudget(workers int) int64 {
	return max(frameCost(maxParallelFrame), int64(workers+2)*frameCost(meanFrame))
}

// frameCost is what a frame declaring size bytes holds of the budget:
// its compressed bytes at worst, and its decoded ones.
func frameCost(size uint64) int64 { return int64(size + maxZstdFrame(size)) }

// freeBuffers bounds the buffers kept for reuse. Taking fresh ones for
// every frame cost about a third more system time in page faults.
const freeBuffers = 2*maxDecoders + 4

// maxBlockSize is the largest zstd block (the format's Block_Maximum_Size).
const maxBlockSize = 128 << 10

// defaultDecoders is the default of ExtractOptions.Decoders.
func defaultDecoders() int { return min(runtime.GOMAXPROCS(0), maxDecoders) }

// decodeJob is one frame, or the rest of the stream for the sequential
// decoder.
type decodeJob struct {
	in   []byte // the frame's compressed bytes; dropped once decoded
	size int    // the decoded size its header declares
	cost int64  // what it holds of decodeBudget
	out  []byte
	buf  []byte // out's buffer, whole, for reuse
	err  error
	done chan struct{}
	// seq, when set, decodes everything from this frame on, in sequence.
	seq *zstd.Decoder
}

// parallelReader reads a zstd stream's decoded bytes, decoding frames on
// several goroutines. Close must be called, after which no goroutine it
// started is running.
type parallelReader struct {
	ctx       context.Context
	cancel    context.CancelFunc
	src       *bufio.Reader
	maxWindow uint64
	dec       *zstd.Decoder // DecodeAll only, which is safe for concurrent use
	budget    *semaphore.Weighted
	work      chan *decodeJob // to the workers
	order     chan *decodeJob // to Read, in stream order
	free      chan []byte     // buffers for reuse (see getBuf)
	wg        sync.WaitGroup

	cur *decodeJob // what Read serves from
	off int
	err error // sticky

	// For tests, read after Close: frames decoded in memory, and whether
	// the rest of the stream went to the sequential decoder.
	inMemory  int
	sequenced bool
}

// newParallelReader starts decoding r on up to workers goroutines. The
// window limit is maxWindow, as for the streaming decoder.
func newParallelReader(ctx context.Context, r io.Reader, maxWindow uint64, workers int) (*parallelReader, error) {
	workers = min(max(workers, 1), maxDecoders)
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(workers),
		zstd.WithDecoderMaxMemory(maxParallelFrame),
		zstd.WithDecoderMaxWindow(maxWindow),
		// The output buffer is the declared size: a frame that decodes
		// to more fails instead of growing it.
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &parallelReader{
		ctx:       ctx,
		cancel:    cancel,
		src:       bufio.NewReaderSize(r, 1<<20),
		maxWindow: maxWindow,
		dec:       dec,
		budget:    semaphore.NewWeighted(decodeBudget(workers)),
		work:      make(chan *decodeJob, workers),
		order:     make(chan *decodeJob, 4*maxDecoders),
		free:      make(chan []byte, freeBuffers),
	}
	p.wg.Add(1 + workers)
	go p.split()
	for range workers {
		go p.decode()
	}
	return p, nil
}

// split cuts the input into frames and queues them, in order, for the
// workers and for Read.
func (p *parallelReader) split() {
	defer p.wg.Done()
	defer close(p.order)
	defer close(p.work)
	for {
		head, err := p.src.Peek(zstd.HeaderMaxSize)
		if len(head) == 0 && err == io.EOF {
			return // the end, at a frame boundary
		}
		if len(head) == 0 {
			p.fail(err)
			return
		}
		var h zstd.Header
		if herr := h.Decode(head); herr == nil && h.Skippable {
			// An index, or another's metadata: every decoder skips it.
			if _, err := p.src.Discard(h.HeaderSize + int(h.SkippableSize)); err != nil {
				p.fail(truncated(err, "skippable frame"))
				return
			}
			continue
		} else if herr != nil || !p.decodable(&h) {
			p.sequential(nil)
			return
		}
		cost := frameCost(h.FrameContentSize)
		if err := p.budget.Acquire(p.ctx, cost); err != nil {
			return // Close, or ctx: Read reports it
		}
		job := &decodeJob{size: int(h.FrameContentSize), cost: cost, done: make(chan struct{})}
		job.in, err = p.readFrame(&h)
		if lf := (*longFrame)(nil); errors.As(err, &lf) {
			// Valid, if odd (empty blocks pad it): the streaming
			// decoder takes over, so what is accepted does not depend
			// on the decoder count.
			p.budget.Release(cost)
			p.sequential(lf.read)
			return
		}
		if err != nil {
			job.err = err
			close(job.done)
			p.queue(job, false)
			return
		}
		if !p.queue(job, true) {
			return
		}
		p.inMemory++
	}
}

// decodable reports whether the frame h heads is decoded in memory.
func (p *parallelReader) decodable(h *zstd.Header) bool {
	window := h.WindowSize
	if h.SingleSegment {
		window = h.FrameContentSize
	}
	return h.HasFCS && h.FrameContentSize <= maxParallelFrame && h.DictionaryID == 0 && window <= p.maxWindow
}

// readFrame reads the frame h heads, whole: its header, its blocks (as
// their headers give their sizes) and its checksum.
func (p *parallelReader) readFrame(h *zstd.Header) ([]byte, error) {
	limit := int(maxZstdFrame(h.FrameContentSize))
	in := p.getBuf(limit)[:h.HeaderSize]
	if _, err := io.ReadFull(p.src, in); err != nil {
		return nil, truncated(err, "frame header")
	}
	for {
		var bh [3]byte
		if _, err := io.ReadFull(p.src, bh[:]); err != nil {
			return nil, truncated(err, "block header")
		}
		last, n, err := parseBlockHeader(bh)
		if err != nil {
			return nil, err
		}
		if len(in)+3+n > limit {
			return nil, &longFrame{read: append(in, bh[:]...)}
		}
		in = append(in, bh[:]...)
		in = slices.Grow(in, n)[:len(in)+n]
		if _, err := io.ReadFull(p.src, in[len(in)-n:]); err != nil {
			return nil, truncated(err, "block")
		}
		if last {
			break
		}
	}
	if h.HasCheckSum {
		var sum [4]byte
		if _, err := io.ReadFull(p.src, sum[:]); err != nil {
			return nil, truncated(err, "frame checksum")
		}
		in = append(in, sum[:]...)
	}
	return in, nil
}

// longFrame reports a frame longer than its declared content size bounds
// (see maxZstdFrame), of which read was read.
type longFrame struct{ read []byte }

func (*longFrame) Error() string { return "zstd: frame longer than its declared size bounds" }

// parseBlockHeader decodes a zstd block header: whether the block ends
// its frame, and how many bytes follow the header (one for an RLE block,
// whose byte is repeated).
func parseBlockHeader(bh [3]byte) (last bool, n int, err error) {
	v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
	last, typ, size := v&1 == 1, (v>>1)&3, int(v>>3)
	switch {
	case typ == 3:
		return false, 0, errors.New("zstd: reserved block type")
	case size > maxBlockSize:
		return false, 0, fmt.Errorf("zstd: block of %d bytes, over the %d-byte maximum", size, maxBlockSize)
	case typ == 1:
		return last, 1, nil
	}
	return last, size, nil
}

// truncated describes an input that ended inside what was being read; a
// failure of the input itself is returned as it is.
func truncated(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("zstd: stream ends inside a %s: %w", what, io.ErrUnexpectedEOF)
	}
	return err
}

// queue hands job to Read and, if toWorkers, to the workers. It reports
// false when the reader is closing.
func (p *parallelReader) queue(job *decodeJob, toWorkers bool) bool {
	select {
	case p.order <- job:
	case <-p.ctx.Done():
		return false
	}
	if !toWorkers {
		return true
	}
	select {
	case p.work <- job:
		return true
	case <-p.ctx.Done():
		// Read may be waiting for it: it must not wait forever.
		job.err = p.ctx.Err()
		close(job.done)
		return false
	}
}

// fail queues an error for Read, in order.
func (p *parallelReader) fail(err error) {
	job := &decodeJob{err: err, done: make(chan struct{})}
	close(job.done)
	p.queue(job, false)
}

// sequential hands the rest of the input, after read (what was read of
// it already), to a streaming decoder.
func (p *parallelReader) sequential(read []byte) {
	var src io.Reader = p.src
	if len(read) > 0 {
		src = io.MultiReader(bytes.NewReader(read), p.src)
	}
	seq, err := zstd.NewReader(src,
		zstd.WithDecoderMaxMemory(p.maxWindow),
		zstd.WithDecoderMaxWindow(p.maxWindow),
	)
	if err != nil {
		p.fail(err)
		return
	}
	p.sequenced = true
	job := &decodeJob{seq: seq, done: make(chan struct{})}
	close(job.done)
	if !p.queue(job, false) {
		seq.Close()
	}
}

// getBuf returns an empty buffer of capacity n or more, reused if one is
// free.
func (p *parallelReader) getBuf(n int) []byte {
	select {
	case b := <-p.free:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	// Write's frames all fit one size, so a buffer made for one is
	// reused for the others.
	return make([]byte, 0, max(n, int(maxZstdFrame(frameSize))))
}

// putBuf keeps b for reuse, if there is room.
func (p *parallelReader) putBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	select {
	case p.free <- b[:0]:
	default:
	}
}

// decode is a worker.
func (p *parallelReader) decode() {
	defer p.wg.Done()
	for job := range p.work {
		// The capacity is the declared size: a frame that decodes to
		// more fails instead of growing the buffer.
		buf := p.getBuf(job.size)
		out, err := p.dec.DecodeAll(job.in, buf[:0:job.size])
		p.putBuf(job.in)
		job.buf = buf
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			// The buffer is the declared size: the frame lies about it,
			// which is damage, not a limit reached.
			err = fmt.Errorf("zstd: frame decodes to more than the %d bytes its header says", job.size)
		}
		if err == nil && len(out) != job.size {
			err = fmt.Errorf("zstd: frame decodes to %d bytes, its header says %d", len(out), job.size)
		}
		job.in, job.out, job.err = nil, out, err
		close(job.done)
	}
}

// Read reads decoded bytes, in stream order.
func (p *parallelReader) Read(b []byte) (int, error) {
	for p.err == nil {
		if p.cur == nil {
			select {
			case job, ok := <-p.order:
				if !ok {
					if err := p.ctx.Err(); err != nil {
						p.err = err
						break
					}
					p.err = io.EOF
					break
				}
				p.cur, p.off = job, 0
			case <-p.ctx.Done():
				p.err = p.ctx.Err()
			}
			continue
		}
		job := p.cur
		if job.seq != nil {
			return job.seq.Read(b)
		}
		select {
		case <-job.done:
		case <-p.ctx.Done():
			p.err = p.ctx.Err()
			continue
		}
		if job.err != nil {
			p.err = job.err
			break
		}
		if p.off < len(job.out) {
			n := copy(b, job.out[p.off:])
			p.off += n
			return n, nil
		}
		p.budget.Release(job.cost)
		p.putBuf(job.buf)
		p.cur = nil
	}
	return 0, p.err
}

// Close stops the goroutines and waits for them: the input is no longer
// read once it returns.
func (p *parallelReader) Close() {
	p.cancel()
	p.wg.Wait()
	// A sequential decoder queued but never reached, or being read.
	for job := range p.order {
		if job.seq != nil {
			job.seq.Close()
		}
	}
	if p.cur != nil && p.cur.seq != nil {
		p.cur.seq.Close()
	}
	p.dec.Close()
}
