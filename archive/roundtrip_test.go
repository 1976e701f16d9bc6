//go:build unix

package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// countTree returns the member count and unique regular-file bytes Write
// should report for the tree at dir.
func countTree(t *testing.T, dir string) (files, size int64) {
	t.Helper()
	seen := map[fileID]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		files++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			id, _, _ := identity(info)
			if !seen[id] {
				seen[id] = true
				size += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, size
}

func writeFile(t *testing.T, dir string, opts WriteOptions) (string, Result) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "tree.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Write(t.Context(), f, dir, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name(), res
}

func fileDigest(t *testing.T, name string) (int64, string) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

func TestRoundTripFidelity(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 2000})
	name, wres := writeFile(t, src, WriteOptions{})

	files, size := countTree(t, src)
	if wres.Files != files || wres.Size != size {
		t.Errorf("Write result: %d files, %d bytes; tree has %d members, %d bytes", wres.Files, wres.Size, files, size)
	}
	n, sum := fileDigest(t, name)
	if wres.ArchiveSize != n || wres.SHA256 != sum {
		t.Errorf("Write result: size %d sha %s; the bytes written: size %d sha %s", wres.ArchiveSize, wres.SHA256, n, sum)
	}

	s := newSandbox(t)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	xres, err := Extract(t.Context(), f, s.dest, ExtractOptions{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	wres.Index = IndexInfo{} // Write's alone: Extract reads no index
	if xres != wres {
		t.Errorf("Extract result %+v, Write result %+v", xres, wres)
	}
	treetest.AssertEqual(t, src, s.dest)
	s.checkOutside(t)
}

func TestWriteDeterministic(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 300})
	for _, opts := range []WriteOptions{{}, {Concurrency: 1}, {Level: 19, Concurrency: 2}} {
		var a, b bytes.Buffer
		ra, err := Write(t.Context(), &a, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := Write(t.Context(), &b, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		if ra != rb || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%+v: two writes of one tree differ: %+v vs %+v", opts, ra, rb)
		}
	}
}

// TestWriteSameBytesAnyConcurrency: the "identical upload skipped" check
// compares digests made on different machines, so the archive of a tree
// must not depend on how many cores wrote it.
func TestWriteSameBytesAnyConcurrency(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 100})
	// Several frames (compressed in parallel, which must not change the
	// bytes); some compressible, some not.
	big := append(noise(4<<20), bytes.Repeat([]byte("package main // some text\n"), 1_300_000)...)
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var first []byte
	for _, c := range []int{1, 2, 3, 8} {
		var buf bytes.Buffer
		if _, err := Write(t.Context(), &buf, src, WriteOptions{Concurrency: c}); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = buf.Bytes()
			continue
		}
		if !bytes.Equal(first, buf.Bytes()) {
			t.Errorf("Concurrency %d: archive differs from Concurrency 1 (%d vs %d bytes)", c, buf.Len(), len(first))
		}
	}
}

func TestWriteLevelsRoundTrip(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 100})
	sizes := map[int]int64{}
	for _, level := range []int{1, 3, 9, 19} {
		var buf bytes.Buffer
		res, err := Write(t.Context(), &buf, src, WriteOptions{Level: level, Concurrency: 1})
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		sizes[level] = res.ArchiveSize
		s := newSandbox(t)
		if _, err := Extract(t.Context(), &buf, s.dest, ExtractOptions{}); err != nil {
			t.Fatalf("level %d: Extract: %v", level, err)
		}
		treetest.AssertEqual(t, src, s.dest)
	}
	if sizes[19] >= sizes[1] {
		t.Errorf("level 19 (%d bytes) does not compress better than level 1 (%d bytes)", sizes[19], sizes[1])
	}
}

func TestWriteInvalidArguments(t *testing.T) {
	src := t.TempDir()
	file := filepath.Join(src, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		dir  string
		opts WriteOptions
	}{
		"level too high":       {src, WriteOptions{Level: 23}},
		"negative level":       {src, WriteOptions{Level: -1}},
		"negative concurrency": {src, WriteOptions{Concurrency: -1}},
		"missing dir":          {filepath.Join(src, "missing"), WriteOptions{}},
		"file not dir":         {file, WriteOptions{}},
	}
	for name, c := range cases {
		if _, err := Write(t.Context(), io.Discard, c.dir, c.opts); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestWriteRefusesFIFOAndSkipsSockets(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A socket is skipped (it cannot be archived meaningfully).
	ln, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, src, WriteOptions{})
	if err != nil {
		t.Fatalf("Write with a socket: %v", err)
	}
	if res.Files != 1 {
		t.Errorf("Files = %d, want 1 (the socket skipped)", res.Files)
	}
	// A FIFO is refused, naming it.
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Write(t.Context(), io.Discard, src, WriteOptions{})
	if !errors.Is(err, tiercache.ErrInvalidArgument) || err == nil || !strings.Contains(err.Error(), filepath.Join(src, "fifo")+" is a FIFO") {
		t.Fatalf("Write with a FIFO: err = %v, want ErrInvalidArgument naming it", err)
	}
}

func TestWriteCancelled(t *testing.T) {
	src := t.TempDir()
	treetest.Small(t, src, 20, "x")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Write(ctx, io.Discard, src, WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// failingWriter fails after n bytes.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteReportsWriterError(t *testing.T) {
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 50})
	if _, err := Write(t.Context(), &failingWriter{n: 100}, src, WriteOptions{Concurrency: 1}); err == nil {
		t.Fatal("Write succeeded although its writer failed")
	}
}

func TestEmptyTreeRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, t.TempDir(), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 0 || res.Size != 0 {
		t.Errorf("empty tree: %+v", res)
	}
	s := newSandbox(t)
	if _, err := Extract(t.Context(), &buf, s.dest, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if names := s.destNames(t); len(names) != 0 {
		t.Errorf("extracted %q from an empty tree", names)
	}
}

func TestExtractCancelled(t *testing.T) {
	src := t.TempDir()
	treetest.Small(t, src, 20, "x")
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, src, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := newSandbox(t)
	if _, err := Extract(ctx, &buf, s.dest, ExtractOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestExtractReadOnlyTreeIsRemovable checks that what Extract leaves,
// read-only directories included, can be deleted again.
func TestExtractReadOnlyTreeIsRemovable(t *testing.T) {
	archive := archiveOf(t,
		member{hdr: dirM("ro/").hdr},
		reg("ro/f", "x"),
	)
	s := newSandbox(t)
	if _, err := Extract(t.Context(), bytes.NewReader(archive), s.dest, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(s.dest, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.RemoveAll(s.dest); err != nil {
		t.Fatal(err)
	}
}

func TestExtractMetadata(t *testing.T) {
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	suid := member{hdr: reg("bin/suid", "#!/bin/sh\n").hdr, body: "#!/bin/sh\n"}
	suid.hdr.Mode = 0o4755 | 0o2000
	suid.hdr.Uid, suid.hdr.Gid = 4242, 4242
	suid.hdr.ModTime = mtime
	sticky := dirM("tmp/")
	sticky.hdr.Mode = 0o1777
	late := dirM("late/") // listed after its contents
	late.hdr.Mode = 0o555
	late.hdr.ModTime = mtime
	archive := archiveOf(t,
		dirM("./"),
		suid,
		sticky,
		reg("implicit/deep/f", "f"),
		reg("late/x", "x"),
		late,
		reg(`..\..\backslash`, "b"),
	)
	s := newSandbox(t)
	if _, err := Extract(t.Context(), bytes.NewReader(archive), s.dest, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	s.checkOutside(t)
	stat := func(rel string) fs.FileInfo {
		t.Helper()
		info, err := os.Lstat(filepath.Join(s.dest, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	if m := stat("bin/suid").Mode(); m != 0o755 {
		t.Errorf("setuid/setgid file extracted with mode %v, want -rwxr-xr-x", m)
	}
	if st := stat("bin/suid").Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
		t.Errorf("owner restored: uid %d gid %d", st.Uid, st.Gid)
	}
	if !stat("bin/suid").ModTime().Equal(mtime) {
		t.Errorf("file mtime %v, want %v", stat("bin/suid").ModTime(), mtime)
	}
	if m := stat("tmp").Mode(); m != fs.ModeDir|0o777 {
		t.Errorf("sticky dir extracted with mode %v, want drwxrwxrwx", m)
	}
	if m := stat("implicit/deep").Mode(); m != fs.ModeDir|0o755 {
		t.Errorf("implicit dir mode %v, want drwxr-xr-x", m)
	}
	if info := stat("late"); info.Mode() != fs.ModeDir|0o555 || !info.ModTime().Equal(mtime) {
		t.Errorf("directory listed after its contents: mode %v mtime %v", info.Mode(), info.ModTime())
	}
	// On Unix a backslash is an ordinary byte: the name stays one file in dest.
	if info := stat(`..\..\backslash`); !info.Mode().IsRegular() {
		t.Errorf("backslash name not extracted literally: %v", info.Mode())
	}
}

// TestWriteSkipDigest: SkipDigest changes nothing but the empty digest.
func TestWriteSkipDigest(t *testing.T) {
	src := t.TempDir()
	treetest.Small(t, src, 30, "x")
	var with, without bytes.Buffer
	rw, err := Write(t.Context(), &with, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Write(t.Context(), &without, src, WriteOptions{SkipDigest: true})
	if err != nil {
		t.Fatal(err)
	}
	if rs.SHA256 != "" || rw.SHA256 == "" {
		t.Errorf("SHA256 %q with SkipDigest, %q without; want empty, then set", rs.SHA256, rw.SHA256)
	}
	rs.SHA256 = rw.SHA256
	if rs != rw || !bytes.Equal(with.Bytes(), without.Bytes()) {
		t.Errorf("SkipDigest changed the archive: %+v vs %+v", rs, rw)
	}
}

// TestExtractMtimeBeyond2262: an mtime past the int64-nanosecond range
// (after 2262) is restored as stored where the system call takes it (a
// file on Linux), else as the last time that range holds: never wrapped
// around into the past, as os.Root.Chtimes would (directories, and files
// off Linux).
func TestExtractMtimeBeyond2262(t *testing.T) {
	want := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range []member{reg("f", "x"), dirM("d/")} {
		m.hdr.ModTime = want
		s := newSandbox(t)
		if _, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, m)), s.dest, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
		info, err := os.Lstat(filepath.Join(s.dest, strings.TrimSuffix(m.hdr.Name, "/")))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.ModTime(); !got.Equal(want) && !got.Equal(nanoRange(want)) {
			t.Errorf("%s: mtime %v, want %v or %v", m.hdr.Name, got.UTC(), want, nanoRange(want).UTC())
		}
	}
}
