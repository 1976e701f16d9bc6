package archive

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// benchTree builds 2000 files of about 64 MB in all, in 20 directories:
// every other file is random (incompressible, and distinct: the seed
// cycles every 256 files, beyond the compressor's window), the rest source-like text.
// It returns the tree's root and its regular-file bytes.
func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	dir := b.TempDir()
	var total int64
	for i := range 2000 {
		sub := filepath.Join(dir, fmt.Sprintf("pkg%02d", i%20))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		size := 16<<10 + (i*7919)%(32<<10)
		var data []byte
		if i%2 == 0 {
			data = noiseSeed(size, byte(i))[:size]
		} else {
			line := fmt.Sprintf("func f%d(x int) int { return x * %d } // generated\n", i, i)
			data = bytes.Repeat([]byte(line), size/len(line)+1)[:size]
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.go", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return dir, total
}

func BenchmarkWrite(b *testing.B) {
	src, total := benchTree(b)
	for _, opts := range []WriteOptions{{}, {Concurrency: 1}, {Level: 9}} {
		b.Run(fmt.Sprintf("level=%d/concurrency=%d", opts.Level, opts.Concurrency), func(b *testing.B) {
			b.SetBytes(total)
			var size int64
			for b.Loop() {
				res, err := Write(b.Context(), io.Discard, src, opts)
				if err != nil {
					b.Fatal(err)
				}
				size = res.ArchiveSize
			}
			b.ReportMetric(float64(size)/float64(total), "ratio")
		})
	}
}

func BenchmarkExtract(b *testing.B) {
	src, total := benchTree(b)
	var archive bytes.Buffer
	if _, err := Write(b.Context(), &archive, src, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	base := b.TempDir()
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dest := filepath.Join(base, fmt.Sprint(i))
		if err := os.Mkdir(dest, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := Extract(b.Context(), bytes.NewReader(archive.Bytes()), dest, ExtractOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := fsutil.RemoveAll(dest); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
