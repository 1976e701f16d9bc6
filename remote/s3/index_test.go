package s3

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// indexReader yields data and claims index at its end.
type indexReader struct {
	io.Reader
	index remote.IndexInfo
}

func (x *indexReader) Index() remote.IndexInfo { return x.index }

// TestLyingIndexManifest: the index a Put records is in the manifest; a
// manifest whose index was changed to one that does not end the archive
// is refused as corrupt by Open, Stat and List, and reported by a check
// as a corrupt manifest.
func TestLyingIndexManifest(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	data := randBytes(3, 1000)
	sum := sha256.Sum256(data[900:])
	index := remote.IndexInfo{Offset: 900, Length: 100, SHA256: hex.EncodeToString(sum[:])}
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, &indexReader{Reader: bytes.NewReader(data), index: index}); err != nil {
		t.Fatal(err)
	}
	if m := readManifestOf(t, s, "k"); m.Meta.Index != index {
		t.Fatalf("the manifest records index %+v, want %+v", m.Meta.Index, index)
	}
	editManifest(t, e, s, "k", func(m *manifest) { m.Meta.Index.Offset-- })
	if _, _, err := s.Open(bg, "k"); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("Open with a lying index: %v, want ErrIntegrity", err)
	}
	if _, err := s.Stat(bg, "k"); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("Stat with a lying index: %v, want ErrIntegrity", err)
	}
	if metas, err := s.List(bg, ""); err != nil || len(metas) != 0 {
		t.Errorf("List with a lying index: %+v, %v; want nothing", metas, err)
	}
	r, err := s.Check(bg, remote.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || r.Problems[0].Kind != remote.ProblemCorruptManifest {
		t.Errorf("check found %+v, want the corrupt manifest", r.Problems)
	}
}
