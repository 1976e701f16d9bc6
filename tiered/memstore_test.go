package tiered

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// memStore is an in-memory remote.Store for testing the tiering logic
// only; remote/s3 and e2e prove the real store against MinIO.
type memStore struct {
	mu      sync.Mutex
	entries map[string]memEntry
	opens   atomic.Int64
	writes  atomic.Int64
	// openDelay slows Open so concurrent callers overlap.
	openDelay time.Duration
}

type memEntry struct {
	meta remote.Meta
	data []byte
}

func newMemStore() *memStore { return &memStore{entries: map[string]memEntry{}} }

var _ remote.Store = (*memStore)(nil)

func (m *memStore) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	m.opens.Add(1)
	if m.openDelay > 0 {
		time.Sleep(m.openDelay)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return nil, remote.Meta{}, fmt.Errorf("%q: %w", key, tiercache.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(e.data)), e.meta, nil
}

func (m *memStore) Stat(ctx context.Context, key string) (remote.Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return remote.Meta{}, fmt.Errorf("%q: %w", key, tiercache.ErrNotFound)
	}
	return e.meta, nil
}

func (m *memStore) Put(ctx context.Context, meta remote.Meta, r io.Reader) (remote.Meta, error) {
	m.writes.Add(1)
	data, err := io.ReadAll(r)
	if err != nil {
		return remote.Meta{}, err
	}
	sum := sha256.Sum256(data)
	meta.ArchiveSize = int64(len(data))
	meta.SHA256 = hex.EncodeToString(sum[:])
	meta.Created = time.Now()
	meta.LastAccess = meta.Created
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[meta.Key] = memEntry{meta: meta, data: data}
	return meta, nil
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	m.writes.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}

func (m *memStore) List(ctx context.Context, prefix string) ([]remote.Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []remote.Meta
	for k, e := range m.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, e.meta)
		}
	}
	return out, nil
}

func (m *memStore) Touch(ctx context.Context, key string) error {
	m.writes.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		e.meta.LastAccess = time.Now()
		m.entries[key] = e
	}
	return nil
}

func (m *memStore) Prune(ctx context.Context, l policy.Limits) (int, error) {
	m.writes.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var items []policy.Item
	for k, e := range m.entries {
		items = append(items, policy.Item{Key: k, Size: e.meta.Size, LastAccess: e.meta.LastAccess})
	}
	v, err := policy.Victims(items, l)
	for _, it := range v {
		delete(m.entries, it.Key)
	}
	return len(v), err
}

// corrupt replaces the stored archive of key by f(old).
func (m *memStore) corrupt(key string, f func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[key]
	e.data = f(bytes.Clone(e.data))
	m.entries[key] = e
}
