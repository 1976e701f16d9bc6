package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache"
)

// TestIndexNewerVersion: an index frame whose bytes match the recorded
// digest but whose version is newer than this reader's is not damage:
// ParseIndex and ReadIndex return ErrIndexVersion, not ErrIntegrity, and
// the archive still extracts sequentially. An unknown older version
// stays an integrity error.
func TestIndexNewerVersion(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, src, WriteOptions{})
	if err != nil || res.Index.Length == 0 {
		t.Fatalf("Write = %+v, %v; want an archive with an index", res.Index, err)
	}
	withVersion := func(v uint16) ([]byte, IndexInfo) {
		b := bytes.Clone(buf.Bytes())
		binary.LittleEndian.PutUint16(b[res.Index.Offset+skippableHeader+4:], v)
		info := res.Index
		info.SHA256 = fmt.Sprintf("%x", sha256.Sum256(b[info.Offset:]))
		return b, info
	}

	b, info := withVersion(indexVersion + 1)
	_, err = ParseIndex(b[info.Offset+skippableHeader:])
	if !errors.Is(err, ErrIndexVersion) || errors.Is(err, tiercache.ErrIntegrity) {
		t.Fatalf("ParseIndex of version %d: err = %v, want ErrIndexVersion and not ErrIntegrity", indexVersion+1, err)
	}
	_, err = ReadIndex(bytes.NewReader(b), int64(len(b)), info)
	if !errors.Is(err, ErrIndexVersion) || errors.Is(err, tiercache.ErrIntegrity) {
		t.Fatalf("ReadIndex of version %d: err = %v, want ErrIndexVersion and not ErrIntegrity", indexVersion+1, err)
	}
	// Authentic only if the recorded digest matches: otherwise damage.
	if _, err := ReadIndex(bytes.NewReader(b), int64(len(b)), res.Index); !errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, ErrIndexVersion) {
		t.Fatalf("ReadIndex of version %d against the old digest: err = %v, want ErrIntegrity alone", indexVersion+1, err)
	}
	dst := t.TempDir()
	if _, err := Extract(t.Context(), bytes.NewReader(b), dst, ExtractOptions{}); err != nil {
		t.Fatalf("Extract of an archive with a newer index: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(got) != "hello" {
		t.Fatalf("extracted f = %q, %v", got, err)
	}

	b, info = withVersion(0)
	if _, err := ReadIndex(bytes.NewReader(b), int64(len(b)), info); !errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, ErrIndexVersion) {
		t.Fatalf("ReadIndex of version 0: err = %v, want ErrIntegrity alone", err)
	}
}
