package s3

import (
	"bytes"
	"io"
	"testing"

	"github.com/tiercache/tiercache/remote"
)

// benchSize is the archive size of the benchmarks: four 8 MiB parts.
const benchSize = 32 << 20

func benchStore(b *testing.B) *Store {
	e := newEnv(b)
	return e.store(b, func(c *Config) { c.PartSize = 8 << 20 })
}

// BenchmarkPut measures upload throughput to MinIO on loopback. Each
// iteration replaces the same key, so old data objects are deleted.
func BenchmarkPut(b *testing.B) {
	s := benchStore(b)
	data := randBytes(1, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := s.Put(bg, remote.Meta{Key: "bench"}, onlyReader{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures download throughput through the ranged, resumable
// stream.
func BenchmarkOpen(b *testing.B) {
	s := benchStore(b)
	if _, err := s.Put(bg, remote.Meta{Key: "bench"}, bytes.NewReader(randBytes(1, benchSize))); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		rc, _, err := s.Open(bg, "bench")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		_ = rc.Close()
		if err != nil || n != benchSize {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}
