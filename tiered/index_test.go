package tiered

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// remoteIndex returns the index store records for key, after checking
// that it is one and that archive.ReadIndex accepts it on the stored
// bytes.
func remoteIndex(t *testing.T, store *memstore.Store, key string) archive.IndexInfo {
	t.Helper()
	rc, m, err := store.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("remote open %q: %v", key, err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	info := archive.IndexInfo(m.Index)
	if info.Length == 0 {
		t.Fatalf("%q: the remote records no index: %+v", key, m)
	}
	if st, err := store.Stat(t.Context(), key); err != nil || st.Index != m.Index {
		t.Fatalf("%q: Stat gives index %+v, %v; Open %+v", key, st.Index, err, m.Index)
	}
	if _, err := archive.ReadIndex(bytes.NewReader(b), int64(len(b)), info); err != nil {
		t.Fatalf("%q: the remote's recorded index does not read back: %v", key, err)
	}
	return info
}

// localIndex checks that c's local tier records want as key's index, and
// that archive.ReadIndex accepts it on the local archive if it is one.
func localIndex(t *testing.T, c *Cache, key string, want archive.IndexInfo) {
	t.Helper()
	s, ok, err := c.Local().Lookup(t.Context(), key)
	if err != nil || !ok {
		t.Fatalf("local lookup %q: %v, %v", key, ok, err)
	}
	if s.Index != want {
		t.Fatalf("%q: the local tier records index %+v, the remote %+v", key, s.Index, want)
	}
	if want.Length == 0 {
		return
	}
	f, err := os.Open(s.Archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := archive.ReadIndex(f, s.ArchiveSize, s.Index); err != nil {
		t.Fatalf("%q: the local recorded index does not read back: %v", key, err)
	}
}

// TestPushRecordsIndex: every way a push uploads records the archive's
// index in the remote manifest, and in the local meta where it keeps the
// archive; both read back with archive.ReadIndex.
func TestPushRecordsIndex(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	ctx := t.Context()
	src := fidelityTree(t, 50)

	if _, err := c.Put(ctx, "put", src, ""); err != nil {
		t.Fatal(err)
	}
	localIndex(t, c, "put", remoteIndex(t, store, "put"))

	if _, err := c.Push(ctx, "push", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	localIndex(t, c, "push", remoteIndex(t, store, "push"))

	if _, err := c.pushRemote(ctx, "direct", dirSource(src), PushOptions{}, false); err != nil {
		t.Fatal(err)
	}
	remoteIndex(t, store, "direct")

	// Same shape, other bytes: the archive stored locally is uploaded
	// from its file, with the index its meta records.
	small := smallTree(t, "v1")
	if _, err := c.Push(ctx, "file", small, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	before := remoteIndex(t, store, "file")
	rewriteSameSize(t, small)
	res, err := c.Push(ctx, "file", small, PushOptions{})
	if err != nil || !res.Uploaded {
		t.Fatalf("second push: %+v, %v; want an upload", res, err)
	}
	after := remoteIndex(t, store, "file")
	if after == before {
		t.Fatalf("the index recorded for other bytes is the old one: %+v", after)
	}
	localIndex(t, c, "file", after)
}

// rewriteSameSize changes the bytes of one regular file of dir, keeping
// its size, so the tree keeps its shape.
func rewriteSameSize(t *testing.T, dir string) {
	t.Helper()
	var done bool
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || done || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			return err
		}
		for i := range b {
			b[i] ^= 0x55
		}
		done = true
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil || !done {
		t.Fatalf("no file rewritten in %s: %v", dir, err)
	}
}

// TestColdPullRecordsIndex: a pull that keeps the download in the local
// tier records the manifest's index, by Get, Pull and Pull --link; an
// entry stored without an index (an older tiercache's) still pulls, and
// records none.
func TestColdPullRecordsIndex(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	ctx := t.Context()
	src := fidelityTree(t, 50)
	if _, err := c.Push(ctx, "k", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	want := remoteIndex(t, store, "k")

	fresh := dropLocal(t, c)
	p, ok, err := fresh.Get(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("cold get: %v, %v", ok, err)
	}
	treetest.AssertEqual(t, src, p)
	localIndex(t, fresh, "k", want)

	for _, link := range []bool{false, true} {
		fresh := dropLocal(t, c)
		dir := filepath.Join(t.TempDir(), "dst")
		if _, ok, err := fresh.Pull(ctx, "k", nil, dir, PullOptions{Link: link}); err != nil || !ok {
			t.Fatalf("cold pull (link %v): %v, %v", link, ok, err)
		}
		treetest.AssertEqual(t, src, dir)
		localIndex(t, fresh, "k", want)
	}

	store.CorruptMeta("k", func(m remote.Meta) remote.Meta { m.Index = remote.IndexInfo{}; return m })
	fresh = dropLocal(t, c)
	if _, ok, err := fresh.Get(ctx, "k"); err != nil || !ok {
		t.Fatalf("cold get of an entry without an index: %v, %v", ok, err)
	}
	localIndex(t, fresh, "k", archive.IndexInfo{})
}

// TestLyingIndex: a manifest whose index does not read back from its
// archive (the archive itself intact) fails a cold pull as an integrity
// failure of the remote, leaving no local entry, and fails fsck's
// inspection of the archive.
func TestLyingIndex(t *testing.T) {
	other := strings.Repeat("ab", 32)
	cases := map[string]func(remote.IndexInfo) remote.IndexInfo{
		"digest": func(i remote.IndexInfo) remote.IndexInfo { i.SHA256 = other; return i },
		"longer": func(i remote.IndexInfo) remote.IndexInfo { i.Offset--; i.Length++; return i },
		"shorter": func(i remote.IndexInfo) remote.IndexInfo {
			i.Offset++
			i.Length--
			return i
		},
	}
	for name, lie := range cases {
		t.Run(name, func(t *testing.T) {
			store := memstore.New()
			c := newTiered(t, store, Options{})
			ctx := t.Context()
			if _, err := c.Push(ctx, "k", smallTree(t, "v1"), PushOptions{}); err != nil {
				t.Fatal(err)
			}
			rc, m, err := store.Open(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			if err := c.inspectArchive(ctx, m, bytes.NewReader(data)); err != nil {
				t.Fatalf("fsck inspection of the true index: %v", err)
			}
			store.CorruptMeta("k", func(m remote.Meta) remote.Meta { m.Index = lie(m.Index); return m })
			m.Index = lie(m.Index)
			if err := c.inspectArchive(ctx, m, bytes.NewReader(data)); !errors.Is(err, tiercache.ErrIntegrity) {
				t.Errorf("fsck inspection of a lying index: %v, want ErrIntegrity", err)
			}

			fresh := dropLocal(t, c)
			_, ok, err := fresh.Get(ctx, "k")
			if ok || !errors.Is(err, tiercache.ErrIntegrity) || !IsRemote(err) {
				t.Fatalf("cold get with a lying index: %v, %v; want ErrIntegrity from the remote", ok, err)
			}
			if es, err := fresh.Local().List(ctx); err != nil || len(es) != 0 {
				t.Fatalf("local entries after the refused pull: %v, %v", es, err)
			}
		})
	}
}

// TestIndexTail: the frame is kept whatever the stream's chunks, and a
// stream that stops inside it fails the check.
func TestIndexTail(t *testing.T) {
	var buf bytes.Buffer
	res, err := archive.Write(t.Context(), &buf, smallTree(t, "x"), archive.WriteOptions{})
	if err != nil || res.Index.Length == 0 {
		t.Fatalf("Write: %+v, %v; want an index", res.Index, err)
	}
	data := buf.Bytes()
	for _, chunk := range []int{1, 7, 512, 4096, len(data)} {
		tail := newIndexTail(res.Index)
		for b := data; len(b) > 0; {
			n := min(chunk, len(b))
			_, _ = tail.Write(b[:n])
			b = b[n:]
		}
		if err := tail.check(); err != nil {
			t.Errorf("chunks of %d: %v", chunk, err)
		}
	}
	short := newIndexTail(res.Index)
	_, _ = short.Write(data[:len(data)-1])
	if err := short.check(); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("a stream cut inside the index: %v, want ErrIntegrity", err)
	}
	if newIndexTail(archive.IndexInfo{}).check() != nil {
		t.Error("no index recorded fails the check")
	}
}
