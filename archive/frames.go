package archive

import (
	"crypto/sha256"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Frames are content-defined, so that archives of trees that differ a
// little share most of their frames byte for byte, and an upload can
// have the server copy those from an earlier archive. A frame ends at a
// member boundary chosen by the members before it, not by where the
// previous frame ended: after each member, a hash of its path and data
// (not its other header fields, so a touched file moves no cut) decides whether
// the boundary after it is a candidate, with a chance proportional to the
// member's size, for candidates about meanFrame bytes apart. Inserting,
// removing or changing a member moves at most the candidates around it;
// the frames after the next unchanged candidate come out as before.
//
// Measured on Go's source tree (about 140 MB of tar, level 3): frames of
// 3.4 MiB on average, and an archive 2.6% larger than `zstd -3` of the
// same tar, against 2.2% for frames cut by size alone; a change to one
// file changes one or two frames.
const (
	// frameSize is the most tar bytes a frame holds. A frame that fills
	// with no candidate ends at its last member boundary in its last
	// cutSpan bytes, or else at frameSize inside a member. About
	// 2·(workers+1)+1 frames are held in memory at once.
	frameSize = 8 << 20
	cutSpan   = 3 << 20
	// meanFrame is the mean distance between candidates, and minGap the
	// least: a member ending closer to the last candidate is not one, so
	// runs of small files do not make small frames, which compress worse.
	meanFrame = 4 << 20
	minGap    = 1 << 20
	// bigMember is the size from which a member starts a frame of its
	// own (the boundary before it is a candidate): its frames then
	// begin at its header, where a parallel reader can start, and its
	// cuts inside it sit at the same offsets of it whatever precedes it.
	bigMember = 4 << 20
)

// castagnoli is the CRC-32C table for members' hashes (hardware
// accelerated on common CPUs, so hashing costs little beside zstd).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// candidateAfter reports whether the boundary after a member of n tar
// bytes whose CRC-32C is h is a candidate, given gap tar bytes since the
// last candidate: with probability n/(meanFrame-minGap), at least minGap
// after the last. A member of meanFrame-minGap bytes or more always is.
func candidateAfter(h uint32, n, gap int64) bool {
	const span = meanFrame - minGap
	if n <= 0 || gap < minGap {
		return false
	}
	return n >= span || uint64(h)*span < uint64(n)<<32
}

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
	onFrame func(IndexFrame)
	reuse   *FrameSource // frames to copy instead of compressing; may be nil

	// For the content-defined cuts: the member being written's hash (of
	// its name, and its data once hashing), its tar bytes so far, and tar
	// bytes since the last candidate.
	crc       uint32
	hashing   bool
	inMember  int64
	sinceCand int64
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
// name's first header block (a PAX header's, if it has one), of size
// data bytes. The caller must have flushed the previous member's padding,
// so that this is a block boundary of the tar stream. The boundary ends
// the filling frame if it is a candidate (see frameSize), or if the frame
// is full.
func (fw *frameWriter) memberStart(name string, size int64) {
	cand := candidateAfter(fw.crc, fw.inMember, fw.sinceCand) || (size >= bigMember && fw.sinceCand > 0)
	if cand {
		fw.sinceCand = 0
	}
	fw.crc, fw.hashing, fw.inMember = crc32.Checksum([]byte(name), castagnoli), false, 0
	if len(fw.filling) > 0 && (cand || len(fw.filling) == frameSize) {
		fw.submit(len(fw.filling))
	}
	fw.current = name
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

// dataStart tells fw that the member's header is written: what follows
// is its data (and padding), which its hash covers.
func (fw *frameWriter) dataStart() { fw.hashing = true }

// Write buffers p, starting a frame's compression each time a full frame
// has more bytes to follow. It returns the first error of writing to w.
func (fw *frameWriter) Write(p []byte) (int, error) {
	if fw.hashing {
		fw.crc = crc32.Update(fw.crc, castagnoli, p)
	}
	fw.inMember += int64(len(p))
	fw.sinceCand += int64(len(p))
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

// cut ends the full filling frame, which reached no candidate, at its
// last member boundary in its last cutSpan bytes, or, without one, at its
// end, inside a member.
func (fw *frameWriter) cut() {
	at := frameSize
	if k := len(fw.marks); k > 0 && fw.marks[k-1].at >= frameSize-cutSpan {
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
		defer close(j.done)
		if fw.reuse != nil {
			var ok bool
			if j.out, j.sum, ok = fw.reuse.frame(j.in, j.head, j.out); ok {
				return
			}
			j.out = j.out[:0]
		}
		j.out = fw.enc.EncodeAll(j.in, j.out)
		j.sum = sha256.Sum256(j.out)
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
	f := IndexFrame{
		Offset:    fw.written,
		Length:    int64(len(j.out)),
		TarOffset: j.tarOff,
		TarLength: int64(len(j.in)),
		Member:    j.head.name,
		MidMember: j.head.mid,
		SHA256:    j.sum,
	}
	if fw.err == nil {
		if fw.onFrame != nil {
			fw.onFrame(f)
		}
		if _, err := fw.w.Write(j.out); err != nil {
			fw.err = err
		}
	}
	fw.record(f)
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
	if len(fw.frames) == maxIndexFrames || indexHeaderSize+fw.idxSize > maxIndexPayload || len(f.Member) > MaxNameLength {
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
