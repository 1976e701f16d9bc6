package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// hostileCase is an archive Extract must refuse.
type hostileCase struct {
	name string
	// archive builds the compressed archive; s gives the outside paths to
	// aim at.
	archive func(t testing.TB, s *sandbox) []byte
	opts    ExtractOptions
	want    error  // sentinel the error must wrap
	entry   string // member name the error must quote
}

func members(ms ...member) func(testing.TB, *sandbox) []byte {
	return func(t testing.TB, _ *sandbox) []byte { return archiveOf(t, ms...) }
}

// rawArchive builds an archive from hand-made blocks plus the end marker.
func rawArchive(blocks ...[]byte) func(testing.TB, *sandbox) []byte {
	return func(t testing.TB, _ *sandbox) []byte {
		raw := slices.Concat(append(blocks, endMarker)...)
		return compress(t, raw)
	}
}

func hostileCases() []hostileCase {
	withMode := func(m member, typeflag byte) member {
		m.hdr.Typeflag = typeflag
		return m
	}
	return []hostileCase{
		// Names that leave the destination.
		{name: "dotdot", archive: members(reg("../outside/pwned", "x")), want: tiercache.ErrUnsafeArchive, entry: "../outside/pwned"},
		{name: "nested dotdot", archive: members(dirM("a/"), reg("a/../../outside/pwned", "x")), want: tiercache.ErrUnsafeArchive, entry: "a/../../outside/pwned"},
		{name: "dotdot that cleans inside", archive: members(reg("a/../b", "x")), want: tiercache.ErrUnsafeArchive, entry: "a/../b"},
		{name: "dotdot directory", archive: members(dirM("../outside/newdir/")), want: tiercache.ErrUnsafeArchive, entry: "../outside/newdir/"},
		{name: "bare dotdot", archive: members(dirM("../")), want: tiercache.ErrUnsafeArchive, entry: "../"},
		{name: "absolute name", archive: func(t testing.TB, s *sandbox) []byte {
			// Slash-separated, as tar names are: C:/... on Windows.
			return archiveOf(t, reg(filepath.ToSlash(filepath.Join(s.outside, "pwned")), "x"))
		}, want: tiercache.ErrUnsafeArchive, entry: "/"},
		{name: "absolute root", archive: members(dirM("/")), want: tiercache.ErrUnsafeArchive, entry: "/"},
		{name: "empty name", archive: rawArchive(rawHeader("", tar.TypeReg, 0)), want: tiercache.ErrUnsafeArchive, entry: ""},
		{name: "file named dot", archive: members(reg(".", "x")), want: tiercache.ErrUnsafeArchive, entry: "."},

		// Writes through symlinks.
		{name: "write through symlink to sibling", archive: members(
			symlinkM("link", "../outside"),
			reg("link/pwned", "x"),
		), want: tiercache.ErrUnsafeArchive, entry: "link/pwned"},
		{name: "write through absolute symlink", archive: func(t testing.TB, s *sandbox) []byte {
			return archiveOf(t, symlinkM("abs", s.outside), reg("abs/pwned", "x"))
		}, want: tiercache.ErrUnsafeArchive, entry: "abs/pwned"},
		{name: "write through symlink chain", archive: members(
			symlinkM("a", "b"),
			symlinkM("b", "c/d"),
			dirM("c/"),
			symlinkM("c/d", "../../outside"),
			reg("a/pwned", "x"),
		), want: tiercache.ErrUnsafeArchive, entry: "a/pwned"},
		{name: "write through symlink to dir inside", archive: members(
			dirM("real/"),
			symlinkM("alias", "real"),
			reg("alias/f", "x"),
		), want: tiercache.ErrUnsafeArchive, entry: "alias/f"},
		{name: "mkdir through symlink", archive: members(
			symlinkM("link", "../outside"),
			dirM("link/newdir/"),
		), want: tiercache.ErrUnsafeArchive, entry: "link/newdir/"},
		{name: "symlink through symlink", archive: members(
			symlinkM("link", "../outside"),
			symlinkM("link/evil", "/etc/passwd"),
		), want: tiercache.ErrUnsafeArchive, entry: "link/evil"},
		{name: "file replacing symlink", archive: members(
			symlinkM("f", "../outside/sentinel"),
			reg("f", "overwritten"),
		), want: tiercache.ErrUnsafeArchive, entry: "f"},
		{name: "file replacing symlink via ./", archive: members(
			symlinkM("f", "../outside/sentinel"),
			reg("./f", "overwritten"),
		), want: tiercache.ErrUnsafeArchive, entry: "./f"},
		{name: "dir over symlink", archive: members(
			symlinkM("d", "../outside"),
			dirM("d/"),
		), want: tiercache.ErrUnsafeArchive, entry: "d/"},
		{name: "symlink replacing symlink", archive: members(
			symlinkM("s", "ok"),
			symlinkM("s", "../outside"),
		), want: tiercache.ErrUnsafeArchive, entry: "s"},

		// Hardlinks.
		{name: "hardlink to outside", archive: members(hardlinkM("h", "../outside/sentinel")), want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink to absolute", archive: func(t testing.TB, s *sandbox) []byte {
			return archiveOf(t, hardlinkM("h", filepath.Join(s.outside, "sentinel")))
		}, want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink to later file", archive: members(hardlinkM("h", "later"), reg("later", "x")), want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink to symlink", archive: members(
			symlinkM("s", "../outside/sentinel"),
			hardlinkM("h", "s"),
		), want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink to directory", archive: members(dirM("d/"), hardlinkM("h", "d")), want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink through symlinked parent", archive: members(
			dirM("d/"),
			reg("d/f", "x"),
			symlinkM("s", "d"),
			hardlinkM("h", "s/f"),
		), want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink through symlink to outside", archive: members(
			symlinkM("s", "../outside"),
			hardlinkM("h", "s/sentinel"),
		), want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink to itself", archive: members(hardlinkM("h", "h")), want: tiercache.ErrUnsafeArchive, entry: "h"},
		{name: "hardlink over existing file", archive: members(reg("a", "a"), reg("b", "b"), hardlinkM("b", "a")), want: tiercache.ErrUnsafeArchive, entry: "b"},

		// Types that are never extracted.
		{name: "char device", archive: members(withMode(reg("dev", ""), tar.TypeChar)), want: tiercache.ErrUnsafeArchive, entry: "dev"},
		{name: "block device", archive: members(withMode(reg("blk", ""), tar.TypeBlock)), want: tiercache.ErrUnsafeArchive, entry: "blk"},
		{name: "fifo", archive: members(withMode(reg("fifo", ""), tar.TypeFifo)), want: tiercache.ErrUnsafeArchive, entry: "fifo"},
		{name: "old GNU sparse", archive: rawArchive(gnuHeader("sparse", tar.TypeGNUSparse, 0)), want: tiercache.ErrUnsafeArchive, entry: "sparse"},
		{name: "PAX sparse 0.1", archive: rawArchive(
			rawHeader("PaxHeaders/sparse", tar.TypeXHeader, int64(len(paxRecords(
				"GNU.sparse.size", "5", "GNU.sparse.numblocks", "1", "GNU.sparse.map", "0,5", "GNU.sparse.name", "sparse01")))),
			pad(paxRecords("GNU.sparse.size", "5", "GNU.sparse.numblocks", "1", "GNU.sparse.map", "0,5", "GNU.sparse.name", "sparse01")),
			rawHeader("sparse-raw", tar.TypeReg, 5),
			pad([]byte("hello")),
		), want: tiercache.ErrUnsafeArchive, entry: "sparse01"},
		{name: "PAX sparse 1.0", archive: rawArchive(
			rawHeader("PaxHeaders/sparse", tar.TypeXHeader, int64(len(paxRecords(
				"GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.realsize", "5", "GNU.sparse.name", "sparse10")))),
			pad(paxRecords("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.realsize", "5", "GNU.sparse.name", "sparse10")),
			rawHeader("sparse-raw", tar.TypeReg, 512+5),
			pad([]byte("1\n0\n5\n")),
			pad([]byte("hello")),
		), want: tiercache.ErrUnsafeArchive, entry: "sparse10"},
		{name: "unknown type", archive: rawArchive(rawHeader("weird", 'Z', 0)), want: tiercache.ErrUnsafeArchive, entry: "weird"},
		{name: "contiguous file", archive: rawArchive(rawHeader("contig", tar.TypeCont, 0)), want: tiercache.ErrUnsafeArchive, entry: "contig"},
		{name: "PAX global header", archive: members(member{hdr: tar.Header{
			Typeflag: tar.TypeXGlobalHeader, Name: "global", PAXRecords: map[string]string{"comment": "hi"},
		}}), want: tiercache.ErrUnsafeArchive, entry: "global"},

		// Duplicates and collisions.
		{name: "duplicate file", archive: members(reg("a", "1"), reg("a", "2")), want: tiercache.ErrUnsafeArchive, entry: "a"},
		{name: "duplicate after cleaning", archive: members(reg("d/a", "1"), reg("./d//a", "2")), want: tiercache.ErrUnsafeArchive, entry: "./d//a"},
		{name: "duplicate directory", archive: members(dirM("d/"), dirM("d/")), want: tiercache.ErrUnsafeArchive, entry: "d/"},
		{name: "duplicate root", archive: members(dirM("./"), dirM(".")), want: tiercache.ErrUnsafeArchive, entry: "."},
		{name: "file over directory", archive: members(dirM("d/"), reg("d", "x")), want: tiercache.ErrUnsafeArchive, entry: "d"},
		{name: "file over implicit directory", archive: members(reg("d/x", "x"), reg("d", "x")), want: tiercache.ErrUnsafeArchive, entry: "d"},
		{name: "directory over file", archive: members(reg("d", "x"), dirM("d/")), want: tiercache.ErrUnsafeArchive, entry: "d/"},
		{name: "child of a file", archive: members(reg("f", "x"), reg("f/child", "y")), want: tiercache.ErrUnsafeArchive, entry: "f/child"},
		{name: "symlink over file", archive: members(reg("f", "x"), symlinkM("f", "../outside")), want: tiercache.ErrUnsafeArchive, entry: "f"},
		{name: "non-directory with trailing slash", archive: members(symlinkM("s/", "x")), want: tiercache.ErrUnsafeArchive, entry: "s/"},

		// Symlink targets.
		{name: "symlink with empty target", archive: members(symlinkM("s", "")), want: tiercache.ErrUnsafeArchive, entry: "s"},
		{name: "strict: absolute target", archive: members(symlinkM("s", "/etc")), opts: ExtractOptions{StrictSymlinks: true}, want: tiercache.ErrUnsafeArchive, entry: "s"},
		{name: "strict: climbing target", archive: members(dirM("a/"), symlinkM("a/s", "../../outside")), opts: ExtractOptions{StrictSymlinks: true}, want: tiercache.ErrUnsafeArchive, entry: "a/s"},
		{name: "strict: escape through another symlink", archive: members(
			dirM("a/"),
			symlinkM("a/up", ".."), // lexically inside: a/.. is the root
			symlinkM("x", "a/up/.."),
		), opts: ExtractOptions{StrictSymlinks: true}, want: tiercache.ErrUnsafeArchive, entry: "x"},
		{name: "strict: escape through a later symlink", archive: members(
			symlinkM("x", "b/.."), // lexically "."; b, extracted later, is "."
			symlinkM("b", "."),
		), opts: ExtractOptions{StrictSymlinks: true}, want: tiercache.ErrUnsafeArchive, entry: "x"},
		{name: "strict: symlink loop", archive: members(symlinkM("l1", "l2"), symlinkM("l2", "l1")),
			opts: ExtractOptions{StrictSymlinks: true}, want: tiercache.ErrUnsafeArchive, entry: "l1"},

		// Limits on names.
		{name: "name too long", archive: members(reg(strings.Repeat("d/", 2100)+"f", "x")), want: tiercache.ErrLimitExceeded, entry: "d/d/d/"},
		{name: "component too long", archive: members(reg(strings.Repeat("x", 256), "x")), want: tiercache.ErrLimitExceeded, entry: "xxxx"},
		{name: "symlink target too long", archive: members(symlinkM("s", strings.Repeat("t", 5000))), want: tiercache.ErrLimitExceeded, entry: "s"},
	}
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	testHostile(t, false)
}

// TestHostileArchivesInFrames runs the hostile cases again with each
// archive cut into many small frames that declare their sizes, as Write
// cuts its own, so that they go through the parallel decoder (see
// ExtractOptions.Decoders): it must refuse exactly what the streaming
// decoder's path refuses.
func TestHostileArchivesInFrames(t *testing.T) {
	testHostile(t, true)
}

func testHostile(t *testing.T, framed bool) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			data := c.archive(t, s)
			if framed {
				raw, err := decodeStream(data)
				if err != nil {
					t.Skipf("not a zstd stream to cut into frames (the case is about the stream itself): %v", err)
				}
				data = frameCut(t, raw, 1536)
			}
			_, err := Extract(t.Context(), bytes.NewReader(data), s.dest, c.opts)
			skipWineNoSymlink(t, err)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var ee *EntryError
			if !errors.As(err, &ee) || !strings.Contains(ee.Name, c.entry) || !strings.Contains(err.Error(), ee.Name[:min(len(ee.Name), 20)]) {
				t.Fatalf("error %q does not name member %q", err, c.entry)
			}
			s.checkOutside(t)
		})
	}
}

// TestHostileArchivesPassWithoutTheAttack checks the hostile cases are not
// refused by accident: the same shapes without the attack extract fine, and
// non-strict mode restores the symlinks that strict mode refuses.
func TestHostileArchivesPassWithoutTheAttack(t *testing.T) {
	cases := map[string][]member{
		"symlinks of any target": {
			symlinkM("abs", "/etc/passwd"),
			symlinkM("up", "../outside"),
			dirM("a/"),
			symlinkM("a/up", ".."),
			symlinkM("x", "a/up/.."),
			symlinkM("l1", "l2"),
			symlinkM("l2", "l1"),
		},
		"hardlinks inside": {
			dirM("d/"),
			reg("d/f", "x"),
			hardlinkM("h", "d/f"),
			hardlinkM("h2", "./h"),
		},
		"implicit then explicit dir": {reg("d/x", "x"), dirM("d/")},
		"root entry":                 {dirM("./"), reg("./a", "a")},
		"max-length names": {
			reg(strings.Repeat("n", 255), "x"),
			reg(strings.Repeat(strings.Repeat("d", 200)+"/", 20)+strings.Repeat("f", 76), "x"), // 4096 bytes
		},
	}
	for name, ms := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "max-length names" && treetest.UnderWine() {
				t.Skip("Wine maps paths onto the host's, and Linux's PATH_MAX (4096 bytes) is shorter than this tree's deepest path plus the temporary directory")
			}
			s := newSandbox(t)
			if _, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, ms...)), s.dest, ExtractOptions{}); err != nil {
				skipWineNoSymlink(t, err)
				t.Fatalf("Extract: %v", err)
			}
			s.checkOutside(t)
		})
	}
	t.Run("strict inside", func(t *testing.T) {
		s := newSandbox(t)
		ok := archiveOf(t, dirM("a/"), symlinkM("a/s", "../b"), symlinkM("c", "a/s/../a"))
		if _, err := Extract(t.Context(), bytes.NewReader(ok), s.dest, ExtractOptions{StrictSymlinks: true}); err != nil {
			skipWineNoSymlink(t, err)
			t.Fatalf("strict mode refused symlinks that stay inside: %v", err)
		}
		target, err := os.Readlink(filepath.Join(s.dest, "a", "s"))
		if err != nil || filepath.ToSlash(target) != "../b" {
			t.Fatalf("symlink a/s = %q, %v", target, err)
		}
	})
}

func TestExtractLimits(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		var ms []member
		for i := range 10 {
			ms = append(ms, reg(string(rune('a'+i)), "x"))
		}
		s := newSandbox(t)
		_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, ms...)), s.dest, ExtractOptions{MaxEntries: 5})
		if !errors.Is(err, tiercache.ErrLimitExceeded) || !errMentions(err, "f") {
			t.Fatalf("err = %v, want ErrLimitExceeded naming member f", err)
		}
		if names := s.destNames(t); len(names) != 5 {
			t.Fatalf("extracted %q, want exactly the first 5", names)
		}
	})
	t.Run("declared size", func(t *testing.T) {
		s := newSandbox(t)
		big := reg("big", strings.Repeat("x", 2<<20))
		_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, big)), s.dest, ExtractOptions{MaxBytes: 1 << 20})
		if !errors.Is(err, tiercache.ErrLimitExceeded) || !errMentions(err, "big") {
			t.Fatalf("err = %v, want ErrLimitExceeded naming big", err)
		}
		if names := s.destNames(t); len(names) != 0 {
			t.Fatalf("created %q before refusing", names)
		}
	})
	t.Run("sum of sizes", func(t *testing.T) {
		s := newSandbox(t)
		chunk := strings.Repeat("y", 600<<10)
		_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, reg("one", chunk), reg("two", chunk))), s.dest, ExtractOptions{MaxBytes: 1 << 20})
		if !errors.Is(err, tiercache.ErrLimitExceeded) || !errMentions(err, "two") {
			t.Fatalf("err = %v, want ErrLimitExceeded naming two", err)
		}
	})
	t.Run("decoder window", func(t *testing.T) {
		s := newSandbox(t)
		raw := tarBytes(t, reg("f", string(noise(4<<20))))
		data := compress(t, raw, zstd.WithWindowSize(64<<20), zstd.WithEncoderConcurrency(1))
		_, err := Extract(t.Context(), bytes.NewReader(data), s.dest, ExtractOptions{MaxDecoderMemory: 8 << 20})
		if !errors.Is(err, tiercache.ErrLimitExceeded) {
			t.Fatalf("err = %v, want ErrLimitExceeded", err)
		}
		// The same archive passes under the default ceiling.
		s2 := newSandbox(t)
		if _, err := Extract(t.Context(), bytes.NewReader(data), s2.dest, ExtractOptions{}); err != nil {
			t.Fatalf("default limits: %v", err)
		}
	})
	t.Run("metadata bomb", func(t *testing.T) {
		// Thousands of GNU long-name headers that never reach a member: the
		// tar reader swallows them, so only the stream allowance stops it.
		long := pad([]byte(strings.Repeat("n", 500)))
		var raw []byte
		for range 10_000 {
			raw = append(raw, rawHeader("././@LongLink", tar.TypeGNULongName, 500)...)
			raw = append(raw, long...)
		}
		raw = append(raw, endMarker...)
		s := newSandbox(t)
		_, err := Extract(t.Context(), bytes.NewReader(compress(t, raw)), s.dest, ExtractOptions{})
		if !errors.Is(err, tiercache.ErrLimitExceeded) {
			t.Fatalf("err = %v, want ErrLimitExceeded", err)
		}
	})
	t.Run("invalid options", func(t *testing.T) {
		for _, o := range []ExtractOptions{{MaxBytes: -1}, {MaxEntries: -1}, {MaxDecoderMemory: 100}} {
			s := newSandbox(t)
			if _, err := Extract(t.Context(), bytes.NewReader(nil), s.dest, o); !errors.Is(err, tiercache.ErrInvalidArgument) {
				t.Errorf("%+v: err = %v, want ErrInvalidArgument", o, err)
			}
		}
	})
}

// TestExtractWithTarInsecurePathSetting checks the GODEBUG setting under
// which archive/tar itself flags non-local names changes nothing: the
// member is still refused by name, and valid archives still extract.
func TestExtractWithTarInsecurePathSetting(t *testing.T) {
	t.Setenv("GODEBUG", "tarinsecurepath=0")
	s := newSandbox(t)
	_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, reg("../outside/pwned", "x"))), s.dest, ExtractOptions{})
	if !errors.Is(err, tiercache.ErrUnsafeArchive) || !errMentions(err, "../outside/pwned") {
		t.Fatalf("err = %v, want ErrUnsafeArchive naming the member", err)
	}
	s.checkOutside(t)
	s2 := newSandbox(t)
	if _, err := Extract(t.Context(), bytes.NewReader(validArchive(t)), s2.dest, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestExtractExtremeTimes checks mtimes far outside the int64-nanosecond
// range neither fail nor crash extraction.
func TestExtractExtremeTimes(t *testing.T) {
	var ms []member
	for i, tm := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1601, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Unix(-1, 999_999_999),
		time.Date(2500, 1, 1, 0, 0, 0, 5, time.UTC),
		time.Date(99999, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		f := reg(fmt.Sprintf("f%d", i), "x")
		f.hdr.ModTime = tm
		d := dirM(fmt.Sprintf("d%d/", i))
		d.hdr.ModTime = tm
		ms = append(ms, f, d)
		// Symlink mtimes are set on Unix only (see the package doc).
		if runtime.GOOS != "windows" {
			l := symlinkM(fmt.Sprintf("l%d", i), "x")
			l.hdr.ModTime = tm
			ms = append(ms, l)
		}
	}
	s := newSandbox(t)
	if _, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, ms...)), s.dest, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	info, err := os.Lstat(filepath.Join(s.dest, "l2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(-1, 999_999_999); !info.ModTime().Equal(want) {
		t.Errorf("symlink mtime %v, want %v", info.ModTime(), want)
	}
}

// decodeStream decompresses data whole, within the default decoder limit.
func decodeStream(data []byte) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxMemory(DefaultMaxDecoderMemory))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return io.ReadAll(dec)
}
