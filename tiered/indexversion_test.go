package tiered

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// newerIndex rewrites key's stored archive in store as a newer
// tiercache would write it: its index frame claims a version this one
// does not know. The manifest records the digests of the rewritten
// bytes, so the archive and its index are authentic.
func newerIndex(t *testing.T, store *memstore.Store, key string) {
	t.Helper()
	m, err := store.Stat(t.Context(), key)
	if err != nil || m.Index.Length == 0 {
		t.Fatalf("stat %q: %+v, %v; want an entry with an index", key, m, err)
	}
	var data []byte
	store.Corrupt(key, func(b []byte) []byte {
		// Skippable-frame header (8 bytes), then "TCIX", then the
		// version as 2 bytes little-endian.
		binary.LittleEndian.PutUint16(b[m.Index.Offset+8+4:], 2)
		data = b
		return b
	})
	store.CorruptMeta(key, func(m remote.Meta) remote.Meta {
		m.SHA256 = fmt.Sprintf("%x", sha256.Sum256(data))
		m.Index.SHA256 = fmt.Sprintf("%x", sha256.Sum256(data[m.Index.Offset:]))
		return m
	})
}

// TestPullNewerIndexVersion: an entry whose index is of a newer version
// is read sequentially, as one without an index. A writable pull
// restores it and leaves it in the store, and a deep check finds nothing
// wrong with it in either tier.
func TestPullNewerIndexVersion(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := smallTree(t, "v1")
	if _, err := c.Put(t.Context(), "k", src, ""); err != nil {
		t.Fatal(err)
	}
	newerIndex(t, store, "k")

	fresh := dropLocal(t, c)
	dir := filepath.Join(t.TempDir(), "dst")
	h, ok, err := fresh.Pull(t.Context(), "k", nil, dir, PullOptions{})
	if _, serr := store.Stat(t.Context(), "k"); serr != nil {
		t.Fatalf("the pull (ok=%v err=%v) removed the entry from the store: %v", ok, err, serr)
	}
	if err != nil || !ok {
		t.Fatalf("pull of an entry with a newer index: ok=%v err=%v", ok, err)
	}
	treetest.AssertEqual(t, src, dir)

	// The same through the local tier, which keeps the archive.
	if h.Downloaded == 0 {
		t.Fatalf("hit %+v: want a download", h)
	}
	fresh = dropLocal(t, c)
	h, ok, err = fresh.Restore(t.Context(), "k", nil)
	if err != nil || !ok {
		t.Fatalf("restore of an entry with a newer index: ok=%v err=%v", ok, err)
	}
	treetest.AssertEqual(t, src, h.Path)
	// What a deep fsck runs in each tier.
	rc, m, err := store.Open(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	err = fresh.inspectArchive(t.Context(), m, rc)
	rc.Close()
	if err != nil {
		t.Fatalf("deep remote check of an entry with a newer index: %v", err)
	}
	rep, err := fresh.Local().Verify(t.Context(), local.VerifyOptions{Deep: true})
	if err != nil || rep.Unrepaired() != 0 || rep.Verified != 1 {
		t.Fatalf("deep local verify: %+v, %v; want one entry verified, no problems", rep, err)
	}
	if _, err := store.Stat(t.Context(), "k"); err != nil {
		t.Fatalf("the entry is gone from the store: %v", err)
	}

	// A push over it cannot reuse its frames, and uploads in full.
	rewriteSameSize(t, src)
	if res, err := fresh.Push(t.Context(), "k", src, PushOptions{}); err != nil || !res.Uploaded {
		t.Fatalf("push over an entry with a newer index: %+v, %v; want an upload", res, err)
	}
	h, ok, err = dropLocal(t, c).Restore(t.Context(), "k", nil)
	if err != nil || !ok {
		t.Fatalf("restore after the push: ok=%v err=%v", ok, err)
	}
	treetest.AssertEqual(t, src, h.Path)
}
