package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// validArchive writes a small real tree.
func validArchive(t testing.TB) []byte {
	t.Helper()
	src := t.TempDir()
	treetest.Small(t, src, 40, "valid")
	// Fixed mtimes, so the archive's bytes, and which flips of them
	// TestExtractFlippedByte makes, are the same from run to run.
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456700, time.UTC)
	err := filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, src, WriteOptions{Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func extractBytes(t *testing.T, data []byte, opts ExtractOptions) (Result, *sandbox, error) {
	t.Helper()
	s := newSandbox(t)
	res, err := Extract(t.Context(), bytes.NewReader(data), s.dest, opts)
	s.checkOutside(t)
	return res, s, err
}

func TestExtractResultCoversInput(t *testing.T) {
	data := validArchive(t)
	// A skippable frame after the archive is legal zstd: it must be read
	// and counted too, so the digest covers the whole object.
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'p', 'a', 'd', '!'}
	for name, input := range map[string][]byte{"plain": data, "with skippable frame": append(bytes.Clone(data), skippable...)} {
		t.Run(name, func(t *testing.T) {
			res, s, err := extractBytes(t, input, ExtractOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(input)
			if res.ArchiveSize != int64(len(input)) || res.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("result %+v does not describe the %d input bytes", res, len(input))
			}
			if res.Files != 40+2+4 { // files, MARKER and COUNT, 4 dirs
				t.Errorf("Files = %d, want 46", res.Files)
			}
			if tag, err := treetest.CheckSmall(s.dest); err != nil || tag != "valid" {
				t.Errorf("extracted tree: %q, %v", tag, err)
			}
		})
	}
}

func TestExtractTruncated(t *testing.T) {
	data := validArchive(t)
	for _, n := range []int{0, 1, 4, 13, len(data) / 3, len(data) / 2, len(data) - 5, len(data) - 4, len(data) - 1} {
		_, _, err := extractBytes(t, data[:n], ExtractOptions{})
		if !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("cut at %d of %d: err = %v, want ErrIntegrity", n, len(data), err)
		}
	}
}

// TestExtractFlippedByte flips bytes across a valid archive. Each flip must
// fail with a sentinel error, except a flip in bits the decoder never uses
// (zstd has a few, such as table padding): then the tree must come out
// exactly as stored, and the reported digest must differ from the
// original's, so the caller's digest check still rejects the object.
func TestExtractFlippedByte(t *testing.T) {
	data := validArchive(t)
	want := sha256.Sum256(data)
	for i := 0; i < len(data); i += max(1, len(data)/40) {
		bad := bytes.Clone(data)
		bad[i] ^= 0x5a
		res, s, err := extractBytes(t, bad, ExtractOptions{})
		switch {
		case err == nil:
			if res.SHA256 == hex.EncodeToString(want[:]) {
				t.Errorf("flipped byte %d: digest unchanged", i)
			}
			if tag, err := treetest.CheckSmall(s.dest); err != nil || tag != "valid" {
				t.Errorf("flipped byte %d: accepted, and the tree is wrong: %q, %v", i, tag, err)
			}
		case i >= 16 && !errors.Is(err, tiercache.ErrIntegrity):
			t.Errorf("flipped byte %d: err = %v, want ErrIntegrity", i, err)
		case !isSentinel(err):
			// A flip in the frame header may also claim a huge window.
			t.Errorf("flipped byte %d: err = %v, want a sentinel", i, err)
		}
	}
}

func TestExtractGarbage(t *testing.T) {
	inputs := map[string][]byte{
		"random":            noise(4096),
		"uncompressed tar":  tarBytes(t, reg("a", "a")),
		"zstd of non-tar":   compress(t, []byte(strings.Repeat("not a tar stream\n", 200))),
		"zstd of nothing":   compress(t, nil),
		"trailing garbage":  append(validArchive(t), "garbage"...),
		"zstd magic only":   {0x28, 0xb5, 0x2f, 0xfd},
		"zero block only":   compress(t, make([]byte, 512)),
		"zero then nonzero": compress(t, append(make([]byte, 512), rawHeader("x", tar.TypeReg, 0)...)),
	}
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			if _, _, err := extractBytes(t, input, ExtractOptions{}); !errors.Is(err, tiercache.ErrIntegrity) {
				t.Fatalf("err = %v, want ErrIntegrity", err)
			}
		})
	}
}

// TestExtractEndMarker covers what zstd cannot see: a tar stream that
// stops cleanly at a block boundary, and what follows the end marker.
func TestExtractEndMarker(t *testing.T) {
	full := tarBytes(t, reg("a", "aaa"), reg("b", "bbb"))
	body := full[:len(full)-1024] // everything but the end marker
	cases := []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"no end marker", body, false},
		{"cut after first member", body[:1024], false},
		{"one zero block", append(bytes.Clone(body), make([]byte, 512)...), false},
		{"end marker", full, true},
		{"GNU tar record padding", append(bytes.Clone(full), make([]byte, 10240-len(full)%10240)...), true},
		{"data after end marker", append(bytes.Clone(full), append(make([]byte, 512), 'x')...), false},
		{"member after end marker", append(bytes.Clone(full), tarBytes(t, reg("c", "c"))...), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, s, err := extractBytes(t, compress(t, c.raw), ExtractOptions{})
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if names := s.destNames(t); strings.Join(names, ",") != "a,b" {
					t.Fatalf("extracted %q", names)
				}
				return
			}
			if !errors.Is(err, tiercache.ErrIntegrity) {
				t.Fatalf("err = %v, want ErrIntegrity", err)
			}
		})
	}
}

// flakyReader returns its data, then fails.
type flakyReader struct {
	r   io.Reader
	err error
}

func (f *flakyReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestExtractReaderError(t *testing.T) {
	data := validArchive(t)
	reset := errors.New("connection reset by peer")
	s := newSandbox(t)
	_, err := Extract(t.Context(), &flakyReader{r: bytes.NewReader(data[:len(data)/2]), err: reset}, s.dest, ExtractOptions{})
	if !errors.Is(err, reset) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	if errors.Is(err, tiercache.ErrIntegrity) {
		t.Fatalf("a transport failure reported as an integrity failure: %v", err)
	}
}

func TestExtractDestination(t *testing.T) {
	data := validArchive(t)
	base := t.TempDir()
	nonEmpty := filepath.Join(base, "nonempty")
	if err := os.MkdirAll(filepath.Join(nonEmpty, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{nonEmpty, file, filepath.Join(base, "missing")} {
		if _, err := Extract(t.Context(), bytes.NewReader(data), dest, ExtractOptions{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", dest, err)
		}
	}
	if ents, _ := os.ReadDir(nonEmpty); len(ents) != 1 {
		t.Errorf("non-empty destination was modified: %v", ents)
	}
}

// zeroReader yields n zero bytes.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n))
	clear(p[:k])
	z.n -= int64(k)
	return k, nil
}

// TestDecompressionBomb streams 2 GiB of zeros through the encoder (a few
// hundred KiB compressed) and checks a small MaxBytes stops extraction
// before anything is written.
func TestDecompressionBomb(t *testing.T) {
	const bombSize = 2 << 30
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(enc)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bomb", Mode: 0o644, Size: bombSize}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyBuffer(tw, &zeroReader{n: bombSize}, make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes compressed; expected a small input", buf.Len())
	}
	_, s, err := extractBytes(t, buf.Bytes(), ExtractOptions{MaxBytes: 64 << 20})
	if !errors.Is(err, tiercache.ErrLimitExceeded) || !errMentions(err, "bomb") {
		t.Fatalf("err = %v, want ErrLimitExceeded naming bomb", err)
	}
	if names := s.destNames(t); len(names) != 0 {
		t.Fatalf("bomb left %q", names)
	}

	// Many files each under the limit add up to a bomb too.
	var many bytes.Buffer
	enc, err = zstd.NewWriter(&many, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	tw = tar.NewWriter(enc)
	for i := range 64 {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "part" + string(rune('A'+i)), Mode: 0o644, Size: 8 << 20}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, &zeroReader{n: 8 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	res, s, err := extractBytes(t, many.Bytes(), ExtractOptions{MaxBytes: 20 << 20})
	if !errors.Is(err, tiercache.ErrLimitExceeded) || !errMentions(err, "partC") {
		t.Fatalf("err = %v (%+v), want ErrLimitExceeded naming partC", err, res)
	}
	if names := s.destNames(t); len(names) != 2 {
		t.Fatalf("extracted %q, want the two parts within the limit", names)
	}
}
