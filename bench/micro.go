//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/s3"
)

// getHit is the latency of local Get hits with Entries entries stored.
type getHit struct {
	Entries      int     `json:"entries"`
	Samples      int     `json:"samples"`
	MedianMicros float64 `json:"median_us"`
	P90Micros    float64 `json:"p90_us"`
	P99Micros    float64 `json:"p99_us"`
	// SetupSeconds is the time spent filling the cache up to Entries,
	// from empty.
	SetupSeconds float64 `json:"setup_seconds"`
}

// pruneResult is one Prune call on a tier of Entries entries.
type pruneResult struct {
	Tier         string  `json:"tier"`
	Operation    string  `json:"operation"`
	Entries      int     `json:"entries"`
	Evicted      int     `json:"evicted"`
	Seconds      float64 `json:"seconds"`
	SetupSeconds float64 `json:"setup_seconds"`
}

// parallel runs fn(i) for i in [from, to) on workers goroutines and
// returns the first error.
func parallel(ctx context.Context, workers, from, to int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := from + w; i < to && ctx.Err() == nil; i += workers {
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

func microKey(i int) string { return fmt.Sprintf("entry-%d", i) }

// localMicro measures Get hits at 10, 10k and 100k entries and Prune at
// 10k, on one local tier grown step by step. Entries are what a pull
// --link leaves: a one-file archive with its tree beside it, made with
// PutArchive and NoSync, the cheapest way through the public API (file
// creation, not CPU, bounds the fill on a slow disk). A Get of such an
// entry is the costliest hit: it also takes the key's stripe lock.
func (b *bench) localMicro(ctx context.Context) error {
	c, err := local.Open(b.path("micro-local"), local.Options{NoSync: true})
	if err != nil {
		return err
	}
	one := b.path("micro-one")
	if err := os.MkdirAll(one, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(one, "f"), []byte("x"), 0o644); err != nil {
		return err
	}
	var arch bytes.Buffer
	res, err := archive.Write(ctx, &arch, one, archive.WriteOptions{})
	if err != nil {
		return err
	}
	var setup time.Duration
	fill := func(from, to int) error {
		start := time.Now()
		err := parallel(ctx, 4, from, to, func(ctx context.Context, i int) error {
			_, err := c.PutArchive(ctx, microKey(i), local.Info{}, true, func(ctx context.Context, w io.Writer, dir string) (archive.Result, error) {
				if _, err := w.Write(arch.Bytes()); err != nil {
					return res, err
				}
				return res, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
			})
			return err
		})
		d := time.Since(start)
		setup += d
		logf("local tier: added %d entries in %s (%.0f/s)", to-from, d.Round(time.Millisecond), float64(to-from)/d.Seconds())
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	measure := func(entries, lo, hi int) error {
		get := func() (time.Duration, error) {
			key := microKey(lo + rng.IntN(hi-lo))
			start := time.Now()
			_, ok, err := c.Get(ctx, key)
			d := time.Since(start)
			if err == nil && !ok {
				err = fmt.Errorf("local Get(%q): miss", key)
			}
			return d, err
		}
		for range 200 { // warm-up
			if _, err := get(); err != nil {
				return err
			}
		}
		ds := make([]float64, b.cfg.getSamples)
		for i := range ds {
			d, err := get()
			if err != nil {
				return err
			}
			ds[i] = float64(d.Nanoseconds()) / 1e3
		}
		slices.Sort(ds)
		g := getHit{
			Entries: entries, Samples: len(ds), SetupSeconds: setup.Seconds(),
			MedianMicros: median(ds), P90Micros: ds[len(ds)*9/10], P99Micros: ds[len(ds)*99/100],
		}
		b.res.GetHits = append(b.res.GetHits, g)
		logf("local Get hit at %d entries: median %.0f µs, p99 %.0f µs", entries, g.MedianMicros, g.P99Micros)
		return nil
	}
	if err := fill(0, 10); err != nil {
		return err
	}
	if err := measure(10, 0, 10); err != nil {
		return err
	}
	if err := fill(10, 10_000); err != nil {
		return err
	}
	if err := measure(10_000, 0, 10_000); err != nil {
		return err
	}
	for _, op := range []struct {
		name       string
		maxEntries int
		want       int
	}{
		{"nothing to evict (scan only)", 10_000, 0},
		{"evict 5k of 10k", 5_000, 5_000},
	} {
		start := time.Now()
		n, err := c.Prune(ctx, op.maxEntries, 0)
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("local prune: %w", err)
		}
		if n != op.want {
			return fmt.Errorf("local prune to %d entries evicted %d, want %d", op.maxEntries, n, op.want)
		}
		b.res.LocalPrune = append(b.res.LocalPrune, pruneResult{Tier: "local", Operation: op.name, Entries: 10_000, Evicted: n, Seconds: d.Seconds(), SetupSeconds: setup.Seconds()})
		logf("local prune at 10k entries, %s: %s", op.name, d.Round(time.Millisecond))
	}
	if b.cfg.skip100k {
		return nil
	}
	// 5k entries remain; 95k more make 100k, all measured among the new
	// ones, which are certainly present.
	if err := fill(10_000, 105_000); err != nil {
		return err
	}
	return measure(100_000, 10_000, 105_000)
}

// rankResult is the time to rank a restore key's candidates among
// Entries remote entries, one way.
type rankResult struct {
	Way     string  `json:"way"`
	Entries int     `json:"entries"`
	Seconds float64 `json:"seconds"`
}

// restoreKeyRank measures what ranking a restore key's candidates costs
// among the n entries of store, all under the prefix: the listing of
// keys and commit times a pull takes (remote.Store.Keys), beside reading
// every entry's manifest (List), the way it took before.
func (b *bench) restoreKeyRank(ctx context.Context, store *s3.Store, n int) error {
	for _, way := range []struct {
		name string
		rank func() (int, error)
	}{
		{"List: a manifest read per entry (before)", func() (int, error) { ms, err := store.List(ctx, "entry-"); return len(ms), err }},
		{"Keys: one listing (what a pull takes)", func() (int, error) { ks, err := store.Keys(ctx, "entry-"); return len(ks), err }},
	} {
		start := time.Now()
		got, err := way.rank()
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("ranking the candidates, %s: %w", way.name, err)
		}
		if got != n {
			return fmt.Errorf("ranking the candidates, %s: %d entries, want %d", way.name, got, n)
		}
		b.res.RestoreKeyRank = append(b.res.RestoreKeyRank, rankResult{Way: way.name, Entries: n, Seconds: d.Seconds()})
		logf("restore-key candidates among %d remote entries, %s: %s", n, way.name, d.Round(time.Millisecond))
	}
	return nil
}

// remotePrune measures the S3 store's Prune at 10k entries of one-byte
// archives, in-process against the benchmark's MinIO.
func (b *bench) remotePrune(ctx context.Context) error {
	store, err := s3.New(ctx, s3.Config{
		Bucket:      microBucket,
		Prefix:      "prune",
		Endpoint:    b.srv.Endpoint,
		PathStyle:   true,
		Region:      b.srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(b.srv.AccessKey, b.srv.SecretKey, ""),
	})
	if err != nil {
		return err
	}
	const n = 10_000
	start := time.Now()
	err = parallel(ctx, 16, 0, n, func(ctx context.Context, i int) error {
		_, err := store.Put(ctx, remote.Meta{Key: microKey(i), Size: 1, Files: 1}, strings.NewReader("x"))
		return err
	})
	setup := time.Since(start)
	if err != nil {
		return fmt.Errorf("filling the remote: %w", err)
	}
	logf("remote: put %d entries in %s", n, setup.Round(time.Millisecond))
	if err := b.restoreKeyRank(ctx, store, n); err != nil {
		return err
	}
	for _, op := range []struct {
		name       string
		maxEntries int
		want       int
	}{
		{"nothing to evict (scan only)", n, 0},
		{"evict 5k of 10k", n / 2, n / 2},
	} {
		start := time.Now()
		got, err := store.Prune(ctx, policy.Limits{MaxEntries: op.maxEntries})
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("remote prune: %w", err)
		}
		if got != op.want {
			return fmt.Errorf("remote prune to %d entries evicted %d, want %d", op.maxEntries, got, op.want)
		}
		b.res.RemotePrune = append(b.res.RemotePrune, pruneResult{Tier: "remote (S3 on MinIO)", Operation: op.name, Entries: n, Evicted: got, Seconds: d.Seconds(), SetupSeconds: setup.Seconds()})
		logf("remote prune at 10k entries, %s: %s", op.name, d.Round(time.Millisecond))
	}
	return nil
}
