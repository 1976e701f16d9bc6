package archive

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// FrameSource offers the compressed frames of an earlier archive (a
// push's base, kept by the local tier) to Write, which copies one in
// place of compressing a frame of its own when the two hold the same tar
// bytes. Compression is most of a push's CPU; checking a candidate costs
// a read, a hash and a decompression, several times less. Frames are
// content-defined (see frameSize), so a tree that changed a little
// repeats most of its base's frames.
//
// A frame is copied only if its bytes hash to what the base's verified
// index records, it is one zstd frame declaring its size, and it
// decompresses to exactly the tar bytes Write would have compressed.
// So what Write produces always decompresses to the archive of the tree,
// whatever the base file holds. A copied frame keeps the base's
// compression level: with a base written at another level, or by
// another encoder version, the archive differs (in those frames) from a
// full write of the same tree, and its digest with it.
//
// A FrameSource is safe for concurrent use.
type FrameSource struct {
	r      io.ReaderAt
	byHead map[frameKey][]IndexFrame
	dec    *zstd.Decoder
	bufs   chan []byte // free buffers of frameSize capacity, for decompressing
	copied atomic.Int64
}

// frameKey is what a frame of the base must share with a frame being
// written to be worth decompressing: its head and its tar length.
type frameKey struct {
	head   frameHead
	tarLen int64
}

// maxCandidates bounds the base frames tried for one frame written, so
// that a base of many identical heads costs no more than a compression.
const maxCandidates = 2

// NewFrameSource returns a FrameSource of the archive r holds, whose
// index (read with ReadIndex, so verified) is idx. The caller keeps r
// open until the writes using it end, then calls Close.
func NewFrameSource(r io.ReaderAt, idx Index) (*FrameSource, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(maxFrameWorkers+1),
		zstd.WithDecoderMaxMemory(frameSize),
		zstd.WithDecoderMaxWindow(frameSize))
	if err != nil {
		return nil, fmt.Errorf("archive: zstd decoder: %w", err)
	}
	s := &FrameSource{r: r, dec: dec, byHead: make(map[frameKey][]IndexFrame, len(idx.Frames)),
		bufs: make(chan []byte, maxFrameWorkers+1)}
	for _, f := range idx.Frames {
		if f.TarLength > frameSize {
			continue // Write never makes such a frame: it cannot match
		}
		k := frameKey{frameHead{name: f.Member, mid: f.MidMember}, f.TarLength}
		s.byHead[k] = append(s.byHead[k], f)
	}
	return s, nil
}

// Copied returns how many frames Write has copied from s instead of
// compressing them.
func (s *FrameSource) Copied() int64 {
	if s == nil {
		return 0
	}
	return s.copied.Load()
}

// Close releases the decoder. It does not close the ReaderAt.
func (s *FrameSource) Close() {
	if s != nil {
		s.dec.Close()
	}
}

// frame returns, in out's array, the base's compressed bytes of a frame
// holding the tar bytes in, which head starts, and their SHA-256; ok is
// false when the base has no such frame (or its file fails the checks),
// and the caller compresses in itself.
func (s *FrameSource) frame(in []byte, head frameHead, out []byte) (b []byte, sum [sha256.Size]byte, ok bool) {
	cands := s.byHead[frameKey{head, int64(len(in))}]
	for _, f := range cands[:min(len(cands), maxCandidates)] {
		if f.Offset < 0 || f.Length <= 0 || f.Length > int64(cap(out)) {
			continue // an index ReadIndex accepted has none such
		}
		b = out[:f.Length]
		if n, _ := s.r.ReadAt(b, f.Offset); n < len(b) {
			continue
		}
		if sum = sha256.Sum256(b); sum != f.SHA256 || !oneFrame(b, len(in)) {
			continue
		}
		if s.decodesTo(b, in) {
			s.copied.Add(1)
			return b, sum, true
		}
	}
	return out, sum, false
}

// decodesTo reports whether the zstd frame b decompresses to want.
// Its buffers are kept for the next frame rather than left to the
// garbage collector: fresh ones cost page faults on every frame.
func (s *FrameSource) decodesTo(b, want []byte) bool {
	var buf []byte
	select {
	case buf = <-s.bufs:
	default:
		buf = make([]byte, 0, frameSize)
	}
	d, err := s.dec.DecodeAll(b, buf[:0])
	ok := err == nil && bytes.Equal(d, want)
	select {
	case s.bufs <- buf:
	default:
	}
	return ok
}

// oneFrame reports whether b is exactly one zstd frame, declaring size
// bytes of content and no dictionary, as Write's frames are: its blocks'
// headers are walked to its end, which must be b's.
func oneFrame(b []byte, size int) bool {
	var h zstd.Header
	if h.Decode(b) != nil || h.Skippable || !h.HasFCS || h.FrameContentSize != uint64(size) || h.DictionaryID != 0 {
		return false
	}
	at := h.HeaderSize
	for {
		if at+3 > len(b) {
			return false
		}
		last, n, err := parseBlockHeader([3]byte(b[at : at+3]))
		if err != nil {
			return false
		}
		at += 3 + n
		if last {
			break
		}
	}
	if h.HasCheckSum {
		at += 4
	}
	return at == len(b)
}
