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
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// onOpen sets the fileOpened hook for the rest of the test.
func onOpen(t *testing.T, fn func(rel string)) {
	t.Helper()
	fileOpened = fn
	t.Cleanup(func() { fileOpened = nil })
}

// lstatOf is what Write's walk learns of dir/name when it lists it.
func lstatOf(t *testing.T, dir, name string) srcInfo {
	t.Helper()
	d, err := openSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	info, err := d.lstat(name, name)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// rewrite overwrites p in place with size other bytes.
func rewrite(t *testing.T, p string, size int) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(noiseSeed(size, 99), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFileChanged: a file that grows, shrinks or is rewritten in
// place after Write listed and opened it fails the write with ErrChanged,
// naming it, whether the tree is a directory or a path, and whether the
// file is smaller than the copy buffer, exactly its size or larger.
func TestWriteFileChanged(t *testing.T) {
	changes := []struct {
		name     string
		unixOnly bool // needs a ctime
		change   func(t *testing.T, p string, size int, was srcInfo)
	}{
		{"grow", false, func(t *testing.T, p string, _ int, _ srcInfo) {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"shrink", false, func(t *testing.T, p string, size int, _ srcInfo) {
			if err := os.Truncate(p, int64(size-1)); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewrite with a new mtime", false, func(t *testing.T, p string, size int, was srcInfo) {
			rewrite(t, p, size)
			mt := was.mtime.Add(time.Second)
			if err := os.Chtimes(p, mt, mt); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewrite keeping the mtime", true, func(t *testing.T, p string, size int, was srcInfo) {
			rewrite(t, p, size)
			// Restoring the mtime moves the ctime, which the file system
			// may keep at a coarse granularity: again until it shows.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				if err := os.Chtimes(p, was.mtime, was.mtime); err != nil {
					t.Fatal(err)
				}
				if !lstatOf(t, filepath.Dir(p), filepath.Base(p)).ctime.Equal(was.ctime) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the ctime never moved")
				}
			}
		}},
	}
	sizes := []int{10, copyChunk, 2*copyChunk + 3}
	for _, c := range changes {
		for _, size := range sizes {
			for _, byPath := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/path=%v", c.name, size, byPath), func(t *testing.T) {
					if c.unixOnly && runtime.GOOS == "windows" {
						t.Skip("no ctime on Windows")
					}
					src := t.TempDir()
					for _, n := range []string{"a", "f", "z"} {
						if err := os.WriteFile(filepath.Join(src, n), noiseSeed(size, n[0]), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					p := filepath.Join(src, "f")
					s, member := Source{Dir: src}, "f"
					if byPath {
						s, member = Source{Paths: []string{p}}, "0"
					}
					was := lstatOf(t, src, "f")
					changed := false
					onOpen(t, func(rel string) {
						if rel == member {
							c.change(t, p, size, was)
							changed = true
						}
					})
					_, err := WriteSource(t.Context(), io.Discard, s, WriteOptions{})
					if !changed {
						t.Fatalf("the file was never changed (Write: %v)", err)
					}
					if !errors.Is(err, ErrChanged) || !errMentions(err, member) {
						t.Fatalf("Write of a file that changed while read: err = %v; want ErrChanged naming %q", err, member)
					}
				})
			}
		}
	}
}

// TestWriteUnchangedFilesAsBefore: files of every size around the copy
// buffer's are archived exactly as before the checks for changes (the
// tar stream archive/tar makes of them, with no byte more or less), and
// the hook doing nothing changes nothing.
func TestWriteUnchangedFilesAsBefore(t *testing.T) {
	src := t.TempDir()
	mt := time.Date(2024, 3, 1, 12, 0, 0, 123456700, time.UTC)
	sizes := []int{0, 1, 4095, copyChunk - 1, copyChunk, copyChunk + 1, 3 * copyChunk, 3*copyChunk + 5}
	var want bytes.Buffer
	tw := tar.NewWriter(&want)
	for i, size := range sizes {
		name := fmt.Sprintf("f%d", i)
		data := noiseSeed(size, byte(i))
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Format: tar.FormatPAX, Typeflag: tar.TypeReg, Name: name, Mode: int64(lstatOf(t, src, name).mode.Perm()), ModTime: mt, Size: int64(size)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var first []byte
	for _, hook := range []bool{false, true} {
		if hook {
			onOpen(t, func(string) {})
		}
		var buf bytes.Buffer
		res, err := Write(t.Context(), &buf, src, WriteOptions{})
		if err != nil {
			t.Fatalf("Write of an unchanged tree (hook %v): %v", hook, err)
		}
		if res.Files != int64(len(sizes)) {
			t.Errorf("%d members, want %d", res.Files, len(sizes))
		}
		dec, err := zstd.NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(dec)
		dec.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("hook %v: the tar stream differs from archive/tar's of the same files (%d vs %d bytes)", hook, len(got), want.Len())
		}
		if first == nil {
			first = buf.Bytes()
		} else if !bytes.Equal(first, buf.Bytes()) {
			t.Errorf("the archive with a hook that does nothing differs from the one without")
		}
	}
}

// TestWriteChangedErrorSaysWhat: the error says how the file changed.
func TestWriteChangedErrorSaysWhat(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	onOpen(t, func(string) {
		if err := os.Truncate(p, 4); err != nil {
			t.Fatal(err)
		}
	})
	_, err := Write(t.Context(), io.Discard, src, WriteOptions{})
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "shrank from 10 to 4 bytes") {
		t.Errorf("Write of a file truncated while read: %v; want ErrChanged saying it shrank from 10 to 4 bytes", err)
	}
}
