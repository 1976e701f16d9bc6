package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// wineNoSymlink reports whether err is Wine refusing to create a symlink
// (Wine 8 has none), which tests that need one take as a reason to skip.
func wineNoSymlink(err error) bool {
	return treetest.UnderWine() && errors.Is(err, errors.ErrUnsupported)
}

// skipWineNoSymlink skips t when err is Wine refusing to create a symlink.
func skipWineNoSymlink(t testing.TB, err error) {
	t.Helper()
	if wineNoSymlink(err) {
		t.Skipf("Wine cannot create symlinks, which this test needs: %v", err)
	}
}

// member is one entry of a hand-made archive.
type member struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func dirM(name string) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symlinkM(name, target string) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlinkM(name, target string) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

// tarBytes builds an uncompressed tar stream of members, with the end
// marker.
func tarBytes(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := m.hdr
		if hdr.ModTime.IsZero() && hdr.Typeflag != tar.TypeXGlobalHeader {
			hdr.ModTime = time.Unix(1_600_000_000, 0)
		}
		if hdr.Format == tar.FormatUnknown && hdr.Typeflag != tar.TypeXGlobalHeader {
			hdr.Format = tar.FormatPAX // keeps sub-second mtimes
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("tar header %q: %v", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatalf("tar body %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress zstd-compresses raw.
func compress(t testing.TB, raw []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func archiveOf(t testing.TB, members ...member) []byte {
	t.Helper()
	return compress(t, tarBytes(t, members...))
}

// rawHeader builds a ustar header block by hand, for member types and
// layouts archive/tar's writer refuses to produce.
func rawHeader(name string, typeflag byte, size int64) []byte {
	return header(name, typeflag, size, "ustar\x0000")
}

// gnuHeader is rawHeader with the GNU magic, which old-style GNU members
// (sparse files) need.
func gnuHeader(name string, typeflag byte, size int64) []byte {
	return header(name, typeflag, size, "ustar  \x00")
}

func header(name string, typeflag byte, size int64, magic string) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", 1_600_000_000))
	b[156] = typeflag
	copy(b[257:265], magic)
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// pad rounds data up to whole 512-byte blocks.
func pad(data []byte) []byte {
	return append(data, make([]byte, (512-len(data)%512)%512)...)
}

// paxRecords encodes PAX extended-header records.
func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n = len(fmt.Sprint(n)) + len(rec)
		}
		out = append(out, fmt.Sprint(n)+rec...)
	}
	return out
}

var endMarker = make([]byte, 1024)

// sandbox is a test directory holding the extraction destination and an
// "outside" sibling that no archive may touch.
type sandbox struct {
	base, dest, outside string
	before              map[string]string
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	s := &sandbox{base: t.TempDir()}
	s.dest = filepath.Join(s.base, "dest")
	s.outside = filepath.Join(s.base, "outside")
	for _, d := range []string{s.dest, s.outside, filepath.Join(s.outside, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.outside, "sentinel"), []byte("untouched\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1_500_000_000, 0)
	for _, p := range []string{filepath.Join(s.outside, "sentinel"), filepath.Join(s.outside, "sub"), s.outside} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// Extracted trees may hold read-only directories.
	t.Cleanup(func() { _ = fsutil.RemoveAll(s.dest) })
	s.before = snapshot(t, s.base, s.dest)
	return s
}

// snapshot describes every path under root except skip (and below it).
func snapshot(t testing.TB, root, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			// The sandbox's own mtime moves when the fuzz harness recreates
			// dest; anything created in it shows up as a new path anyway.
			return nil
		}
		if p == skip {
			info, err := os.Lstat(p)
			if err != nil {
				return err
			}
			out[p] = info.Mode().String() // dest itself must stay a directory
			return filepath.SkipDir
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d %d", info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(data)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOutside fails t if anything outside dest changed.
func (s *sandbox) checkOutside(t testing.TB) {
	t.Helper()
	after := snapshot(t, s.base, s.dest)
	for p, d := range s.before {
		if after[p] != d {
			t.Errorf("outside the destination, %s changed: %q -> %q", p, d, after[p])
		}
	}
	for p := range after {
		if _, ok := s.before[p]; !ok {
			t.Errorf("outside the destination, %s appeared", p)
		}
	}
}

// destNames lists what is under dest, slash-separated and sorted.
func (s *sandbox) destNames(t testing.TB) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(s.dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != s.dest {
			rel, _ := filepath.Rel(s.dest, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// isSentinel reports whether err wraps one of the errors Extract promises
// for bad input.
func isSentinel(err error) bool {
	return errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, tiercache.ErrUnsafeArchive) || errors.Is(err, tiercache.ErrLimitExceeded)
}

func errMentions(err error, name string) bool {
	return err != nil && strings.Contains(err.Error(), fmt.Sprintf("%q", name))
}

// noise returns n deterministic, poorly compressible bytes.
func noise(n int) []byte { return noiseSeed(n, 0) }

// noiseSeed is noise from a given seed, for distinct noisy files.
func noiseSeed(n int, seed byte) []byte {
	out := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{'n', seed}).Read(out)
	return out
}
