package tiered

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// TestLinkPullSkipSymlinks: a Link pull with SkipSymlinks of an entry
// holding a symlink succeeds where symlinks cannot be made (Windows
// without the privilege, Wine): the tree to link from would need the
// link, so it copies from the archive, skipping it. Where they can be
// made, the link is restored.
func TestLinkPullSkipSymlinks(t *testing.T) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeReg, Name: "f.txt", Mode: 0o644, Size: 1, ModTime: mtime, Format: tar.FormatPAX},
		{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "f.txt", Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte("f")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	data := enc.EncodeAll(raw.Bytes(), nil)
	res, err := archive.Inspect(t.Context(), bytes.NewReader(data), archive.ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	if _, err := store.Put(t.Context(), remote.Meta{Key: "k", Size: res.Size, Files: res.Files}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	c := newTiered(t, store, Options{})
	// A download, then a local hit.
	for _, name := range []string{"cold", "warm"} {
		dir := filepath.Join(t.TempDir(), name)
		h, ok, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{Link: true, SkipSymlinks: true})
		if err != nil || !ok {
			t.Fatalf("%s pull --link --skip-symlinks: %v %v", name, ok, err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "f.txt")); err != nil || string(b) != "f" {
			t.Errorf("%s: f.txt: %q %v", name, b, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "l")); err != nil && h.SkippedSymlinks != 1 {
			t.Errorf("%s: the symlink is neither restored (%v) nor counted skipped (%d)", name, err, h.SkippedSymlinks)
		}
	}
}
