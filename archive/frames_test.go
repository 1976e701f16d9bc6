//go:build unix

package archive

import (
	"bytes"
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

// TestFramesAreIndependent: the stream is cut every frameSize bytes of
// input, in order, and each frame decodes on its own, which is what lets
// frames be compressed (and later decompressed) in parallel.
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

// TestGNUTarExtractsMultiFrameArchives: an archive of several frames is a
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
	if res.ArchiveSize < frameSize {
		t.Fatalf("archive of %d bytes: too small to span frames", res.ArchiveSize)
	}
	treetest.AssertEqual(t, src, gnuExtract(t, zstdBin, tarBin, name))
}
