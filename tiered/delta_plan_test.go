package tiered

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// hookedRanges is a memstore whose ranged reads are counted, and may
// run a hook before each (with the count so far, from 1).
type hookedRanges struct {
	*memstore.Store
	reads atomic.Int64
	hook  func(n int64)
}

func (h *hookedRanges) ReadBase(ctx context.Context, b remote.Base, off, n int64) ([]byte, error) {
	k := h.reads.Add(1)
	if h.hook != nil {
		h.hook(k)
	}
	return h.Store.ReadBase(ctx, b, off, n)
}

// tinyFramesTree writes files of 3 MiB that compress to almost
// nothing: each starts a frame of its own (see archive's candidates),
// so the archive is many tiny frames. seed picks the files' heads.
func tinyFramesTree(t *testing.T, dir string, files int, changed func(i int) bool) {
	t.Helper()
	for i := range files {
		data := make([]byte, 3<<20)
		seed := byte(1)
		if changed(i) {
			seed = 2
		}
		_, _ = rand.NewChaCha8([32]byte{seed, byte(i)}).Read(data[:64])
		reuseWrite(t, filepath.Join(dir, fmt.Sprintf("f%03d", i)), data)
	}
	// Equal headers for equal files, so their frames are equal too.
	mtime := time.Unix(1e9, 0)
	for i := range files {
		if err := os.Chtimes(filepath.Join(dir, fmt.Sprintf("f%03d", i)), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dir, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestDeltaRangedReadsCoalesced: an archive whose frames alternate
// between ones a local base holds and ones it lacks, all tiny, costs a
// few ranged reads, not one per changed frame: a round trip costs more
// than downloading a small frame the base holds between two that must
// be downloaded anyway.
func TestDeltaRangedReadsCoalesced(t *testing.T) {
	store := &hookedRanges{Store: memstore.New()}
	a := newTiered(t, store.Store, Options{})
	b, err := New(newLocal(t), Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const files = 24
	v1, v2 := filepath.Join(t.TempDir(), "v1"), filepath.Join(t.TempDir(), "v2")
	tinyFramesTree(t, v1, files, func(int) bool { return false })
	tinyFramesTree(t, v2, files, func(i int) bool { return i%2 == 1 })
	if _, err := a.Push(ctx, "v1", v1, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Push(ctx, "v2", v2, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Pull(ctx, "v1", nil, filepath.Join(t.TempDir(), "p1"), PullOptions{}); err != nil || !ok {
		t.Fatalf("pull v1: %v %v", ok, err)
	}
	store.reads.Store(0)
	dst := filepath.Join(t.TempDir(), "p2")
	h, ok, err := b.Pull(ctx, "v2", []string{"v"}, dst, PullOptions{})
	if err != nil || !ok {
		t.Fatalf("pull v2: %v %v", ok, err)
	}
	treetest.AssertEqual(t, v2, dst)
	t.Logf("base %q, %d from it, %d downloaded of %d, note %q, %d reads", h.Base, h.FromBase, h.Downloaded, res.ArchiveSize, h.BaseNote, store.reads.Load())
	// One read for the index, and one or two for a few kilobytes of
	// frames.
	if n := store.reads.Load(); n > 3 {
		t.Errorf("pull of a %d-byte archive of %d tiny frames, base %q (%d bytes from it, %d downloaded): %d ranged reads; want at most 3",
			res.ArchiveSize, files+1, h.Base, h.FromBase, h.Downloaded, n)
	}
}

// TestDeltaRemoteReplacedMidPull: a push that replaces the key
// while a delta pull reads its frames makes the pull a clean miss: no
// error, DIR as it was, no local entry of either version, and the new
// remote version untouched.
func TestDeltaRemoteReplacedMidPull(t *testing.T) {
	for _, how := range []string{"new dir", "same dir"} {
		t.Run(how, func(t *testing.T) {
			inner, a, src := pushV1(t)
			store := &hookedRanges{Store: inner}
			b, err := New(newLocal(t), Options{Remote: store})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			dst := filepath.Join(t.TempDir(), "dst")
			if _, ok, err := b.Pull(ctx, "v1", nil, filepath.Join(t.TempDir(), "v1"), PullOptions{}); err != nil || !ok {
				t.Fatalf("pull v1: %v %v", ok, err)
			}
			if how == "same dir" {
				if _, ok, err := b.Pull(ctx, "v1", nil, dst, PullOptions{}); err != nil || !ok {
					t.Fatalf("pull v1 into dst: %v %v", ok, err)
				}
			}
			v1copy := filepath.Join(t.TempDir(), "v1copy")
			if _, ok, err := b.Pull(ctx, "v1", nil, v1copy, PullOptions{}); err != nil || !ok {
				t.Fatalf("pull v1 copy: %v %v", ok, err)
			}
			reuseChange(t, src, "d2/f020")
			if _, err := a.Push(ctx, "v2", src, PushOptions{Base: "v1"}); err != nil {
				t.Fatal(err)
			}
			v3 := smallTree(t, "v3")
			var once sync.Once
			var pushErr error
			store.hook = func(n int64) {
				if n == 2 { // the index has been read: replace the key
					once.Do(func() {
						_, pushErr = newTiered(t, inner, Options{}).Push(context.WithoutCancel(ctx), "v2", v3, PushOptions{NoBase: true})
					})
				}
			}
			// Into the same dir the pull record names the base; else
			// the restore key does, and then restores v1 itself.
			var prefixes []string
			if how == "new dir" {
				prefixes = []string{"v"}
			}
			h, ok, err := b.Pull(ctx, "v2", prefixes, dst, PullOptions{})
			if pushErr != nil {
				t.Fatal(pushErr)
			}
			if store.reads.Load() < 2 {
				t.Fatalf("the pull made %d ranged reads; the test needs a delta pull", store.reads.Load())
			}
			if err != nil || ok != (how == "new dir") || ok && (h.Key != "v1" || h.Tier != tiercache.TierLocal) {
				t.Fatalf("pull of a key replaced mid-pull: %+v %v %v; want a clean miss of v2", h, ok, err)
			}
			treetest.AssertEqual(t, v1copy, dst)
			if _, ok, err := b.local.Lookup(ctx, "v2"); ok || err != nil {
				t.Errorf("a missed pull left a local v2 (%v)", err)
			}
			m, err := inner.Stat(ctx, "v2")
			if err != nil || m.Size == 0 {
				t.Fatalf("the new remote v2 is gone: %+v %v", m, err)
			}
			// The next pull gets the new version whole.
			fresh := filepath.Join(t.TempDir(), "fresh")
			if _, ok, err := b.Pull(ctx, "v2", nil, fresh, PullOptions{}); err != nil || !ok {
				t.Fatalf("pull of the new v2: %v %v", ok, err)
			}
			treetest.AssertEqual(t, v3, fresh)
		})
	}
}

// TestDeltaDamagedBaseKeepsRemote: however the local base is
// damaged (every frame it shares flipped, or the file cut short), the
// pull restores the remote entry exactly, drops the base, and never
// removes or reports as damaged the remote entry, whose bytes were good.
func TestDeltaDamagedBaseKeepsRemote(t *testing.T) {
	for _, how := range []string{"every frame", "truncated", "replaced"} {
		t.Run(how, func(t *testing.T) {
			store, b, src, size := deltaSetup(t, false)
			ctx := t.Context()
			s, ok, err := b.local.Lookup(ctx, "v1")
			if err != nil || !ok {
				t.Fatalf("local v1: %v %v", ok, err)
			}
			data, err := os.ReadFile(s.Archive)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := archive.ReadIndex(bytes.NewReader(data), s.ArchiveSize, s.Index)
			if err != nil {
				t.Fatal(err)
			}
			switch how {
			case "every frame":
				for _, f := range idx.Frames {
					data[f.Offset+f.Length/2] ^= 0x10
				}
			case "truncated":
				data = data[:len(data)/3]
			case "replaced":
				// Another archive's bytes under v1's name.
				for i := range int(idx.DataSize) {
					data[i] = byte(i)
				}
			}
			if err := os.Chmod(s.Archive, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Archive, data, 0o644); err != nil {
				t.Fatal(err)
			}
			before, err := store.Stat(ctx, "v2")
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "v2")
			h, ok, err := b.Pull(ctx, "v2", []string{"v"}, dst, PullOptions{Link: how == "truncated"})
			var ce *CorruptError
			if errors.As(err, &ce) {
				t.Fatalf("a damaged local base was reported as remote damage: %v", err)
			}
			if err != nil || !ok {
				t.Fatalf("pull v2: %v %v", ok, err)
			}
			treetest.AssertEqual(t, src, dst)
			if h.FromBase+h.Downloaded != size {
				t.Errorf("%d bytes from the base, %d downloaded, of %d", h.FromBase, h.Downloaded, size)
			}
			if h.Base == "v1" && !errors.Is(h.Dropped, tiercache.ErrIntegrity) {
				t.Errorf("the damaged base read is reported as %v, want an integrity error", h.Dropped)
			}
			after, err := store.Stat(ctx, "v2")
			if err != nil || after.SHA256 != before.SHA256 {
				t.Errorf("the remote v2 changed: %+v %v", after, err)
			}
		})
	}
}

// TestDeltaLyingBasePlan: segments planned from a base whose
// index lies (frames at the wrong offsets, past its end, overlapping)
// serve only bytes that hash to the new index's digest; the rest come
// from the remote, and the base is marked damaged.
func TestDeltaLyingBasePlan(t *testing.T) {
	want := []byte("0123456789abcdefghij")
	f, err := os.CreateTemp(t.TempDir(), "base")
	if err != nil {
		t.Fatal(err)
	}
	// The base holds want[10:20] at 3, and garbage elsewhere.
	if _, err := f.Write(append([]byte("xyz"), want[10:]...)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil { // Windows cannot remove an open file
		t.Fatal(err)
	}
	store := memstore.New()
	if _, err := store.Put(t.Context(), remote.Meta{Key: "k"}, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	v, err := store.OpenVersion(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	sum := func(b []byte) [sha256.Size]byte { return sha256.Sum256(b) }
	for _, c := range []struct {
		name     string
		baseOffs [2]int64
		fromBase int64
	}{
		{"right", [2]int64{-1, 3}, 10},
		{"wrong offset", [2]int64{-1, 2}, 0},
		{"past the end", [2]int64{-1, 9}, 0},
		{"far past the end", [2]int64{-1, 1 << 40}, 0},
		{"both from an overlap", [2]int64{0, 3}, 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			ff, err := os.Open(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			d := &deltaPull{rr: store, version: v, baseKey: "b", file: ff}
			for i, off := range c.baseOffs {
				d.segs = append(d.segs, deltaSeg{off: int64(10 * i), n: 10, baseOff: off, sum: sum(want[10*i : 10*i+10])})
			}
			r := d.open(t.Context())
			got, err := io.ReadAll(r)
			_ = r.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %q, %v; want %q", got, err, want)
			}
			if d.fromBase.Load() != c.fromBase {
				t.Errorf("%d bytes from the base, want %d", d.fromBase.Load(), c.fromBase)
			}
			if damaged := d.damage != nil; damaged != (c.fromBase < 10 || c.name == "both from an overlap") {
				t.Errorf("damage %v", d.damage)
			}
			if d.damage != nil && (!errors.Is(d.damage, tiercache.ErrIntegrity) || !strings.Contains(d.damage.Error(), `"b"`)) {
				t.Errorf("damage %v; want an integrity error naming the base", d.damage)
			}
		})
	}
}

// TestDeltaUnsignedBaseForSignedEntry: a Cache that trusts only
// signed entries may read frames of a signed entry from an unsigned
// local entry, since each is checked against the signed index and the
// whole against the signed manifest; a damaged one changes nothing
// restored.
func TestDeltaUnsignedBaseForSignedEntry(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	ctx := t.Context()
	src := reuseTree(t)
	if _, err := newTiered(t, store, Options{}).Push(ctx, "v1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	shared := newLocal(t)
	careless, err := New(shared, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := careless.Pull(ctx, "v1", nil, filepath.Join(t.TempDir(), "v1"), PullOptions{}); err != nil || !ok {
		t.Fatalf("pull v1: %v %v", ok, err)
	}
	reuseChange(t, src, "d2/f020")
	signer.Remote = store
	if _, err := newTiered(t, nil, signer).Push(ctx, "v2", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	damageLocal(t, careless, "v1", func(data []byte, s local.Stored) int { return 100 }, 0x20)
	trusting, err := New(shared, Options{Remote: store, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "v2")
	h, ok, err := trusting.Pull(ctx, "v2", []string{"v"}, dst, PullOptions{})
	if err != nil || !ok || len(h.Untrusted) != 0 {
		t.Fatalf("pull of signed v2: %+v %v %v", h, ok, err)
	}
	treetest.AssertEqual(t, src, dst)
	if h.Base != "v1" || h.FromBase == 0 || h.Dropped == nil {
		t.Errorf("base %q, %d bytes from it, dropped %v; want the unsigned v1 used, its damaged frame refused", h.Base, h.FromBase, h.Dropped)
	}
	s, ok, err := shared.Lookup(ctx, "v2")
	if err != nil || !ok || !trusting.trustedLocal(s) {
		t.Errorf("the local v2 is not a trusted copy of the signed entry: %v %v", ok, err)
	}
}

// TestDeltaPlanBoundsReads: however a new index interleaves the
// frames a base holds with those it lacks, the plan's ranged reads are
// at most one per deltaMinRun bytes read locally plus one per
// deltaChunk downloaded (and two more), and the segments tile the
// frames, each base frame with its own digest.
func TestDeltaPlanBoundsReads(t *testing.T) {
	for _, c := range []struct {
		name   string
		frames int
		size   func(i int) int64
		held   func(i int) bool
	}{
		{"tiny, alternating", 100000, func(int) int64 { return 20 }, func(i int) bool { return i%2 == 0 }},
		{"tiny, one in three held", 30000, func(int) int64 { return 100 }, func(i int) bool { return i%3 == 0 }},
		{"large, alternating", 64, func(int) int64 { return 1 << 20 }, func(i int) bool { return i%2 == 0 }},
		{"mixed", 5000, func(i int) int64 { return int64(1 + i%7*50000) }, func(i int) bool { return i%5 != 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var frames []archive.IndexFrame
			base := map[frameID]int64{}
			var off, held int64
			for i := range c.frames {
				f := archive.IndexFrame{Offset: off, Length: c.size(i)}
				f.SHA256[0], f.SHA256[1], f.SHA256[2] = byte(i), byte(i>>8), byte(i>>16)
				if c.held(i) {
					base[frameID{f.SHA256, f.Length}] = 7 * off
					held += f.Length
				}
				frames = append(frames, f)
				off += f.Length
			}
			segs, fromBase := planDelta(frames, base)
			var reads, at, local int64
			for _, s := range segs {
				if s.off != at || s.n <= 0 {
					t.Fatalf("segment at %d+%d, want it at %d", s.off, s.n, at)
				}
				at += s.n
				if s.baseOff < 0 {
					reads++
					continue
				}
				local += s.n
				if s.baseOff != 7*s.off || base[frameID{s.sum, s.n}] != s.baseOff {
					t.Fatalf("segment at %d+%d read from the base at %d, which holds another frame there", s.off, s.n, s.baseOff)
				}
			}
			if at != off || local != fromBase || fromBase > held {
				t.Fatalf("segments cover %d of %d bytes, %d from the base (reported %d, %d held)", at, off, local, fromBase, held)
			}
			if limit := fromBase/deltaMinRun + (off-fromBase)/deltaChunk + 2; reads > limit {
				t.Errorf("%d ranged reads for %d frames, %d bytes from the base and %d downloaded; want at most %d", reads, c.frames, fromBase, off-fromBase, limit)
			}
			if c.size(0) >= deltaMinRun && fromBase != held {
				t.Errorf("%d bytes read from the base of the %d held in frames of %d; want all", fromBase, held, c.size(0))
			}
		})
	}
}
