package archive

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// fuzzLimits keep each fuzz input cheap.
var fuzzLimits = ExtractOptions{MaxBytes: 8 << 20, MaxEntries: 2000, MaxDecoderMemory: 8 << 20}

// seedArchives returns compressed archives: a valid one and every hostile
// case.
func seedArchives(f *testing.F) [][]byte {
	seeds := [][]byte{validArchive(f)}
	s := newSandbox(f)
	for _, c := range hostileCases() {
		data := c.archive(f, s)
		seeds = append(seeds, data)
		// The same cut into frames, for the parallel decoder.
		if raw, err := decodeStream(data); err == nil {
			seeds = append(seeds, frameCut(f, raw, 1536))
		}
	}
	return seeds
}

// fuzzOne extracts data into the sandbox's destination and checks the
// invariants that hold for every input: success or an error wrapping one
// of the documented sentinels, nothing outside the destination touched,
// and Inspect accepting what Extract accepts with the same Result.
// It then empties the destination for the next input. One sandbox serves a
// whole fuzzing process, because a fresh one per input would make each
// execution several times slower.
func fuzzOne(t *testing.T, s *sandbox, data []byte) {
	opts := fuzzLimits
	// Let the input pick the symlink mode, so both are explored.
	opts.StrictSymlinks = len(data) > 0 && data[0]&1 == 1
	res, err := Extract(t.Context(), bytes.NewReader(data), s.dest, opts)
	if err != nil && !isSentinel(err) && !wineNoSymlink(err) {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
	ires, ierr := Inspect(t.Context(), bytes.NewReader(data), opts)
	switch {
	case ierr != nil && !isSentinel(ierr):
		t.Fatalf("Inspect: error wraps no sentinel: %v", ierr)
	case err == nil && (ierr != nil || ires.ArchiveSize != res.ArchiveSize || ires.SHA256 != res.SHA256 || ires.Files != res.Files || ires.Size != res.Size):
		t.Fatalf("Extract gave %+v, Inspect %+v, %v", res, ires, ierr)
	}
	s.checkOutside(t)
	if err := fsutil.RemoveAll(s.dest); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.dest, 0o755); err != nil {
		t.Fatal(err)
	}
}

// FuzzExtract feeds arbitrary bytes to Extract as a .tar.zst. Run it with
// go test -run=^$ -fuzz=FuzzExtract -fuzztime=5s ./archive
func FuzzExtract(f *testing.F) {
	for _, seed := range seedArchives(f) {
		f.Add(seed)
	}
	s := newSandbox(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, s, data)
	})
}

// FuzzTarStream fuzzes the tar layer: the input is an uncompressed tar
// stream, compressed by the harness, so mutations reach the member checks
// instead of dying on the zstd checksum.
func FuzzTarStream(f *testing.F) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()
	for _, seed := range seedArchives(f) {
		raw, err := dec.DecodeAll(seed, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	s := newSandbox(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Odd lengths as one streamed frame (the sequential decoder),
		// even ones cut into frames that declare their sizes (the
		// parallel decoder), so both paths meet every mutation.
		var data []byte
		if len(raw)%2 == 1 {
			data = compress(t, raw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		} else {
			data = frameCut(t, raw, 2048)
		}
		fuzzOne(t, s, data)
	})
}

// FuzzParseIndex feeds arbitrary payloads to ParseIndex: it must refuse
// them with an error wrapping tiercache.ErrIntegrity (or ErrIndexVersion,
// for a newer version), or accept them as an
// index that encodes back to the same bytes (the format has one encoding
// of each index, so nothing it accepts is ignored). Run it with
// go test -run=^$ -fuzz=FuzzParseIndex -fuzztime=5s ./archive
func FuzzParseIndex(f *testing.F) {
	f.Add(validIndex())
	_, data, res := smallArchive(f)
	f.Add(data[res.Index.Offset+skippableHeader:])
	f.Add(validIndex()[:indexHeaderSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := ParseIndex(b)
		if err != nil {
			if !errors.Is(err, tiercache.ErrIntegrity) && !errors.Is(err, ErrIndexVersion) {
				t.Fatalf("error wraps neither ErrIntegrity nor ErrIndexVersion: %v", err)
			}
			return
		}
		if again := appendIndexFrame(nil, idx)[skippableHeader:]; !bytes.Equal(again, b) {
			t.Fatalf("accepted %d bytes that encode back as %d other bytes", len(b), len(again))
		}
	})
}

// FuzzFrameSource: whatever the file offered as a base holds, and
// wherever its index says its frame lies (with the digest made to match,
// or not), a write reusing it produces an archive holding exactly the
// tar bytes a write without it does, with an index that verifies. A
// frame is copied only if it decompresses to the frame Write would have
// compressed; its bytes may still differ from Write's (a bit that zstd
// ignores, such as the padding after a table, flipped), so byte equality
// is asserted only where no other frame was copied.
func FuzzFrameSource(f *testing.F) {
	src, want, res := smallArchive(f)
	idx, err := ReadIndex(bytes.NewReader(want), res.ArchiveSize, res.Index)
	if err != nil || len(idx.Frames) != 1 {
		f.Fatalf("index of the seed archive: %d frames, %v", len(idx.Frames), err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()
	wantTar, err := dec.DecodeAll(want, nil)
	if err != nil {
		f.Fatal(err)
	}
	fr := idx.Frames[0]
	f.Add(want, fr.Offset, fr.Length, false)
	f.Add(want[:fr.Length], int64(0), fr.Length, true)
	flipped := bytes.Clone(want)
	flipped[fr.Length/2] ^= 1
	f.Add(flipped, fr.Offset, fr.Length, true)
	f.Add(append(bytes.Clone(want[:fr.Length]), 0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0), int64(0), fr.Length+8, true)
	if ignored := ignoredBit(dec, want[fr.Offset:fr.Offset+fr.Length]); ignored != nil {
		f.Add(ignored, int64(0), fr.Length, true) // copied, though not Write's bytes
	}
	f.Fuzz(func(t *testing.T, base []byte, off, n int64, resum bool) {
		lying := Index{Frames: []IndexFrame{fr}, DataSize: idx.DataSize, TarSize: idx.TarSize}
		lying.Frames[0].Offset, lying.Frames[0].Length = off, n
		inBase := off >= 0 && n >= 0 && off <= int64(len(base)) && n <= int64(len(base))-off
		if resum && inBase {
			lying.Frames[0].SHA256 = sha256.Sum256(base[off : off+n])
		}
		fs, err := NewFrameSource(bytes.NewReader(base), lying)
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		var out bytes.Buffer
		got, err := Write(t.Context(), &out, src, WriteOptions{Reuse: fs})
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("a write reusing a %d-byte base (frame at %d+%d, %d copied)", len(base), off, n, fs.Copied())
		if fs.Copied() == 0 || bytes.Equal(base[off:off+n], want[fr.Offset:fr.Offset+fr.Length]) { // copied implies inBase
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%s differs from a plain write", what)
			}
			return
		}
		if tarBytes, err := dec.DecodeAll(out.Bytes(), nil); err != nil || !bytes.Equal(tarBytes, wantTar) {
			t.Fatalf("%s does not decompress to the plain write's tar bytes (%v)", what, err)
		}
		if _, err := ReadIndex(bytes.NewReader(out.Bytes()), got.ArchiveSize, got.Index); err != nil {
			t.Fatalf("%s: its index: %v", what, err)
		}
	})
}

// ignoredBit returns frame with one bit flipped that the decoder ignores
// (it decompresses the same), or nil if no bit is such.
func ignoredBit(dec *zstd.Decoder, frame []byte) []byte {
	plain, err := dec.DecodeAll(frame, nil)
	if err != nil {
		return nil
	}
	b := bytes.Clone(frame)
	for i := range b {
		for bit := range 8 {
			b[i] ^= 1 << bit
			if oneFrame(b, len(plain)) {
				if d, err := dec.DecodeAll(b, nil); err == nil && bytes.Equal(d, plain) {
					return b
				}
			}
			b[i] ^= 1 << bit
		}
	}
	return nil
}

// smallArchive writes a small tree and its archive (one frame) for the
// fuzzers' seeds.
func smallArchive(f *testing.F) (src string, data []byte, res Result) {
	src = f.TempDir()
	treetest.Small(f, src, 40, "valid")
	var buf bytes.Buffer
	res, err := Write(f.Context(), &buf, src, WriteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	return src, buf.Bytes(), res
}
