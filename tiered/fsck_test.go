package tiered

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// checkingStore is a memstore.Store that can check itself: it records the
// options of each Check and reports one canned problem.
type checkingStore struct {
	*memstore.Store
	mu    sync.Mutex
	calls []remote.CheckOptions
}

func (s *checkingStore) Check(ctx context.Context, opts remote.CheckOptions) (tiercache.CheckReport, error) {
	entries, err := s.List(ctx, "")
	if err != nil {
		return tiercache.CheckReport{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, opts)
	return tiercache.CheckReport{
		Entries:  len(entries),
		Problems: []tiercache.Problem{{Kind: remote.ProblemOrphanData, Object: "data/x", Repaired: opts.Repair}},
	}, nil
}

// breakEntry makes key's local entry unreadable.
func breakEntry(t *testing.T, c *Cache, key string) {
	t.Helper()
	p, ok, err := c.local.Get(t.Context(), key)
	if err != nil || !ok {
		t.Fatalf("local get %q: %v %v", key, ok, err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "meta.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFsck(t *testing.T) {
	store := &checkingStore{Store: memstore.New()}
	c, err := New(newLocal(t), Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, k := range []string{"good", "bad"} {
		if _, err := c.Put(ctx, k, smallTree(t, k), ""); err != nil {
			t.Fatal(err)
		}
	}
	breakEntry(t, c, "bad")
	opts := FsckOptions{Deep: true, Grace: time.Second}
	rep, err := c.Fsck(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Local.Entries != 2 || len(rep.Local.Problems) != 1 || rep.Local.Problems[0].Kind != local.ProblemBrokenEntry {
		t.Fatalf("local report %+v, want the broken entry of 2", rep.Local)
	}
	if rep.Remote == nil || rep.Remote.Entries != 2 || len(rep.Remote.Problems) != 1 {
		t.Fatalf("remote report %+v, want the store's", rep.Remote)
	}
	if rep.Unrepaired() != 2 {
		t.Errorf("Unrepaired = %d, want 2", rep.Unrepaired())
	}
	if len(store.calls) != 1 || !store.calls[0].Deep || store.calls[0].Repair || store.calls[0].Grace != time.Second || store.calls[0].Inspect == nil {
		t.Errorf("remote checked with %+v, want the options passed through and an inspector", store.calls)
	}

	opts.Repair = true
	rep, err = c.Fsck(ctx, opts)
	if err != nil || rep.Unrepaired() != 0 || len(rep.Local.Problems) != 1 {
		t.Fatalf("repair: %+v %v; want the local problem repaired", rep, err)
	}
	if _, ok, err := c.Get(ctx, "bad"); err != nil || !ok {
		// The broken local entry is gone; the remote still holds the key.
		t.Fatalf("get after repair: %v %v, want a hydration from the remote", ok, err)
	}
	rep, err = c.Fsck(ctx, FsckOptions{Deep: true})
	if err != nil || len(rep.Local.Problems) != 0 || rep.Local.Entries != 2 {
		t.Fatalf("local after repair: %+v %v", rep.Local, err)
	}
}

func TestFsckLocalOnlyAndRefusals(t *testing.T) {
	ctx := t.Context()
	c := newTiered(t, nil, Options{})
	if _, err := c.Put(ctx, "k", smallTree(t, "k"), ""); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Fsck(ctx, FsckOptions{Deep: true})
	if err != nil || rep.Remote != nil || rep.Local.Verified != 1 || rep.Unrepaired() != 0 {
		t.Fatalf("local-only fsck: %+v %v", rep, err)
	}

	// A remote that cannot check itself.
	if _, err := newTiered(t, memstore.New(), Options{}).Fsck(ctx, FsckOptions{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("fsck over an unchecking remote: %v, want ErrInvalidArgument", err)
	}

	// Read-only: a check runs, a repair is refused before touching
	// either tier.
	store := &checkingStore{Store: memstore.New()}
	ro, err := New(c.local, Options{Remote: store, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	breakEntry(t, ro, "k")
	if _, err := ro.Fsck(ctx, FsckOptions{Repair: true}); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("read-only repair: %v, want ErrReadOnly", err)
	}
	if len(store.calls) != 0 {
		t.Errorf("read-only repair checked the remote: %+v", store.calls)
	}
	rep, err = ro.Fsck(ctx, FsckOptions{})
	if err != nil || rep.Local.Unrepaired() != 1 || len(store.calls) != 1 || store.calls[0].Repair {
		t.Fatalf("read-only check: %+v %v (calls %+v); want the broken entry left as it was", rep, err, store.calls)
	}
}

// TestInspectArchive checks the deep remote check's reading of archive
// members: a true manifest passes; one that records another tree, an
// archive that does not decode and one whose member a pull refuses are
// integrity problems.
func TestInspectArchive(t *testing.T) {
	c := newTiered(t, nil, Options{})
	var buf bytes.Buffer
	res, err := archive.Write(t.Context(), &buf, smallTree(t, "x"), archive.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := remote.Meta{Key: "k", Size: res.Size, Files: res.Files}
	if err := c.inspectArchive(t.Context(), good, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("a true manifest: %v", err)
	}
	// The counts match, but extraction refuses the name.
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	if err := tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte("x"))
	_ = tw.Close()
	var unsafe bytes.Buffer
	zw, _ := zstd.NewWriter(&unsafe)
	_, _ = zw.Write(tarBuf.Bytes())
	_ = zw.Close()
	for name, tc := range map[string]struct {
		m    remote.Meta
		data []byte
	}{
		"no size":        {remote.Meta{Key: "k", Files: res.Files}, buf.Bytes()},
		"fewer files":    {remote.Meta{Key: "k", Size: res.Size, Files: res.Files - 1}, buf.Bytes()},
		"more bytes":     {remote.Meta{Key: "k", Size: res.Size + 1, Files: res.Files}, buf.Bytes()},
		"not an archive": {good, []byte("this is not zstd")},
		"cut short":      {good, buf.Bytes()[:buf.Len()/2]},
		"unsafe member":  {remote.Meta{Key: "k", Size: 1, Files: 1}, unsafe.Bytes()},
	} {
		err := c.inspectArchive(t.Context(), tc.m, bytes.NewReader(tc.data))
		if !errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), `"k"`) {
			t.Errorf("%s: %v, want an integrity error naming the key", name, err)
		}
	}
}
