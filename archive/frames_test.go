//go:build unix

package archive

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache/internal/treetest"
)

// frameRecorder keeps each Write as one piece: the frameWriter writes one
// whole frame per call.
type frameRecorder struct{ frames [][]byte }

func (r *frameRecorder) Write(p []byte) (int, error) {
	r.frames = append(r.frames, bytes.Clone(p))
	return len(p), nil
}

// TestFramesAreIndependent: with no member boundaries to cut at, the
// stream is cut every frameSize bytes of input, in order, and each frame
// decodes on its own, which is what lets frames be compressed (and later
// decompressed) in parallel.
func TestFramesAreIndependent(t *testing.T) {
	in := append(bytes.Repeat([]byte("some text that compresses well\n"), 3*frameSize/31), noise(frameSize/2)...)
	for _, workers := range []int{1, 2, 5} {
		rec := &frameRecorder{}
		fw, err := newFrameWriter(rec, zstd.SpeedDefault, workers)
		if err != nil {
			t.Fatal(err)
		}
		// Odd-sized writes, so frame boundaries fall inside them.
		for rest := in; len(rest) > 0; {
			n := min(len(rest), 777_777)
			if _, err := fw.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		want := (len(in) + frameSize - 1) / frameSize
		if len(rec.frames) != want {
			t.Fatalf("workers %d: %d frames written, want %d", workers, len(rec.frames), want)
		}
		dec, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range rec.frames {
			got, err := dec.DecodeAll(f, nil)
			if err != nil {
				t.Fatalf("workers %d: frame %d alone: %v", workers, i, err)
			}
			end := min((i+1)*frameSize, len(in))
			if !bytes.Equal(got, in[i*frameSize:end]) {
				t.Fatalf("workers %d: frame %d holds %d bytes that are not input[%d:%d]", workers, i, len(got), i*frameSize, end)
			}
		}
		dec.Close()
	}
}

// TestFramesEmptyStream: no input still makes a valid (empty) zstd stream.
func TestFramesEmptyStream(t *testing.T) {
	var buf bytes.Buffer
	fw, err := newFrameWriter(&buf, zstd.SpeedDefault, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err := dec.DecodeAll(buf.Bytes(), nil)
	if err != nil || len(got) != 0 || buf.Len() == 0 {
		t.Fatalf("empty stream: %d bytes decoding to %d, %v; want a frame holding nothing", buf.Len(), len(got), err)
	}
}

// TestFramesWriteErrorStops: an error of the output ends the stream with
// that error; Write stops accepting input rather than compressing on.
func TestFramesWriteErrorStops(t *testing.T) {
	fw, err := newFrameWriter(&failingWriter{}, zstd.SpeedDefault, 1)
	if err != nil {
		t.Fatal(err)
	}
	chunk := noise(frameSize)
	var werr error
	for range 4 {
		if _, werr = fw.Write(chunk); werr != nil {
			break
		}
	}
	if werr == nil || werr.Error() != "disk full" {
		t.Fatalf("Write after the output failed: %v, want its error", werr)
	}
	if err := fw.Close(); err != werr {
		t.Fatalf("Close: %v, want the output's error", err)
	}
}

// TestGNUTarExtractsMultiFrameArchives: an archive of several frames,
// some of them cut inside a member, with its index frame at the end, is a
// plain .tar.zst to the reference tools.
func TestGNUTarExtractsMultiFrameArchives(t *testing.T) {
	zstdBin, tarBin := needTools(t)
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 50})
	big := append(noise(frameSize), bytes.Repeat([]byte("package main // text\n"), 2*frameSize/21)...)
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	name, res := writeFile(t, src, WriteOptions{})
	if res.ArchiveSize < frameSize || res.Index.Length == 0 {
		t.Fatalf("archive of %d bytes, index %+v: too small to span frames, or no index", res.ArchiveSize, res.Index)
	}
	treetest.AssertEqual(t, src, gnuExtract(t, zstdBin, tarBin, name))
}

// fill returns n bytes of one repeated value that make the boundary
// after a member named name holding them a candidate (loud) or not,
// whatever the gap since the last one.
func fill(name string, n int, loud bool) []byte {
	for v := range 256 {
		b := bytes.Repeat([]byte{byte(v)}, n)
		if candidateAfter(crc32.Update(crc32.Checksum([]byte(name), castagnoli), castagnoli, b), int64(n), minGap) == loud {
			return b
		}
	}
	panic(fmt.Sprintf("no byte value makes %d bytes loud=%v", n, loud))
}

// TestCandidateAfter: no candidate closer than minGap to the last; a
// member of meanFrame-minGap bytes always is one; a smaller one is with a
// chance in proportion to its size.
func TestCandidateAfter(t *testing.T) {
	if candidateAfter(0, 100, minGap-1) || candidateAfter(0, 0, frameSize) {
		t.Fatal("a candidate within minGap of the last, or after an empty member")
	}
	if !candidateAfter(^uint32(0), meanFrame-minGap, minGap) {
		t.Fatal("a member of meanFrame-minGap bytes is not a candidate")
	}
	const tries = 1 << 16
	for _, n := range []int64{512, 64 << 10, 1 << 20} {
		hits := 0
		for i := range tries {
			if candidateAfter(crc32.Checksum(fmt.Appendf(nil, "member %d", i), castagnoli), n, minGap) {
				hits++
			}
		}
		want := float64(tries) * float64(n) / (meanFrame - minGap)
		if f := float64(hits); f < want*0.8-8 || f > want*1.2+8 {
			t.Errorf("members of %d bytes: %d candidates in %d, want about %.0f", n, hits, tries, want)
		}
	}
}

// TestFrameCuts: a frame ends at a candidate; a big member starts a frame
// and ends one; a full frame with no candidate ends at its last member
// boundary in its last cutSpan bytes, or else at frameSize inside a
// member; the bytes after a cut carry over whole.
func TestFrameCuts(t *testing.T) {
	type piece struct {
		member string // "" for bytes of the member being written
		data   []byte
	}
	type cut struct {
		tarOff int64
		member string
		mid    bool
	}
	const mi = 1 << 20
	cases := map[string]struct {
		pieces []piece
		want   []cut
	}{
		"candidate": {
			[]piece{{"a", fill("a", 2*mi, true)}, {"b", fill("b", mi, false)}},
			[]cut{{0, "a", false}, {2 * mi, "b", false}},
		},
		"too close to the last candidate": {
			[]piece{{"a", fill("a", mi/2, true)}, {"b", fill("b", mi, false)}},
			[]cut{{0, "a", false}},
		},
		"full frame, boundary in its last cutSpan": {
			[]piece{{"a", fill("a", 5*mi/2, false)}, {"b", fill("b", 23*mi/8, false)}, {"c", fill("c", 23*mi/8, false)}},
			[]cut{{0, "a", false}, {43 * mi / 8, "c", false}},
		},
		"full frame, boundary before its last cutSpan": {
			[]piece{{"a", fill("a", 11*mi/4, false)}, {"b", fill("b", 17*mi/8, false)}, {"c", noise(bigMember - 1)}},
			[]cut{{0, "a", false}, {frameSize, "c", true}},
		},
		"boundary at the end": {
			[]piece{{"a", fill("a", 11*mi/4, false)}, {"b", fill("b", 11*mi/4, false)}, {"c", fill("c", 5*mi/2, false)}, {"d", fill("d", 10, false)}},
			[]cut{{0, "a", false}, {frameSize, "d", false}},
		},
		"big member": {
			[]piece{{"a", fill("a", 100, false)}, {"big", noise(2*frameSize + mi)}, {"z", fill("z", 10, false)}},
			[]cut{{0, "a", false}, {100, "big", false}, {100 + frameSize, "big", true}, {100 + 2*frameSize, "big", true}, {100 + 2*frameSize + mi, "z", false}},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			fw, err := newFrameWriter(&out, zstd.SpeedFastest, 2)
			if err != nil {
				t.Fatal(err)
			}
			var in []byte
			for _, p := range c.pieces {
				if p.member != "" {
					fw.memberStart(p.member, int64(len(p.data)))
					fw.dataStart()
				}
				in = append(in, p.data...)
				if _, err := fw.Write(p.data); err != nil {
					t.Fatal(err)
				}
			}
			if err := fw.Close(); err != nil {
				t.Fatal(err)
			}
			var got []cut
			for _, f := range fw.frames {
				got = append(got, cut{f.TarOffset, f.Member, f.MidMember})
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("frames %v, want %v", got, c.want)
			}
			dec, err := zstd.NewReader(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			if all, err := dec.DecodeAll(out.Bytes(), nil); err != nil || !bytes.Equal(all, in) {
				t.Fatalf("the frames decode to %d bytes, %v; want the %d written", len(all), err, len(in))
			}
		})
	}
}

// TestFramesResync: a change to a tree changes only the frames around
// it; the rest of the archive is the same frames, byte for byte, which is
// what lets an upload copy them from the earlier archive.
func TestFramesResync(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		size := 1<<10 + (i*7919)%(200<<10)
		write(fmt.Sprintf("d%02d/f%03d", i%12, i), noiseSeed(size, byte(i)))
	}
	write("d05/big", noiseSeed(12<<20, 1))
	frames := func() map[[32]byte]bool {
		_, _, idx := archiveIndex(t, src, 2)
		set := map[[32]byte]bool{}
		for _, f := range idx.Frames {
			set[f.SHA256] = true
		}
		return set
	}
	prev := frames()
	t.Logf("%d frames", len(prev))
	if len(prev) < 8 {
		t.Fatalf("%d frames: too few to show resynchronisation", len(prev))
	}
	changes := []struct {
		name   string
		change func()
		most   int // new frames allowed: the change's and its directory's
	}{
		{"insert a directory", func() {
			for i := range 5 {
				write(fmt.Sprintf("d03/new/n%d", i), noiseSeed(200<<10, byte(100+i)))
			}
		}, 3},
		{"delete a file", func() {
			if err := os.Remove(filepath.Join(src, "d07", "f151")); err != nil {
				t.Fatal(err)
			}
		}, 3},
		{"modify a file", func() { write("d09/f189", noiseSeed(50<<10, 200)) }, 2},
		{"modify a big file", func() {
			b := noiseSeed(12<<20, 1)
			b[9<<20] ^= 1
			write("d05/big", b)
		}, 3},
	}
	for _, c := range changes {
		c.change()
		next := frames()
		fresh := 0
		for s := range next {
			if !prev[s] {
				fresh++
			}
		}
		t.Logf("%s: %d of %d frames new", c.name, fresh, len(next))
		if fresh > c.most {
			t.Errorf("%s: %d of %d frames are new, want at most %d", c.name, fresh, len(next), c.most)
		}
		prev = next
	}
}

// TestIndexPayloadBoundary: the frame writer keeps an index exactly as
// long as ParseIndex accepts its payload (header included), and one at
// the limit reads back.
func TestIndexPayloadBoundary(t *testing.T) {
	name := strings.Repeat("m", 4000) // shared by every record
	for _, over := range []bool{false, true} {
		fw := &frameWriter{}
		budget := maxIndexPayload - indexHeaderSize
		if over {
			budget++
		}
		var off int64
		for budget > 0 {
			n := min(len(name), budget-indexRecordFixed)
			if budget-indexRecordSize(name[:n]) < indexRecordFixed+1 && budget-indexRecordSize(name[:n]) > 0 {
				n -= indexRecordFixed + 1 // leave room for a last record
			}
			fw.record(IndexFrame{Offset: off * 1024, Length: 1024, TarOffset: off * 1024, TarLength: 1024, Member: name[:n]})
			budget -= indexRecordSize(name[:n])
			off++
		}
		if fw.noIndex != over {
			t.Fatalf("over %v: noIndex %v at a payload of %d bytes", over, fw.noIndex, indexHeaderSize+fw.idxSize)
		}
		if over {
			continue
		}
		fw.written, fw.tarOff = off*1024, off*1024
		var buf bytes.Buffer
		info, err := writeIndex(&hashWriter{w: &buf}, fw)
		if err != nil || info.Length == 0 {
			t.Fatalf("writeIndex: %+v, %v", info, err)
		}
		info.Offset = fw.written
		b := append(make([]byte, fw.written), buf.Bytes()...)
		if _, err := ReadIndex(bytes.NewReader(b), int64(len(b)), info); err != nil {
			t.Errorf("an index at the payload limit does not read back: %v", err)
		}
	}
}
