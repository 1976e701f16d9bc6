//go:build unix

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"400MB": 400e6, "400mb": 400e6, "2GB": 2e9, "1.5GiB": 3 << 29, "512KiB": 512 << 10,
		"100M": 100e6, "1234": 1234, "10B": 10, " 3 MiB ": 3 << 20,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "-1MB", "ten", "1XB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestPlanShape checks that a plan has the promised shape: about the size
// asked, many small files, read-only module dirs, zips and a few large
// files.
func TestPlanShape(t *testing.T) {
	const size = 50e6
	p := planTree(size, 1)
	if p.bytes < size*9/10 || p.bytes > size*11/10 {
		t.Errorf("plan holds %d bytes, want about %d", p.bytes, int64(size))
	}
	if n := len(p.files); n < 2500 {
		t.Errorf("plan has %d files, want at least 2500 (about 60 per MB of text)", n)
	}
	var zips, large, readOnlyFiles int
	var small int
	for _, f := range p.files {
		switch {
		case f.kind == kindZip:
			zips++
		case f.size >= 4<<20:
			large++
		}
		if f.size < 16<<10 {
			small++
		}
		if f.mode == 0o444 {
			readOnlyFiles++
		}
	}
	if zips == 0 || large == 0 {
		t.Errorf("plan has %d zips and %d large files, want some of each", zips, large)
	}
	if small < len(p.files)*3/4 {
		t.Errorf("only %d of %d files are under 16 KiB", small, len(p.files))
	}
	if readOnlyFiles < len(p.files)/2 {
		t.Errorf("only %d of %d files are read-only", readOnlyFiles, len(p.files))
	}
	var readOnlyDirs int
	for _, d := range p.dirs {
		if d.mode == 0o555 {
			readOnlyDirs++
		}
	}
	if readOnlyDirs == 0 {
		t.Error("no read-only directories")
	}
}

// TestGenerateDeterministic generates the same small tree twice and
// compares everything Diff compares (bytes, modes, mtimes), and checks that
// the text compresses like source code while zips do not compress.
func TestGenerateDeterministic(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	t.Cleanup(func() {
		for _, d := range []string{a, b} {
			if err := fsutil.RemoveAll(d); err != nil {
				t.Error(err)
			}
		}
	})
	for _, d := range []string{a, b} {
		if err := planTree(3e6, 7).generate(t.Context(), d, 7); err != nil {
			t.Fatal(err)
		}
	}
	treetest.AssertEqual(t, a, b)

	var goText, zips []byte
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		switch {
		case err != nil:
			return err
		case strings.HasSuffix(p, ".go"):
			goText = append(goText, data...)
		case strings.HasSuffix(p, ".zip"):
			zips = append(zips, data...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(goText, []byte("\nfunc ")) {
		t.Error("no Go functions in the .go files")
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if r := float64(len(enc.EncodeAll(goText, nil))) / float64(len(goText)); r < 0.12 || r > 0.4 {
		t.Errorf(".go text compresses to %.2f of its size, want 0.12..0.4 like real Go code", r)
	}
	if r := float64(len(enc.EncodeAll(zips, nil))) / float64(len(zips)); r < 0.99 {
		t.Errorf("zips compress to %.2f of their size, want incompressible", r)
	}
}
