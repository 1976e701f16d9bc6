package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tiercache/tiercache"
)

// fillEntries adds entries "entry-<i>" for i in [from, to) as cheaply as
// the public API allows: PutFunc with a one-file tree, no fsync, a few at a
// time (file creation, not CPU, is the bottleneck).
func fillEntries(b *testing.B, c *Cache, from, to int) {
	b.Helper()
	ctx := b.Context()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := from + w; i < to; i += workers {
				_, err := c.PutFunc(ctx, fmt.Sprintf("entry-%d", i), "", func(ctx context.Context, dir string) (tiercache.Shape, error) {
					return tiercache.Shape{Size: 1, Files: 1}, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkGetHit measures a hit with 10, 10k and 100k entries stored. A
// hit reads the key's pointer and metadata only, so the three should cost
// the same; a hit that scanned the other entries would grow with them.
// Each size is set up only when its sub-benchmark is selected; 100k
// entries take a few minutes to create on a slow disk.
func BenchmarkGetHit(b *testing.B) {
	for _, n := range []int{10, 10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			// With b.Loop this function runs once, so the setup does too.
			c := open(b, Options{NoSync: true})
			fillEntries(b, c, 0, n)
			ctx := b.Context()
			i := 0
			for b.Loop() {
				key := fmt.Sprintf("entry-%d", i%n)
				if _, ok, err := c.Get(ctx, key); err != nil || !ok {
					b.Fatalf("Get(%q): %v %v", key, ok, err)
				}
				i++
			}
		})
	}
}

// BenchmarkPrune10k measures pruning a cache of 10k entries down to 5k:
// one pass over the pointers and metadata, then 5k evictions that each
// move a pointer and write a record, whatever the trees' sizes. The
// evicted entries are put back, untimed, between iterations.
func BenchmarkPrune10k(b *testing.B) {
	const n = 10_000
	c := open(b, Options{NoSync: true})
	fillEntries(b, c, 0, n)
	ctx := b.Context()
	next := n
	b.ResetTimer()
	for range b.N {
		evicted, err := c.Prune(ctx, n/2, 0)
		if err != nil || evicted != n/2 {
			b.Fatalf("Prune = %d, %v; want %d", evicted, err, n/2)
		}
		b.StopTimer()
		fillEntries(b, c, next, next+n/2)
		next += n / 2
		b.StartTimer()
	}
}
