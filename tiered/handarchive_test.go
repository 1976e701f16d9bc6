package tiered

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// handMember is a member of an archive made by hand: a regular file's
// content is body, and its Size is set from it.
type handMember struct {
	hdr  tar.Header
	body string
}

// putHandArchive stores under key a .tar.zst of members, as other tools
// make them (archive.Write would refuse to, or could not read the tree
// they describe), with the manifest recording what an inspection finds,
// and returns that result.
func putHandArchive(t *testing.T, store *memstore.Store, key string, members ...handMember) archive.Result {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, m := range members {
		h := m.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(m.body))
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatal(err)
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
	if _, err := store.Put(t.Context(), remote.Meta{Key: key, Size: res.Size, Files: res.Files}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return res
}
