package archive

import (
	"io"

	"github.com/klauspost/compress/zstd"
)

// frameSize is how many bytes of tar each zstd frame holds. Frames are
// compressed independently, several at once, and written in order: a
// multi-frame stream that any zstd decoder reads as one. Their boundaries
// depend on this constant alone, so the bytes never depend on how many
// frames were compressed at once. Bigger frames compress a little better
// (a match cannot reach into the previous frame) and cost memory: about
// 2·(workers+1)+1 frames are held at once.
const frameSize = 4 << 20

// maxFrameWorkers bounds the frames being compressed at once, and so
// memory, whatever the machine's core count.
const maxFrameWorkers = 8

// frameWriter compresses what is written to it as independent zstd frames
// of frameSize bytes, on up to workers goroutines at once, and writes them
// to w in order. One frame more than workers is queued, so a worker that
// finishes finds the next frame ready. It is not safe for concurrent use.
type frameWriter struct {
	enc      *zstd.Encoder // used through EncodeAll only, which is concurrency-safe
	w        io.Writer
	inFlight int
	filling  []byte
	pending  []*frameJob // oldest first
	free     [][]byte
	started  bool
	err      error // the first error writing to w; sticky
}

// frameJob is one frame being compressed.
type frameJob struct {
	in, out []byte
	done    chan struct{}
}

// newFrameWriter returns a frameWriter compressing at level on up to
// workers goroutines (at least 1, at most maxFrameWorkers).
func newFrameWriter(w io.Writer, level zstd.EncoderLevel, workers int) (*frameWriter, error) {
	workers = min(max(workers, 1), maxFrameWorkers)
	// EncodeAll waits for one of the encoder's workers encoders. No match
	// reaches outside a frame, so a window of one frame loses nothing and
	// halves each encoder's history buffer (16 MiB at the default 8 MiB).
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(workers),
		zstd.WithWindowSize(frameSize),
	)
	if err != nil {
		return nil, err
	}
	return &frameWriter{enc: enc, w: w, inFlight: workers + 1}, nil
}

// Write buffers p, starting a frame's compression each time frameSize
// bytes have accumulated. It returns the first error of writing to w.
func (fw *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if fw.err != nil {
			return n, fw.err
		}
		if fw.filling == nil {
			fw.filling = fw.buffer()[:0]
		}
		k := copy(fw.filling[len(fw.filling):frameSize], p)
		fw.filling = fw.filling[:len(fw.filling)+k]
		p = p[k:]
		n += k
		if len(fw.filling) == frameSize {
			fw.submit()
		}
	}
	return n, fw.err
}

// Close compresses what is buffered as the last frame, writes every frame
// still pending, and returns the first error of writing to w. A stream
// with no input at all still gets one (empty) frame, so the output is
// always a valid zstd stream.
func (fw *frameWriter) Close() error {
	if len(fw.filling) > 0 || !fw.started {
		if fw.filling == nil {
			fw.filling = fw.buffer()[:0]
		}
		fw.submit()
	}
	for len(fw.pending) > 0 {
		fw.writeOldest()
	}
	return fw.err
}

// Abort waits for the frames in progress without writing them, for an
// archive that failed: their goroutines hold buffers until they end.
func (fw *frameWriter) Abort() {
	for _, j := range fw.pending {
		<-j.done
	}
	fw.pending = nil
}

// submit starts compressing the filling buffer, first writing out the
// oldest frame if inFlight are already in progress.
func (fw *frameWriter) submit() {
	if len(fw.pending) == fw.inFlight {
		fw.writeOldest()
	}
	j := &frameJob{in: fw.filling, out: fw.buffer()[:0], done: make(chan struct{})}
	fw.filling = nil
	fw.started = true
	fw.pending = append(fw.pending, j)
	go func() {
		j.out = fw.enc.EncodeAll(j.in, j.out)
		close(j.done)
	}()
}

// writeOldest waits for the oldest frame and writes it (unless an earlier
// write failed), then recycles its buffers.
func (fw *frameWriter) writeOldest() {
	j := fw.pending[0]
	fw.pending = fw.pending[1:]
	<-j.done
	if fw.err == nil {
		if _, err := fw.w.Write(j.out); err != nil {
			fw.err = err
		}
	}
	fw.free = append(fw.free, j.in, j.out)
}

// buffer returns a recycled buffer or a new one, with room for a frame of
// incompressible input (zstd adds a few bytes per 128 KiB block).
func (fw *frameWriter) buffer() []byte {
	if k := len(fw.free); k > 0 {
		b := fw.free[k-1]
		fw.free = fw.free[:k-1]
		return b
	}
	return make([]byte, 0, frameSize+frameSize/64+1024)
}
