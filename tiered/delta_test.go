package tiered

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// deltaSetup pushes v1 and then v2 (one file changed) from one machine,
// and pulls v1 on a second, whose cache it returns with v2's tree and
// the size of v2's archive. With readOnly, the second machine only
// reads the remote, through remote.ReadOnly.
func deltaSetup(t *testing.T, readOnly bool) (store *memstore.Store, b *Cache, v2 string, size int64) {
	t.Helper()
	store, a, src := pushV1(t)
	ctx := t.Context()
	if readOnly {
		var err error
		if b, err = New(newLocal(t), Options{Remote: remote.ReadOnly(store), ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
	} else {
		b = newTiered(t, store, Options{})
	}
	if _, ok, err := b.Pull(ctx, "v1", nil, filepath.Join(t.TempDir(), "v1"), PullOptions{}); err != nil || !ok {
		t.Fatalf("pull v1: %v %v", ok, err)
	}
	reuseChange(t, src, "d2/f020")
	res, err := a.Push(ctx, "v2", src, PushOptions{Base: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	return store, b, src, res.ArchiveSize
}

// TestPullReadsFramesFromLocalBase: a pull of v2 on a machine whose
// local tier keeps v1 reads the frames v1 shares with v2 from the local
// archive and downloads the rest, and restores v2 exactly; found by a
// restore key, or as the entry last pulled into the same directory.
func TestPullReadsFramesFromLocalBase(t *testing.T) {
	for _, how := range []string{"restore key", "same dir", "read-only", "no base"} {
		t.Run(how, func(t *testing.T) {
			_, b, src, size := deltaSetup(t, how == "read-only")
			ctx := t.Context()
			dst := filepath.Join(t.TempDir(), "v2")
			var prefixes []string
			opts := PullOptions{}
			switch how {
			case "restore key", "read-only":
				prefixes = []string{"v"}
			case "same dir":
				// The record of the pull of v1 into dst names the base.
				if _, ok, err := b.Pull(ctx, "v1", nil, dst, PullOptions{}); err != nil || !ok {
					t.Fatalf("pull v1 into dst: %v %v", ok, err)
				}
			case "no base":
				prefixes, opts.NoBase = []string{"v"}, true
			}
			h, ok, err := b.Pull(ctx, "v2", prefixes, dst, opts)
			if err != nil || !ok || h.Tier != "remote" {
				t.Fatalf("pull v2: %+v %v %v", h, ok, err)
			}
			treetest.AssertEqual(t, src, dst)
			if how == "no base" {
				if h.Base != "" || h.FromBase != 0 || h.Downloaded != size {
					t.Errorf("pull with NoBase: base %q, %d bytes from it, %d downloaded; want none and all %d", h.Base, h.FromBase, h.Downloaded, size)
				}
				return
			}
			if h.Base != "v1" || h.FromBase+h.Downloaded != size || h.Downloaded*4 > size {
				t.Errorf("pull of v2: base %q, %d bytes from it, %d downloaded of %d; want v1 to supply most", h.Base, h.FromBase, h.Downloaded, size)
			}
			if h.Dropped != nil {
				t.Errorf("a sound base reported dropped: %v", h.Dropped)
			}
			// The entry kept is v2's archive, whole and verified.
			s, ok, err := b.local.Lookup(ctx, "v2")
			if err != nil || !ok || s.ArchiveSize != size {
				t.Fatalf("local v2: %+v %v %v", s, ok, err)
			}
		})
	}
}

// TestPullDamagedLocalBase: a frame of the local base that no longer
// matches the new archive's index is downloaded instead; the pull (or
// the library's Restore) still restores exactly the pushed tree, and the
// damaged base is dropped.
func TestPullDamagedLocalBase(t *testing.T) {
	for _, how := range []string{"pull", "restore"} {
		t.Run(how, func(t *testing.T) {
			_, b, src, size := deltaSetup(t, false)
			ctx := t.Context()
			damageLocal(t, b, "v1", func(data []byte, s local.Stored) int {
				idx, err := archive.ReadIndex(bytes.NewReader(data), s.ArchiveSize, s.Index)
				if err != nil {
					t.Fatal(err)
				}
				f0 := idx.Frames[0] // v2 changed a later one, so shares this
				return int(f0.Offset + f0.Length/2)
			}, 0x08)
			var h Hit
			var ok bool
			var err error
			if how == "pull" {
				dst := filepath.Join(t.TempDir(), "v2")
				h, ok, err = b.Pull(ctx, "v2", []string{"v"}, dst, PullOptions{})
				h.Path = dst
			} else {
				h, ok, err = b.Restore(ctx, "v2", []string{"v"})
			}
			if err != nil || !ok {
				t.Fatalf("%s v2: %+v %v %v", how, h, ok, err)
			}
			treetest.AssertEqual(t, src, h.Path)
			if h.Base != "v1" || h.FromBase == 0 || h.FromBase+h.Downloaded != size {
				t.Errorf("%s from a damaged base: base %q, %d bytes from it, %d downloaded, archive %d", how, h.Base, h.FromBase, h.Downloaded, size)
			}
			if !errors.Is(h.Dropped, tiercache.ErrIntegrity) || !strings.Contains(h.Dropped.Error(), `"v1"`) {
				t.Errorf("the damaged base is reported as %v, want an integrity error naming v1", h.Dropped)
			}
			if _, ok, err := b.local.Lookup(ctx, "v1"); ok || err != nil {
				t.Errorf("the damaged base is still in the local tier (%v)", err)
			}
			if _, ok, err := b.local.Lookup(ctx, "v2"); !ok || err != nil {
				t.Errorf("v2 is not in the local tier (%v)", err)
			}
		})
	}
}

// TestRestoreReadsFramesFromLocalBase: the library's Restore, which
// hydrates the local tier rather than a directory, reads the frames a
// local entry under a restore prefix shares with the key from its
// archive, as Pull does; Get, with no prefix, downloads them all.
func TestRestoreReadsFramesFromLocalBase(t *testing.T) {
	for _, how := range []string{"restore", "get"} {
		t.Run(how, func(t *testing.T) {
			_, b, src, size := deltaSetup(t, false)
			ctx := t.Context()
			var h Hit
			var ok bool
			var err error
			if how == "restore" {
				h, ok, err = b.Restore(ctx, "v2", []string{"v"})
			} else {
				h, ok, err = b.get(ctx, "v2")
			}
			if err != nil || !ok || h.Tier != tiercache.TierRemote {
				t.Fatalf("%s v2: %+v %v %v", how, h, ok, err)
			}
			treetest.AssertEqual(t, src, h.Path)
			if how == "get" {
				if h.Base != "" || h.FromBase != 0 || h.Downloaded != size {
					t.Errorf("get: base %q, %d bytes from it, %d downloaded; want none and all %d", h.Base, h.FromBase, h.Downloaded, size)
				}
				return
			}
			if h.Base != "v1" || h.FromBase+h.Downloaded != size || h.Downloaded*4 > size || h.Dropped != nil {
				t.Errorf("restore of v2: base %q, %d bytes from it, %d downloaded of %d, dropped %v; want v1 to supply most", h.Base, h.FromBase, h.Downloaded, size, h.Dropped)
			}
			s, ok, err := b.local.Lookup(ctx, "v2")
			if err != nil || !ok || s.ArchiveSize != size {
				t.Fatalf("local v2: %+v %v %v", s, ok, err)
			}
		})
	}
}

// TestRestoreFromLocalBaseConcurrently: callers restoring the same key at
// once share one hydration that reads from the local base, and each gets
// the key's exact tree.
func TestRestoreFromLocalBaseConcurrently(t *testing.T) {
	_, b, src, size := deltaSetup(t, false)
	ctx := t.Context()
	hits := make([]Hit, 8)
	errs := make([]error, len(hits))
	var wg sync.WaitGroup
	for i := range hits {
		wg.Go(func() {
			h, ok, err := b.Restore(ctx, "v2", []string{"v"})
			if err == nil && !ok {
				err = errors.New("miss")
			}
			hits[i], errs[i] = h, err
		})
	}
	wg.Wait()
	for i, h := range hits {
		if errs[i] != nil {
			t.Fatalf("restore %d: %v", i, errs[i])
		}
		treetest.AssertEqual(t, src, h.Path)
		if h.Tier == tiercache.TierRemote && (h.Base != "v1" || h.FromBase+h.Downloaded != size) {
			t.Errorf("restore %d: base %q, %d bytes from it, %d downloaded of %d", i, h.Base, h.FromBase, h.Downloaded, size)
		}
	}
	if _, ok, err := b.local.Lookup(ctx, "v2"); !ok || err != nil {
		t.Errorf("v2 is not in the local tier (%v)", err)
	}
}

// TestPullBaseNote: a pull whose local candidates share too little with
// the key downloads every byte and says why; one that reads from a base
// says nothing.
func TestPullBaseNote(t *testing.T) {
	store, b, _, _ := deltaSetup(t, false)
	ctx := t.Context()
	other := newTiered(t, store, Options{})
	if _, err := other.Push(ctx, "vx", smallTree(t, "unrelated"), PushOptions{NoBase: true}); err != nil {
		t.Fatal(err)
	}
	h, ok, err := b.Pull(ctx, "vx", []string{"v"}, filepath.Join(t.TempDir(), "vx"), PullOptions{})
	if err != nil || !ok || h.Tier != tiercache.TierRemote {
		t.Fatalf("pull vx: %+v %v %v", h, ok, err)
	}
	if h.Base != "" || h.FromBase != 0 || !strings.Contains(h.BaseNote, `"v1"`) || !strings.Contains(h.BaseNote, "under the 1/4") {
		t.Errorf("pull of an unrelated key: base %q, %d bytes from it, note %q; want none, and a note naming v1's share", h.Base, h.FromBase, h.BaseNote)
	}
	h, ok, err = b.Pull(ctx, "v2", []string{"v"}, filepath.Join(t.TempDir(), "v2"), PullOptions{})
	if err != nil || !ok || h.Base != "v1" || h.BaseNote != "" {
		t.Errorf("pull of v2: base %q, note %q, %v %v; want base v1 and no note", h.Base, h.BaseNote, ok, err)
	}
}

// TestDeltaReaderCancelledIsNoEOF: a delta pull's stream cut off by its
// context ends with the context's error, never with io.EOF after part
// of the segments, which would pass a short archive on as a whole one.
func TestDeltaReaderCancelledIsNoEOF(t *testing.T) {
	d := &deltaPull{version: remote.Base{Meta: remote.Meta{Key: "k"}}}
	for range 200 {
		d.segs = append(d.segs, deltaSeg{mem: []byte("0123456789")})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := d.open(ctx)
	defer r.Close()
	b, err := io.ReadAll(r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read %d of %d bytes, then %v; want context.Canceled", len(b), 200*10, err)
	}
}

// countingRanges is a remote.RangeReader that counts ReadBase calls.
type countingRanges struct {
	remote.RangeReader
	n atomic.Int64
}

func (c *countingRanges) ReadBase(_ context.Context, _ remote.Base, _, n int64) ([]byte, error) {
	c.n.Add(1)
	return make([]byte, n), nil
}

// TestDeltaReaderReadsNothingUnread: a delta pull's stream closed before
// its first Read (the pull found it cannot use the entry) has sent no
// range request, and reads after Close fail.
func TestDeltaReaderReadsNothingUnread(t *testing.T) {
	rr := &countingRanges{}
	d := &deltaPull{rr: rr, version: remote.Base{Meta: remote.Meta{Key: "k"}}}
	for i := range 8 {
		d.segs = append(d.segs, deltaSeg{off: int64(i) * 10, n: 10, baseOff: -1})
	}
	r := d.open(t.Context())
	time.Sleep(20 * time.Millisecond)
	_ = r.Close()
	if n := rr.n.Load(); n != 0 {
		t.Errorf("%d range reads before any Read; want none", n)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}
	r = d.open(t.Context())
	b, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil || len(b) != 80 || rr.n.Load() != 8 {
		t.Errorf("read %d bytes in %d range reads, %v; want 80 in 8", len(b), rr.n.Load(), err)
	}
}
