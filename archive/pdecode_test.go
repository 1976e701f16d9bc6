package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// frameCut compresses raw as independent frames of cut bytes each, as
// EncodeAll makes them (their headers declare their size), with a
// skippable frame after the first and at the end, as Write puts its
// index there.
func frameCut(t testing.TB, raw []byte, cut int) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out []byte
	for i := 0; i < len(raw) || i == 0; i += cut {
		out = enc.EncodeAll(raw[i:min(i+cut, len(raw))], out)
		if i == 0 {
			out = skippable(out, []byte("between frames"))
		}
	}
	return skippable(out, []byte("at the end"))
}

func skippable(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0x184D2A53)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// readParallel reads all of data through a parallelReader.
func readParallel(t testing.TB, data []byte, workers int) ([]byte, *parallelReader, error) {
	t.Helper()
	p, err := newParallelReader(t.Context(), bytes.NewReader(data), DefaultMaxDecoderMemory, workers)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(p)
	p.Close()
	return got, p, err
}

// TestParallelReaderMatchesSequential checks that frames decoded several
// at once come out as the one sequence a streaming decoder gives, for
// Write's archives, for many small frames with skippable frames among
// them, and for streams that turn to the streaming decoder at a frame
// that does not declare its size, at the start or after others.
func TestParallelReaderMatchesSequential(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 300})
	written, _ := writeBytes(t, src)
	text := bytes.Repeat([]byte("a line of text that compresses\n"), 20_000)
	streamed := compress(t, text) // no declared size: the streaming decoder's
	cases := []struct {
		name      string
		data      []byte
		inMemory  bool
		sequenced bool
	}{
		{"Write's archive", written, true, false},
		{"small frames and skippable frames", frameCut(t, text, 1000), true, false},
		{"frames, then a frame without its size", append(frameCut(t, text, 50_000), streamed...), true, true},
		{"a frame without its size first", append(bytes.Clone(streamed), frameCut(t, text, 50_000)...), false, true},
		{"a frame over maxParallelFrame", frameCut(t, make([]byte, maxParallelFrame+1), maxParallelFrame+1), false, true},
	}
	for _, c := range cases {
		want := decompressAll(t, c.data)
		for _, workers := range []int{1, 2, 8} {
			got, p, err := readParallel(t, c.data, workers)
			if err != nil {
				t.Fatalf("%s, %d workers: %v", c.name, workers, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, %d workers: %d bytes differ from the %d a streaming decoder gives", c.name, workers, len(got), len(want))
			}
			if (p.inMemory > 0) != c.inMemory || p.sequenced != c.sequenced {
				t.Errorf("%s, %d workers: %d frames in memory, sequential decoder used %v; want in memory %v, sequential %v", c.name, workers, p.inMemory, p.sequenced, c.inMemory, c.sequenced)
			}
		}
	}
}

func decompressAll(t testing.TB, data []byte) []byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxMemory(DefaultMaxDecoderMemory))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	b, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParallelReaderBadInput checks that a stream cut short anywhere, a
// flipped byte, a frame lying about its size or garbage after the frames
// is an error, never a short or altered read.
func TestParallelReaderBadInput(t *testing.T) {
	text := bytes.Repeat([]byte("a line of text that compresses\n"), 2_000)
	good := frameCut(t, text, 9_000)
	for _, n := range []int{1, 3, 10, 100, len(good) / 3, len(good) / 2, len(good) - 20} {
		if got, _, err := readParallel(t, good[:n], 2); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("cut at %d of %d bytes: read %d bytes, err %v; want an error", n, len(good), len(got), err)
		}
	}
	for _, at := range []int{20, len(good) / 2} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x40
		if got, _, err := readParallel(t, bad, 2); err == nil && bytes.Equal(got, text) {
			t.Errorf("byte %d flipped: read the original, no error", at)
		} else if err == nil {
			t.Errorf("byte %d flipped: read %d other bytes without error", at, len(got))
		}
	}
	if _, _, err := readParallel(t, append(bytes.Clone(good), "garbage!"...), 2); err == nil {
		t.Error("garbage after the frames: no error")
	}

	// One frame of 1000 bytes whose header declares another size.
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	frame := enc.EncodeAll(text[:1000], nil)
	enc.Close()
	var h zstd.Header
	if err := h.Decode(frame); err != nil || !h.HasFCS || h.DictionaryID != 0 || frame[4]>>6 != 1 {
		t.Fatalf("test frame not as expected (a 2-byte size field): %+v, %v", h, err)
	}
	fcsAt := 5 // after the magic and the descriptor, and the window descriptor if any
	if !h.SingleSegment {
		fcsAt++
	}
	for _, declared := range []int{900, 1100} {
		lying := bytes.Clone(frame)
		binary.LittleEndian.PutUint16(lying[fcsAt:], uint16(declared-256))
		if got, _, err := readParallel(t, lying, 2); err == nil {
			t.Errorf("frame of 1000 bytes declaring %d: read %d bytes without error", declared, len(got))
		}
		// Extract calls it damage, not a limit reached.
		if _, err := Extract(t.Context(), bytes.NewReader(lying), t.TempDir(), ExtractOptions{Decoders: 2}); !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("Extract of a frame of 1000 bytes declaring %d: %v, want ErrIntegrity", declared, err)
		}
	}
}

// TestParallelReaderStops checks that a cancelled context ends a read
// promptly and that Close leaves no goroutine behind, read to the end or
// not.
func TestParallelReaderStops(t *testing.T) {
	data := frameCut(t, noise(3<<20), 64<<10)
	before := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(t.Context())
	p, err := newParallelReader(ctx, bytes.NewReader(data), DefaultMaxDecoderMemory, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(p); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
	p.Close()

	// Closed unread, with frames in flight and the budget taken.
	p, err = newParallelReader(t.Context(), bytes.NewReader(data), DefaultMaxDecoderMemory, 4)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

// TestExtractDecodersAgree extracts one archive with every decoder
// count: the same tree and the same Result each time.
func TestExtractDecodersAgree(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 500})
	data, wres := writeBytes(t, src)
	wres.Index = IndexInfo{}
	for _, decoders := range []int{1, 2, 8} {
		s := newSandbox(t)
		res, err := Extract(t.Context(), bytes.NewReader(data), s.dest, ExtractOptions{Decoders: decoders})
		if err != nil {
			t.Fatalf("%d decoders: %v", decoders, err)
		}
		if res != wres {
			t.Errorf("%d decoders: result %+v, Write's %+v", decoders, res, wres)
		}
		treetest.AssertEqual(t, src, s.dest)
	}
	if _, err := Extract(t.Context(), bytes.NewReader(nil), t.TempDir(), ExtractOptions{Decoders: -1}); err == nil {
		t.Error("Decoders -1 accepted")
	}
}

// TestLargeFilesInChunks checks files over pooledFileMax, which the
// reader hands to a writer chunk by chunk: they round-trip with any
// writer count, and a stream cut inside one, or a context cancelled
// during one, fails cleanly with no goroutine left waiting on a chunk.
func TestLargeFilesInChunks(t *testing.T) {
	src := t.TempDir()
	for name, size := range map[string]int{"a": pooledFileMax + 1, "b/c": 5 << 20, "d": 20 << 20, "e": 100} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, noiseSeed(size, byte(size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := writeBytes(t, src)
	for _, writers := range []int{1, 4} {
		s := newSandbox(t)
		if _, err := Extract(t.Context(), bytes.NewReader(data), s.dest, ExtractOptions{Writers: writers}); err != nil {
			t.Fatalf("%d writers: %v", writers, err)
		}
		treetest.AssertEqual(t, src, s.dest)
	}

	before := runtime.NumGoroutine()
	for _, n := range []int{len(data) / 4, len(data) / 2, len(data) * 9 / 10} {
		_, _, err := extractBytes(t, data[:n], ExtractOptions{Writers: 4})
		if !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("cut at %d of %d: err = %v, want ErrIntegrity", n, len(data), err)
		}
	}
	// Cancelled once the reader is inside the 20 MiB file.
	ctx, cancel := context.WithCancel(t.Context())
	r := &cancelAfter{r: bytes.NewReader(data), n: int64(len(data) / 2), cancel: cancel}
	if _, err := Extract(ctx, r, newSandbox(t).dest, ExtractOptions{Writers: 4}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled midway: err = %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the failed extractions, %d before", n, before)
	}
}

// cancelAfter reads r and cancels once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// writeBytes archives src in memory with Write's defaults.
func writeBytes(t testing.TB, src string) ([]byte, Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), res
}

// TestParallelFrameWithEmptyBlocks: a frame that declares its size may
// hold empty raw blocks past what that size bounds (valid: zstd -d and
// the streaming decoder accept it); the parallel reader hands it to the
// streaming decoder instead of refusing it, so what is accepted does not
// depend on the decoder count.
func TestParallelFrameWithEmptyBlocks(t *testing.T) {
	tarb := tarBytes(t, reg("a", "hello"))
	n := len(tarb)                                                                  // 2-byte FCS field holds n-256
	fr := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x60, byte(n - 256), byte((n - 256) >> 8)} // single segment, FCS
	for range 10 {
		fr = append(fr, 0, 0, 0) // empty raw block, not last
	}
	v := 1 | n<<3 // last raw block of n bytes
	fr = append(fr, byte(v), byte(v>>8), byte(v>>16))
	fr = append(fr, tarb...)
	seq, serr := Inspect(t.Context(), bytes.NewReader(fr), ExtractOptions{Decoders: 1})
	if serr != nil {
		t.Fatalf("sequential: %v", serr)
	}
	par, perr := Inspect(t.Context(), bytes.NewReader(fr), ExtractOptions{Decoders: 2})
	if perr != nil || par != seq {
		t.Errorf("Decoders 1: %+v; Decoders 2: %+v, %v", seq, par, perr)
	}
}
