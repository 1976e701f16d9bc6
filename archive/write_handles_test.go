//go:build unix

package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/dev/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// fdSampler is a writer that records the most descriptors open while
// Write's output flows through it.
type fdSampler struct {
	t       *testing.T
	max     int
	samples int
}

func (s *fdSampler) Write(p []byte) (int, error) {
	s.samples++
	s.max = max(s.max, openFDs(s.t))
	return len(p), nil
}

// TestWriteDescriptorsBoundedByDepth: the walk holds the directories on
// its current path open, never one per directory or file visited.
func TestWriteDescriptorsBoundedByDepth(t *testing.T) {
	src := t.TempDir()
	for d := range 40 {
		sub := filepath.Join(src, fmt.Sprintf("d%02d", d), "sub")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 8 {
			// Incompressible and 50 MiB in all, so a dozen frames of
			// compressed output reach the sampler during the walk.
			data := noiseSeed(160<<10, byte(d*8+f))
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprint(f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := openFDs(t)
	s := &fdSampler{t: t}
	res, err := Write(t.Context(), s, src, WriteOptions{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 40*2+40*8 {
		t.Errorf("Files = %d, want %d", res.Files, 40*2+40*8)
	}
	if s.samples < 10 {
		t.Fatalf("only %d output writes sampled; the test cannot see the walk", s.samples)
	}
	// The root, dNN, sub and one file, plus one for slack.
	if extra := s.max - base; extra > 5 {
		t.Errorf("up to %d descriptors open during Write beyond the %d before; want at most 5 for a tree 3 deep", extra, base)
	}
	if after := openFDs(t); after != base {
		t.Errorf("%d descriptors open after Write, %d before", after, base)
	}
}

// TestWriteHandlesRefuseSwappedSymlinks: a file or directory replaced by a
// symlink between its lstat and its open is never followed out of the tree.
func TestWriteHandlesRefuseSwappedSymlinks(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("plain"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	top, err := openSourceDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer top.close()
	for name, want := range map[string]bool{"f": false, "d": true} {
		info, err := top.lstat(name, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.mode.IsDir() != want {
			t.Fatalf("%s: mode %v", name, info.mode)
		}
	}
	// The swap: both names now lead outside.
	for name, target := range map[string]string{"f": secret, "d": outside} {
		p := filepath.Join(src, name)
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	if f, err := top.openFile("f", "f"); err == nil {
		data, _ := io.ReadAll(f)
		f.Close()
		t.Errorf("opened a file swapped for a symlink; read %q", data)
	}
	if d, err := top.openDir("d", "d"); err == nil {
		names, _ := d.names("d", make([]byte, dirBufSize))
		d.close()
		t.Errorf("opened a directory swapped for a symlink; it lists %q", names)
	}
}

// copyWithSize runs the regular-file copy of Write on src/f with the size
// Write would have found when it reached the file, and returns the body
// stored.
func copyWithSize(t *testing.T, src string, size int64) ([]byte, error) {
	t.Helper()
	top, err := openSourceDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer top.close()
	var raw bytes.Buffer
	aw := &archiveWriter{
		ctx:   t.Context(),
		tw:    tar.NewWriter(&raw),
		links: map[fileID]string{},
		buf:   make([]byte, 4), // several reads per file
	}
	info, err := top.lstat("f", "f")
	if err != nil {
		t.Fatal(err)
	}
	info.size = size
	hdr := &tar.Header{Format: tar.FormatPAX, Typeflag: tar.TypeReg, Name: "f", Mode: 0o644, Size: size}
	if err := aw.file(top, "f", "f", hdr, info); err != nil {
		return nil, err
	}
	if err := aw.tw.Close(); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&raw)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if aw.size != size {
		t.Errorf("size counted %d, want %d", aw.size, size)
	}
	return body, nil
}

// TestWriteFileSizeAsReached: a file that grew or shrank after Write
// reached it makes Write fail with ErrChanged (see changed_test.go);
// one of the size it had then is stored whole.
func TestWriteFileSizeAsReached(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if body, err := copyWithSize(t, src, 10); err != nil || string(body) != "0123456789" {
		t.Errorf("unchanged file stored as %q, %v; want it whole", body, err)
	}
	_, err := copyWithSize(t, src, 7) // grew from 7 to 10 bytes
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "grew") {
		t.Errorf("grown file: err = %v, want ErrChanged saying it grew", err)
	}
	_, err = copyWithSize(t, src, 12) // shrank from 12 to 10 bytes
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "shrank") {
		t.Errorf("shrunk file: err = %v, want ErrChanged saying it shrank", err)
	}
}

// TestWriteDeepTree: a tree whose absolute paths exceed PATH_MAX is
// archived, since every lookup is one component relative to an open
// directory; one whose member names exceed what Extract accepts
// (MaxNameLength) is refused, naming the member.
func TestWriteDeepTree(t *testing.T) {
	src := t.TempDir()
	// Built through descriptors too: a path this long cannot be named.
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	comp := strings.Repeat("n", 203)
	var rel string
	for range 20 { // 20 * 204 bytes: with src, beyond Linux's 4096-byte PATH_MAX
		if err := unix.Mkdirat(fd, comp, 0o755); err != nil {
			t.Fatal(err)
		}
		sub, err := unix.Openat(fd, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = sub
		rel = strings.TrimPrefix(rel+"/"+comp, "/")
	}
	leaf := rel + "/leaf"
	defer unix.Close(fd)
	lf, err := unix.Openat(fd, "leaf", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(lf, []byte("deep")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(lf); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 21 || res.Size != 4 {
		t.Errorf("Write result %+v, want 21 members, 4 bytes", res)
	}
	dec, err := zstd.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	var last *tar.Header
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = hdr
	}
	if last == nil || last.Name != leaf || last.Size != 4 {
		t.Errorf("last member %+v, want %d bytes long %s of 4 bytes", last, len(leaf), ".../leaf")
	}

	if err := unix.Mkdirat(fd, strings.Repeat("x", 100), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Write(t.Context(), io.Discard, src, WriteOptions{})
	if !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), "over the 4096 a restore accepts") {
		t.Errorf("Write of a member name over MaxNameLength: %v; want it refused, naming the limit", err)
	}
}
