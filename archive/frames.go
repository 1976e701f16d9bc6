package archive

import (
	"crypto/sha256"
	"io"

	"github.com/klauspost/compress/zstd"
)

// frameSize is the most tar bytes a zstd frame holds. Frames are
// compressed independently, several at once, and written in order: a
// multi-frame stream that any zstd decoder reads as one. A full frame ends
// at the last member boundary in its second half, so that frames start
// with a member's header wherever they can; a frame with no boundary there
// ends at frameSize, inside a member. Boundaries thus depend on the tar
// stream alone, so the bytes never depend on how many frames were
// compressed at once. Bigger frames compress a little better (a match
// cannot reach into the previous frame) and cost memory: about
// 2·(workers+1)+1 frames are held at once.
const frameSize = 4 << 20

// minCutFrame is the fewest tar bytes a frame ending at a member boundary
// holds (the last frame aside): a member starting earlier in a full frame
// is cut inside instead, so that small frames do not cost compression.
// Measured on Go's source tree (137 MB of tar, level 3): half a frame
// gave 35 frames, none starting inside a member, and an archive 0.55%
// larger than 4 MiB frames cut anywhere (2.2% larger than `zstd -3` of
// the same tar); three quarters gave 3 frames starting inside a member
// for 0.30%. Frames that start with a header are what a parallel reader
// wants, so the smaller floor won.
const minCutFrame = frameSize / 2

// maxFrameWorkers bounds the frames being compressed at once, and so
// memory, whatever the machine's core count.
const maxFrameWorkers = 8

// frameWriter compresses what is written to it as independent zstd frames
// of at most frameSize bytes, on up to workers goroutines at once, and
// writes them to w in order. One frame more than workers is queued, so a
// worker that finishes finds the next frame ready. It records each frame
// for the archive's index. It is not safe for concurrent use.
type frameWriter struct {
	enc      *zstd.Encoder // used through EncodeAll only, which is concurrency-safe
	w        io.Writer
	inFlight int
	filling  []byte
	head     frameHead    // what starts the filling frame
	marks    []memberMark // members starting inside filling, past its first byte
	current  string       // the member being written
	tarOff   int64        // tar offset of filling[0]
	written  int64        // compressed bytes written to w
	pending  []*frameJob  // oldest first
	free     [][]byte
	started  bool
	err      error // the first error writing to w; sticky

	frames  []IndexFrame // written so far, for the index
	idxSize int          // their encoded size
	noIndex bool         // the index outgrew its bounds: none is written
}

// frameHead says what a frame's first byte is: the first byte of member
// name's first header block, or, with mid, a byte inside member name
// (name is empty before the first member).
type frameHead struct {
	name string
	mid  bool
}

// memberMark is a member whose first header block starts at filling[at].
type memberMark struct {
	at   int
	name string
}

// frameJob is one frame being compressed.
type frameJob struct {
	in, out []byte
	head    frameHead
	tarOff  int64
	sum     [sha256.Size]byte // of out
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

// memberStart tells fw that the next byte written is the first of member
// name's first header block (a PAX header's, if it has one). The caller
// must have flushed the previous member's padding, so that this is a
// block boundary of the tar stream.
func (fw *frameWriter) memberStart(name string) {
	fw.current = name
	if len(fw.filling) == frameSize {
		// A full frame ends here, at the boundary, rather than at the
		// next byte inside the member.
		fw.submit(frameSize)
	}
	if len(fw.filling) == 0 {
		fw.head = frameHead{name: name}
		return
	}
	if k := len(fw.marks); k > 0 && fw.marks[k-1].at == len(fw.filling) {
		fw.marks[k-1].name = name // a header that failed wrote nothing
		return
	}
	fw.marks = append(fw.marks, memberMark{at: len(fw.filling), name: name})
}

// Write buffers p, starting a frame's compression each time a full frame
// has more bytes to follow. It returns the first error of writing to w.
func (fw *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if fw.err != nil {
			return n, fw.err
		}
		if len(fw.filling) == frameSize {
			fw.cut()
		}
		if fw.filling == nil {
			fw.filling = fw.buffer()[:0]
		}
		k := copy(fw.filling[len(fw.filling):frameSize], p)
		fw.filling = fw.filling[:len(fw.filling)+k]
		p = p[k:]
		n += k
	}
	return n, fw.err
}

// cut ends the full filling frame at its last member boundary in the
// second half, or, without one, at its end, inside a member.
func (fw *frameWriter) cut() {
	at := frameSize
	if k := len(fw.marks); k > 0 && fw.marks[k-1].at >= minCutFrame {
		at = fw.marks[k-1].at
	}
	fw.submit(at)
}

// submit starts compressing filling[:at] as a frame and keeps the rest as
// the start of the next one, first writing out the oldest frame if
// inFlight are already in progress.
func (fw *frameWriter) submit(at int) {
	if len(fw.pending) == fw.inFlight {
		fw.writeOldest()
	}
	j := &frameJob{in: fw.filling[:at], out: fw.buffer()[:0], head: fw.head, tarOff: fw.tarOff, done: make(chan struct{})}
	var next []byte // allocated by the next Write when nothing is carried over
	if at < len(fw.filling) {
		next = append(fw.buffer()[:0], fw.filling[at:]...)
	}
	fw.head = frameHead{name: fw.current, mid: true}
	for _, m := range fw.marks {
		if m.at == at {
			fw.head = frameHead{name: m.name}
		}
	}
	fw.marks = fw.marks[:0]
	fw.filling = next
	fw.tarOff += int64(at)
	fw.started = true
	fw.pending = append(fw.pending, j)
	go func() {
		j.out = fw.enc.EncodeAll(j.in, j.out)
		j.sum = sha256.Sum256(j.out)
		close(j.done)
	}()
}

// Close compresses what is buffered as the last frame and writes every
// frame still pending, returning the first error of writing to w. A
// stream with no input at all still gets one (empty) frame, so the output
// is always a valid zstd stream.
func (fw *frameWriter) Close() error {
	if len(fw.filling) > 0 || !fw.started {
		if fw.filling == nil {
			fw.filling = fw.buffer()[:0]
		}
		fw.submit(len(fw.filling))
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

// writeOldest waits for the oldest frame and writes it (unless an earlier
// write failed), records it for the index, then recycles its buffers.
func (fw *frameWriter) writeOldest() {
	j := fw.pending[0]
	fw.pending = fw.pending[1:]
	<-j.done
	if fw.err == nil {
		if _, err := fw.w.Write(j.out); err != nil {
			fw.err = err
		}
	}
	fw.record(IndexFrame{
		Offset:    fw.written,
		Length:    int64(len(j.out)),
		TarOffset: j.tarOff,
		TarLength: int64(len(j.in)),
		Member:    j.head.name,
		MidMember: j.head.mid,
		SHA256:    j.sum,
	})
	fw.written += int64(len(j.out))
	fw.free = append(fw.free, j.in[:0], j.out)
}

// record adds f to the index, unless the index has outgrown what
// ParseIndex accepts: then the archive gets none, and memory stays
// bounded.
func (fw *frameWriter) record(f IndexFrame) {
	if fw.noIndex {
		return
	}
	fw.idxSize += indexRecordSize(f.Member)
	if len(fw.frames) == maxIndexFrames || fw.idxSize > maxIndexPayload || len(f.Member) > MaxNameLength {
		fw.noIndex = true
		fw.frames = nil
		return
	}
	fw.frames = append(fw.frames, f)
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
