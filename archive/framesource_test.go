package archive

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// reuseTree writes a tree of about 30 MiB, half of it compressible, so
// that it spans several frames.
func reuseTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "tree")
	for i := range 300 {
		size := 4<<10 + (i*7919)%(200<<10)
		data := noiseSeed(size, byte(i))
		if i%2 == 0 {
			data = bytes.Repeat([]byte(fmt.Sprintf("line %d of a compressible file\n", i)), size/32+1)
		}
		putFile(t, filepath.Join(src, fmt.Sprintf("d%02d/f%03d", i%9, i)), data)
	}
	return src
}

func putFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeReusing writes src's archive with frames offered from base (an
// archive and its index), and returns the bytes and the frames copied.
func writeReusing(t *testing.T, src string, base []byte, idx Index, level int) ([]byte, int64) {
	t.Helper()
	fs, err := NewFrameSource(bytes.NewReader(base), idx)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, src, WriteOptions{Reuse: fs, Level: level, Concurrency: 2}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), fs.Copied()
}

// TestFrameSourceCopiesUnchangedFrames: after a small change, a write
// offered the earlier archive copies all but the changed frames, and its
// bytes are those of a write without it; a renamed copy of the same tree
// copies every frame.
func TestFrameSourceCopiesUnchangedFrames(t *testing.T) {
	src := reuseTree(t)
	base, _, idx := archiveIndex(t, src, 2)
	if len(idx.Frames) < 3 {
		t.Fatalf("%d frames: too few", len(idx.Frames))
	}
	got, copied := writeReusing(t, src, base, idx, 0)
	if !bytes.Equal(got, base) || copied != int64(len(idx.Frames)) {
		t.Fatalf("same tree: %d of %d frames copied, equal bytes %v", copied, len(idx.Frames), bytes.Equal(got, base))
	}
	putFile(t, filepath.Join(src, "d04", "f040"), []byte("changed\n"))
	putFile(t, filepath.Join(src, "d04", "new"), noiseSeed(300<<10, 9))
	want, _, widx := archiveIndex(t, src, 2)
	got, copied = writeReusing(t, src, base, idx, 0)
	if !bytes.Equal(got, want) {
		t.Fatal("a write copying frames differs from a write compressing them all")
	}
	if copied == 0 || copied >= int64(len(widx.Frames)) {
		t.Fatalf("%d of %d frames copied after a change to one directory", copied, len(widx.Frames))
	}
	t.Logf("%d of %d frames copied", copied, len(widx.Frames))
}

// TestFrameSourceRefusesBadFrames: frames of the base that are damaged,
// lie about their content or are not one frame are compressed instead,
// so the archive is still that of the tree.
func TestFrameSourceRefusesBadFrames(t *testing.T) {
	src := reuseTree(t)
	base, _, idx := archiveIndex(t, src, 2)
	n := int64(len(idx.Frames))

	// A byte flipped in the file: that frame fails its digest.
	flipped := bytes.Clone(base)
	flipped[idx.Frames[1].Offset+idx.Frames[1].Length/2] ^= 1
	got, copied := writeReusing(t, src, flipped, idx, 0)
	if !bytes.Equal(got, base) || copied != n-1 {
		t.Errorf("flipped byte: %d of %d frames copied, equal bytes %v", copied, n, bytes.Equal(got, base))
	}

	// Frame 0 replaced by a frame of the same length holding other tar
	// bytes, its digest in the index: it decompresses to something else.
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	f0 := idx.Frames[0]
	other, err := dec.DecodeAll(base[f0.Offset:f0.Offset+f0.Length], nil)
	if err != nil {
		t.Fatal(err)
	}
	other[len(other)/2] ^= 1
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := enc.EncodeAll(other, nil)
	lying := Index{Frames: append([]IndexFrame(nil), idx.Frames...)}
	lying.Frames[0].Offset, lying.Frames[0].Length, lying.Frames[0].SHA256 = int64(len(base)), int64(len(forged)), sha256.Sum256(forged)
	got, copied = writeReusing(t, src, append(bytes.Clone(base), forged...), lying, 0)
	if !bytes.Equal(got, base) || copied != n-1 {
		t.Errorf("forged frame: %d of %d frames copied, equal bytes %v", copied, n, bytes.Equal(got, base))
	}

	// A frame followed by a skippable frame, its digest in the index:
	// decoders would accept it, but it is not one frame.
	padded := append(bytes.Clone(base[f0.Offset:f0.Offset+f0.Length]), 0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 'h', 'i')
	odd := Index{Frames: []IndexFrame{f0}}
	odd.Frames[0].Offset, odd.Frames[0].Length = 0, int64(len(padded))
	odd.Frames[0].SHA256 = sha256.Sum256(padded)
	_, copied = writeReusing(t, src, padded, odd, 0)
	if copied != 0 {
		t.Errorf("a frame with a skippable frame after it was copied")
	}
	if oneFrame(padded, int(f0.TarLength)) || !oneFrame(padded[:f0.Length], int(f0.TarLength)) || oneFrame(padded[:f0.Length-1], int(f0.TarLength)) {
		t.Error("oneFrame misjudges a frame, a frame with more after it, or a cut one")
	}
}

// TestFrameSourceOtherLevel: frames of a base written at another level
// are copied as they are, and the archive still restores the tree.
func TestFrameSourceOtherLevel(t *testing.T) {
	src := reuseTree(t)
	var b bytes.Buffer
	res, err := Write(t.Context(), &b, src, WriteOptions{Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ReadIndex(bytes.NewReader(b.Bytes()), res.ArchiveSize, res.Index)
	if err != nil {
		t.Fatal(err)
	}
	got, copied := writeReusing(t, src, b.Bytes(), idx, 3)
	if copied != int64(len(idx.Frames)) {
		t.Fatalf("%d of %d frames copied", copied, len(idx.Frames))
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	x, err := dec.DecodeAll(got, nil)
	if err != nil {
		t.Fatal(err)
	}
	y, err := dec.DecodeAll(b.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatal("the archive copying a level-1 base's frames holds other tar bytes")
	}
	if _, err := Extract(t.Context(), bytes.NewReader(got), t.TempDir(), ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
}
