//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treecopy"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/s3"
	"github.com/tiercache/tiercache/tiered"
)

// profileInfo is the output of --profile.
type profileInfo struct {
	Dir    string  `json:"dir"`
	Phases []phase `json:"phases"`
}

// phase is one in-process step, timed on its own.
type phase struct {
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Profile    string  `json:"profile,omitempty"`
	// PeakHeapBytes is the largest Go heap (runtime/metrics
	// /memory/classes/heap/objects:bytes) sampled every 20 ms during the
	// step, the harness's own small heap included: what the Go part of
	// tiercache's RSS is made of.
	PeakHeapBytes int64 `json:"peak_heap_bytes"`
	// CreateMicros: see sample.CreateMicros.
	CreateMicros float64 `json:"create_us_before"`
}

// profile runs push and cold pull through the library, the way the CLI
// does, under the CPU profiler, then times their phases one by one
// (copy into the local tier, tar+zstd, upload, download, decompression,
// extraction, copy-out), so the profiles can be read against wall time:
// the CPU profile shows where CPU goes, the phases show where the waiting
// is. The CLI has no profiling hook, hence in-process.
func (b *bench) profile(ctx context.Context) error {
	dir, err := filepath.Abs(b.profileDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	info := &profileInfo{Dir: dir}
	b.res.Profile = info
	store, err := s3.New(ctx, s3.Config{
		Bucket:      b.bucket,
		Prefix:      "profile",
		Endpoint:    b.srv.Endpoint,
		PathStyle:   true,
		Region:      b.srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(b.srv.AccessKey, b.srv.SecretKey, ""),
	})
	if err != nil {
		return err
	}
	newCache := func(tier string) (*tiered.Cache, error) {
		l, err := local.Open(b.path("%s", tier), local.Options{NoSync: b.cfg.noSync})
		if err != nil {
			return nil, err
		}
		return tiered.New(l, tiered.Options{Remote: store})
	}
	// step times fn after a sync, with the process's CPU time, optionally
	// under the CPU profiler.
	step := func(name, prof string, fn func() error) error {
		var f *os.File
		if prof != "" {
			var err error
			if f, err = os.Create(filepath.Join(dir, prof)); err != nil {
				return err
			}
			defer f.Close()
		}
		if b.cfg.dropCaches {
			if err := b.dropCaches(); err != nil {
				return err
			}
		}
		_, create, err := b.waitQuiet(ctx)
		if err != nil {
			return err
		}
		// Twice, so sync.Pool victims of earlier steps are gone too.
		runtime.GC()
		runtime.GC()
		stopHeap := sampleHeap(prof != "")
		cpu0 := processCPU()
		start := time.Now()
		if f != nil {
			if err := pprof.StartCPUProfile(f); err != nil {
				stopHeap()
				return err
			}
		}
		err = fn()
		if f != nil {
			pprof.StopCPUProfile()
		}
		ph := phase{Name: name, Seconds: time.Since(start).Seconds(), CPUSeconds: (processCPU() - cpu0).Seconds(), Profile: prof, CreateMicros: create}
		var heapProf []byte
		ph.PeakHeapBytes, heapProf = stopHeap()
		if err != nil {
			return fmt.Errorf("profile %s: %w", name, err)
		}
		info.Phases = append(info.Phases, ph)
		logf("profile: %s: %.2f s wall, %.2f s CPU, peak heap %s", name, ph.Seconds, ph.CPUSeconds, formatBytes(ph.PeakHeapBytes))
		if prof == "" {
			return nil
		}
		if err := b.pprofTop(ctx, filepath.Join(dir, prof)); err != nil {
			return err
		}
		if heapProf == nil {
			return nil
		}
		heap := filepath.Join(dir, strings.TrimSuffix(prof, ".pprof")+".heap.pprof")
		if err := os.WriteFile(heap, heapProf, 0o644); err != nil {
			return err
		}
		return b.pprofTop(ctx, heap, "-sample_index=inuse_space")
	}
	const key = "profile"
	archivePath := b.path("profile.tar.zst")
	// What the steps read (those not written yet are skipped).
	b.inputs = []string{b.src, b.path("prof-put-tier"), b.path("prof-pull-tier"), archivePath, filepath.Join(b.srv.DataDir, b.bucket, "profile")}

	// Push: whole, then its parts.
	c, err := newCache("prof-push-tier")
	if err != nil {
		return err
	}
	if err := step("push, whole (tiered.Push)", "push.pprof", func() error {
		_, err := c.Push(ctx, key, b.src, tiered.PushOptions{})
		return err
	}); err != nil {
		return err
	}
	l, err := local.Open(b.path("prof-put-tier"), local.Options{NoSync: b.cfg.noSync})
	if err != nil {
		return err
	}
	var cachedTree string
	if err := step("push part: local.Put (copy into the local tier)", "", func() error {
		cachedTree, err = l.Put(ctx, key, b.src, "")
		return err
	}); err != nil {
		return err
	}
	if err := step("push part: archive.Write to io.Discard (tar + zstd)", "", func() error {
		_, err := archive.Write(ctx, io.Discard, cachedTree, archive.WriteOptions{})
		return err
	}); err != nil {
		return err
	}
	af, err := os.Create(archivePath)
	if err != nil {
		return err
	}
	if _, err := archive.Write(ctx, af, cachedTree, archive.WriteOptions{}); err != nil {
		return err
	}
	if err := af.Close(); err != nil {
		return err
	}
	if err := step("push part: s3 Put of the archive file (upload only)", "", func() error {
		f, err := os.Open(archivePath)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = store.Put(ctx, remote.Meta{Key: "profile-upload", Size: 1, Files: 1}, f)
		return err
	}); err != nil {
		return err
	}

	// Cold pull: whole, then its parts.
	c2, err := newCache("prof-pull-tier")
	if err != nil {
		return err
	}
	if err := step("cold pull, whole (tiered.Pull)", "pull.pprof", func() error {
		_, ok, err := c2.Pull(ctx, key, nil, b.path("prof-pull-dest"), tiered.PullOptions{})
		if err == nil && !ok {
			err = fmt.Errorf("miss")
		}
		return err
	}); err != nil {
		return err
	}
	if err := b.verify(b.path("prof-pull-dest"), "in-process cold pull"); err != nil {
		return err
	}
	if err := step("pull part: s3 Open, read to io.Discard (download only)", "", func() error {
		rc, _, err := store.Open(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}); err != nil {
		return err
	}
	if err := step("pull part: zstd decode of the archive file to io.Discard", "", func() error {
		f, err := os.Open(archivePath)
		if err != nil {
			return err
		}
		defer f.Close()
		dec, err := zstd.NewReader(f)
		if err != nil {
			return err
		}
		defer dec.Close()
		_, err = io.Copy(io.Discard, dec)
		return err
	}); err != nil {
		return err
	}
	if err := step("pull part: archive.Extract of the archive file (zstd + untar + write)", "", func() error {
		f, err := os.Open(archivePath)
		if err != nil {
			return err
		}
		defer f.Close()
		dest := b.path("prof-extract")
		if err := os.Mkdir(dest, 0o755); err != nil {
			return err
		}
		_, err = archive.Extract(ctx, f, dest, archive.ExtractOptions{})
		return err
	}); err != nil {
		return err
	}
	if err := step("pull part: treecopy.Copy of the restored tree (a warm pull from a tree)", "", func() error {
		_, err := treecopy.Copy(ctx, b.path("prof-pull-dest"), b.path("prof-copy-dest"), treecopy.Options{})
		return err
	}); err != nil {
		return err
	}
	// The same copy with one worker: whether the parallel file creation
	// pays off on this disk, or contends for directory locks.
	if err := step("pull part: treecopy.Copy with Workers: 1", "", func() error {
		_, err := treecopy.Copy(ctx, b.path("prof-pull-dest"), b.path("prof-copy1-dest"), treecopy.Options{Workers: 1})
		return err
	}); err != nil {
		return err
	}
	for _, p := range []string{"prof-push-tier", "prof-put-tier", "prof-pull-tier", "prof-pull-dest", "prof-extract", "prof-copy-dest", "prof-copy1-dest", "profile.tar.zst"} {
		if err := b.trash(b.path("%s", p)); err != nil {
			return err
		}
	}
	return b.emptyTrash(ctx)
}

// pprofTop writes `go tool pprof -top` of a profile next to it, flat and
// cumulative.
func (b *bench) pprofTop(ctx context.Context, prof string, extra ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go tool pprof needs the go command in PATH: %w", err)
	}
	for _, v := range []struct{ suffix, flag string }{{".top.txt", "-top"}, {".cum.txt", "-cum"}} {
		args := append([]string{"tool", "pprof", "-top", "-nodecount=40"}, extra...)
		if v.flag == "-cum" {
			args = append(args, "-cum")
		}
		out, err := b.exec(ctx, b.plainCmd(ctx, goBin, append(args, prof)...))
		if err != nil {
			return err
		}
		if err := os.WriteFile(prof+v.suffix, out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// processCPU is the user + system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sampleHeap samples the live Go heap every 20 ms until the returned
// function is called, which returns the peak and, with snapshot, a heap
// profile taken when the peak was last raised by a tenth (it describes
// the heap as of the garbage collection before that moment).
func sampleHeap(snapshot bool) func() (int64, []byte) {
	done := make(chan struct{})
	type result struct {
		peak int64
		prof []byte
	}
	res := make(chan result)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var r result
		var snapAt int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if s[0].Value.Kind() == metrics.KindUint64 {
				r.peak = max(r.peak, int64(s[0].Value.Uint64()))
			}
			if snapshot && r.peak > snapAt*11/10 && r.peak > 16<<20 {
				var buf bytes.Buffer
				if pprof.Lookup("heap").WriteTo(&buf, 0) == nil {
					r.prof, snapAt = buf.Bytes(), r.peak
				}
			}
			select {
			case <-done:
				res <- r
				return
			case <-t.C:
			}
		}
	}()
	return func() (int64, []byte) {
		close(done)
		r := <-res
		return r.peak, r.prof
	}
}
