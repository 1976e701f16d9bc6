package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestHardlinksRoundTrip: on every platform (Windows included, where a
// file's identity needs an open handle), names of one file in the tree
// are stored as one regular file and hardlink members naming it, and
// come back as names of one file, read-only ones included.
func TestHardlinksRoundTrip(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a", "first"), []byte("shared"), 0o644))
	must(os.Link(filepath.Join(src, "a", "first"), filepath.Join(src, "a", "sub", "second")))
	must(os.Link(filepath.Join(src, "a", "first"), filepath.Join(src, "z-third")))
	must(os.WriteFile(filepath.Join(src, "ro"), []byte("read-only"), 0o444))
	must(os.Link(filepath.Join(src, "ro"), filepath.Join(src, "ro-too")))
	must(os.WriteFile(filepath.Join(src, "alone"), []byte("shared"), 0o644))

	var buf bytes.Buffer
	wres, err := Write(t.Context(), &buf, src, WriteOptions{})
	must(err)
	if want := int64(len("shared") + len("read-only") + len("shared")); wres.Size != want {
		t.Errorf("Write counted %d bytes of files, want %d (each file once)", wres.Size, want)
	}

	dec, err := zstd.NewReader(bytes.NewReader(buf.Bytes()))
	must(err)
	defer dec.Close()
	types := map[string]byte{}
	links := map[string]string{}
	tr := tar.NewReader(dec)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(err)
		types[hdr.Name] = hdr.Typeflag
		if hdr.Typeflag == tar.TypeLink {
			links[hdr.Name] = hdr.Linkname
		}
	}
	for name, want := range map[string]byte{
		"a/first": tar.TypeReg, "a/sub/second": tar.TypeLink, "z-third": tar.TypeLink,
		"ro": tar.TypeReg, "ro-too": tar.TypeLink, "alone": tar.TypeReg,
	} {
		if types[name] != want {
			t.Errorf("%s stored as type %q, want %q", name, types[name], want)
		}
	}
	for name, want := range map[string]string{"a/sub/second": "a/first", "z-third": "a/first", "ro-too": "ro"} {
		if links[name] != want {
			t.Errorf("%s links to %q, want %q", name, links[name], want)
		}
	}

	s := newSandbox(t)
	xres, err := Extract(t.Context(), bytes.NewReader(buf.Bytes()), s.dest, ExtractOptions{})
	must(err)
	wres.Index = IndexInfo{} // only Write appends an index
	if xres != wres {
		t.Errorf("Extract result %+v, Write result %+v", xres, wres)
	}
	stat := func(rel string) os.FileInfo {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(s.dest, filepath.FromSlash(rel)))
		must(err)
		return fi
	}
	first := stat("a/first")
	for _, rel := range []string{"a/sub/second", "z-third"} {
		if !os.SameFile(first, stat(rel)) {
			t.Errorf("%s extracted as a file of its own, not a name of a/first", rel)
		}
	}
	if os.SameFile(first, stat("alone")) {
		t.Error("alone extracted as a name of a/first")
	}
	ro := stat("ro")
	if !os.SameFile(ro, stat("ro-too")) {
		t.Error("ro-too extracted as a file of its own, not a name of ro")
	}
	if ro.Mode().Perm()&0o200 != 0 {
		t.Errorf("ro extracted writable: %v", ro.Mode())
	}
	if b, err := os.ReadFile(filepath.Join(s.dest, "z-third")); err != nil || string(b) != "shared" {
		t.Errorf("z-third reads %q, %v", b, err)
	}
}
