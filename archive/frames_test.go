//go:build unix

package archive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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

// TestFrameCuts: a full frame ends at its last member boundary in the
// second half, at a boundary falling exactly on its end, or else at
// frameSize inside a member; the bytes after a cut carry over whole.
func TestFrameCuts(t *testing.T) {
	type piece struct {
		member string // "" for bytes of the member being written
		n      int
	}
	type cut struct {
		tarOff int64
		member string
		mid    bool
	}
	cases := map[string]struct {
		pieces []piece
		want   []cut
	}{
		"boundary in the second half": {
			[]piece{{"a", 3 << 20}, {"b", 2 << 20}},
			[]cut{{0, "a", false}, {3 << 20, "b", false}},
		},
		"boundary in the first half": {
			[]piece{{"a", 1 << 20}, {"b", 4 << 20}},
			[]cut{{0, "a", false}, {frameSize, "b", true}},
		},
		"last boundary wins": {
			[]piece{{"a", 2 << 20}, {"b", 1 << 20}, {"c", 1 << 19}, {"d", 2 << 20}},
			[]cut{{0, "a", false}, {(3 << 20) + (1 << 19), "d", false}},
		},
		"boundary at the end": {
			[]piece{{"a", frameSize}, {"b", 10}},
			[]cut{{0, "a", false}, {frameSize, "b", false}},
		},
		"member of three frames": {
			[]piece{{"a", 100}, {"big", 3 * frameSize}, {"z", 10}},
			[]cut{{0, "a", false}, {frameSize, "big", true}, {2 * frameSize, "big", true}, {3 * frameSize, "big", true}},
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
			for i, p := range c.pieces {
				if p.member != "" {
					fw.memberStart(p.member)
				}
				chunk := bytes.Repeat([]byte{byte(i)}, p.n)
				in = append(in, chunk...)
				if _, err := fw.Write(chunk); err != nil {
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
