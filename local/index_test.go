package local

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treetest"
)

// editMeta rewrites the meta.json of key's current version through f,
// which edits its JSON object.
func editMeta(t *testing.T, c *Cache, key string, f func(m map[string]any)) {
	t.Helper()
	v, err := c.current(nameOf(key))
	if err != nil || v == "" {
		t.Fatalf("current(%q) = %q, %v", key, v, err)
	}
	path := filepath.Join(c.dataDir, v, metaFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	f(m)
	b, err = json.Marshal(m)
	must(t, err)
	must(t, os.Chmod(path, 0o644))
	must(t, os.WriteFile(path, b, 0o644))
}

// archiveIndex returns the "index" object of a meta.json's archive.
func archiveIndex(m map[string]any) map[string]any {
	idx, _ := m["archive"].(map[string]any)["index"].(map[string]any)
	return idx
}

// TestArchiveIndex: PutArchive records the index of fill's Result in
// meta.json, Lookup returns it, and it reads back from the archive with
// archive.ReadIndex; a meta.json without the field (an older version's)
// reads as no index and the entry works as before.
func TestArchiveIndex(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	src := srcDir(t)
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 30})
	var res archive.Result
	s, err := c.PutArchive(ctx, "k", Info{}, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
		var err error
		res, err = archive.Write(ctx, w, src, archive.WriteOptions{})
		return res, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Index.Length == 0 || s.Index != res.Index {
		t.Fatalf("PutArchive recorded index %+v, Write made %+v", s.Index, res.Index)
	}
	l, ok, err := c.Lookup(ctx, "k")
	if err != nil || !ok || l.Index != res.Index {
		t.Fatalf("Lookup = %+v, %v, %v; want index %+v", l.Index, ok, err, res.Index)
	}
	f, err := os.Open(l.Archive)
	must(t, err)
	_, err = archive.ReadIndex(f, l.ArchiveSize, l.Index)
	f.Close()
	if err != nil {
		t.Fatalf("the recorded index does not read back: %v", err)
	}
	if r := mustVerify(t, c, VerifyOptions{Deep: true}); r.Verified != 1 || len(r.Problems) != 0 {
		t.Fatalf("deep check of a sound entry: %+v", r)
	}

	editMeta(t, c, "k", func(m map[string]any) {
		if archiveIndex(m) == nil {
			t.Fatalf("meta.json records no index: %v", m)
		}
		delete(m["archive"].(map[string]any), "index")
	})
	l, ok, err = c.Lookup(ctx, "k")
	if err != nil || !ok || l.Index != (archive.IndexInfo{}) || l.SHA256 != s.SHA256 {
		t.Fatalf("Lookup of an old meta.json = %+v, %v, %v; want no index", l, ok, err)
	}
	if r := mustVerify(t, c, VerifyOptions{Deep: true}); r.Verified != 1 || len(r.Problems) != 0 {
		t.Fatalf("deep check of an entry without an index: %+v", r)
	}
	p, ok, err := c.Get(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("Get of an old meta.json: %v, %v", ok, err)
	}
	treetest.AssertEqual(t, src, p)
}

// TestPutArchiveChecksIndex: a fill reporting an index that does not end
// the archive it wrote, or has a malformed digest, commits nothing.
func TestPutArchiveChecksIndex(t *testing.T) {
	c := open(t, Options{})
	src := smallSrc(t, "a")
	cases := map[string]func(archive.IndexInfo) archive.IndexInfo{
		"ends early": func(i archive.IndexInfo) archive.IndexInfo { i.Offset--; return i },
		"ends late":  func(i archive.IndexInfo) archive.IndexInfo { i.Length++; return i },
		"empty":      func(i archive.IndexInfo) archive.IndexInfo { i.Offset += i.Length; i.Length = 0; return i },
		"negative":   func(i archive.IndexInfo) archive.IndexInfo { i.Length += i.Offset + 1; i.Offset = -1; return i },
		"upper case": func(i archive.IndexInfo) archive.IndexInfo { i.SHA256 = strings.ToUpper(i.SHA256); return i },
		"no digest":  func(i archive.IndexInfo) archive.IndexInfo { i.SHA256 = ""; return i },
	}
	for name, spoil := range cases {
		_, err := c.PutArchive(t.Context(), "k", Info{}, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
			r, err := archive.Write(ctx, w, src, archive.WriteOptions{})
			r.Index = spoil(r.Index)
			return r, err
		})
		if !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: PutArchive error %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, ok, err := c.Lookup(t.Context(), "k"); ok || err != nil {
		t.Fatalf("a failed PutArchive left an entry: %v, %v", ok, err)
	}
}

// TestVerifyIndex: a meta.json whose index is well formed but does not
// read back from the archive is an archive mismatch to a deep check
// only; one whose index cannot end the archive is a broken entry, which
// Lookup refuses.
func TestVerifyIndex(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	for _, k := range []string{"sound", "lying", "malformed"} {
		putArchive(t, c, k, smallSrc(t, k))
	}
	malformed, err := c.current(nameOf("malformed"))
	must(t, err)
	editMeta(t, c, "lying", func(m map[string]any) {
		archiveIndex(m)["sha256"] = strings.Repeat("ab", 32)
	})
	editMeta(t, c, "malformed", func(m map[string]any) {
		archiveIndex(m)["length"] = archiveIndex(m)["length"].(float64) + 1
	})
	if r := mustVerify(t, c, VerifyOptions{}); !slices.Equal(kinds(r), []string{"broken-entry " + malformed}) {
		t.Errorf("metadata check found %q", kinds(r))
	}
	r := mustVerify(t, c, VerifyOptions{Deep: true})
	if got, want := kinds(r), []string{"archive-mismatch lying", "broken-entry " + malformed}; !slices.Equal(got, want) {
		t.Errorf("deep check found %q, want %q", got, want)
	}
	if r.Verified != 1 {
		t.Errorf("deep check verified %d entries, want the sound one", r.Verified)
	}
	// Lookup refuses it, and drops it.
	if _, _, err := c.Lookup(ctx, "malformed"); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("Lookup of a malformed index: %v, want ErrIntegrity", err)
	}
	if _, ok, err := c.Lookup(ctx, "malformed"); ok || err != nil {
		t.Errorf("Lookup once dropped: %v, %v; want a plain miss", ok, err)
	}
}
