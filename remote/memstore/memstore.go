// Package memstore is a remote.Store that keeps its entries in memory: for
// tests of code built on remote.Store (the tiered cache's own tests use it),
// and for library users who want a remote tier without a bucket. It passes
// the same conformance suite (remote/storetest) as the S3 store, so code
// tested over it meets the contract the real stores keep.
//
// It is a remote.BaseStore too: its Put "copies" the runs a
// remote.Reuser reports by checking them against the base's bytes (see
// base.go), so tests of code that reports runs catch wrong ones.
//
// Besides the Store methods it has a few knobs tests need: counts of
// Open and write calls, a delay before Open answers (so concurrent callers
// overlap), damaging a stored archive or its Meta, and refusing copies.
// For a read-only view, wrap it with remote.ReadOnly.
package memstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// Store is an in-memory remote.Store, safe for concurrent use. The zero
// value is not usable: call New.
type Store struct {
	mu          sync.Mutex
	entries     map[string]entry
	versions    uint64 // ids handed out so far, under mu
	opens       atomic.Int64
	writes      atomic.Int64
	openDelay   atomic.Int64 // a time.Duration
	copyRefusal atomic.Pointer[error]
}

type entry struct {
	meta remote.Meta
	data []byte // never changed in place: readers may hold it
	// id names this version in a remote.Base's Ref: a later Put of the
	// key gets another, so a Ref never reaches a replacement.
	id uint64
	// committed is when Put committed this version, which Keys reports
	// (meta.Created too, unless CorruptMeta changed it).
	committed time.Time
}

var _ remote.Store = (*Store)(nil)

// New returns an empty, writable Store.
func New() *Store {
	return &Store{entries: map[string]entry{}}
}

// Opens returns how many times Open has been called, misses and failures
// included.
func (s *Store) Opens() int64 { return s.opens.Load() }

// Writes returns how many times Put, Delete, Touch or Prune have been
// called, failed calls included: a caller that must send no write checks
// that it stays unchanged.
func (s *Store) Writes() int64 { return s.writes.Load() }

// SetOpenDelay makes every later Open wait d (or until its ctx is done)
// before it answers, so that concurrent callers overlap.
func (s *Store) SetOpenDelay(d time.Duration) { s.openDelay.Store(int64(d)) }

// Corrupt replaces the stored archive of key by f applied to a copy of
// it, leaving its Meta as committed, as damage in a real store would. It
// does nothing if key is missing.
func (s *Store) Corrupt(key string, f func([]byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return
	}
	e.data = f(bytes.Clone(e.data))
	s.entries[key] = e
}

// CorruptMeta replaces the stored Meta of key by f applied to it, leaving
// the archive as it is, as a manifest that lies about its archive would.
// It does nothing if key is missing.
func (s *Store) CorruptMeta(key string, f func(remote.Meta) remote.Meta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return
	}
	e.meta = f(e.meta)
	s.entries[key] = e
}

func notFound(key string) error {
	return fmt.Errorf("memstore: key %q: %w", key, tiercache.ErrNotFound)
}

// Open returns a stream of key's archive. The stream is bound to ctx:
// once ctx is done, Read fails with its error.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	s.opens.Add(1)
	if err := tiercache.ValidateStoredKey(key); err != nil {
		return nil, remote.Meta{}, err
	}
	if d := time.Duration(s.openDelay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, remote.Meta{}, fmt.Errorf("memstore: open key %q: %w", key, err)
	}
	s.mu.Lock()
	e, ok := s.entries[key]
	s.mu.Unlock()
	if !ok {
		return nil, remote.Meta{}, notFound(key)
	}
	return &stream{ctx: ctx, r: bytes.NewReader(e.data)}, e.meta, nil
}

// stream reads an archive until its ctx is done or it is closed.
type stream struct {
	ctx    context.Context
	r      *bytes.Reader
	closed bool
}

var errClosed = errors.New("memstore: read after close")

func (st *stream) Read(p []byte) (int, error) {
	if st.closed {
		return 0, errClosed
	}
	if err := st.ctx.Err(); err != nil {
		return 0, err
	}
	return st.r.Read(p)
}

func (st *stream) Close() error {
	st.closed = true
	return nil
}

// Stat returns key's Meta.
func (s *Store) Stat(ctx context.Context, key string) (remote.Meta, error) {
	if err := tiercache.ValidateStoredKey(key); err != nil {
		return remote.Meta{}, err
	}
	if err := ctx.Err(); err != nil {
		return remote.Meta{}, fmt.Errorf("memstore: stat key %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return remote.Meta{}, notFound(key)
	}
	return e.meta, nil
}

// Put reads the whole archive into memory, then commits it; if r fails
// or ctx is done first, nothing is committed.
func (s *Store) Put(ctx context.Context, meta remote.Meta, r io.Reader) (remote.Meta, error) {
	s.writes.Add(1)
	if err := tiercache.ValidateStoredKey(meta.Key); err != nil {
		return remote.Meta{}, err
	}
	if r == nil || meta.Size < 0 || meta.Files < 0 {
		return remote.Meta{}, fmt.Errorf("%w: memstore: put key %q: nil reader or negative size or file count", tiercache.ErrInvalidArgument, meta.Key)
	}
	if err := tiercache.ValidatePaths(meta.Paths); err != nil {
		return remote.Meta{}, fmt.Errorf("memstore: put key %q: %w", meta.Key, err)
	}
	data, err := io.ReadAll(ctxReader{ctx, s.copying(r)})
	if err == nil {
		// The reader may have finished just as ctx ended: a cancelled
		// Put commits nothing either way.
		err = ctx.Err()
	}
	if err != nil {
		return remote.Meta{}, fmt.Errorf("memstore: put key %q: %w", meta.Key, err)
	}
	digest, claimed, err := remote.ReaderDigest(r)
	if err != nil {
		return remote.Meta{}, fmt.Errorf("memstore: put key %q: %w", meta.Key, err)
	}
	if !claimed {
		sum := sha256.Sum256(data)
		digest = hex.EncodeToString(sum[:])
	}
	index, err := remote.ReaderIndex(r, int64(len(data)))
	if err != nil {
		return remote.Meta{}, fmt.Errorf("memstore: put key %q: %w", meta.Key, err)
	}
	now := time.Now().UTC()
	m := remote.Meta{
		Key:         meta.Key,
		Description: meta.Description,
		Paths:       slices.Clone(meta.Paths),
		Size:        meta.Size,
		Files:       meta.Files,
		ArchiveSize: int64(len(data)),
		SHA256:      digest,
		Index:       index,
		Signature:   remote.ReaderSignature(r),
		Created:     now,
		LastAccess:  now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions++
	s.entries[m.Key] = entry{meta: m, data: data, id: s.versions, committed: now}
	return m, nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Delete removes key's entry; a missing key is a no-op.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.writes.Add(1)
	if err := tiercache.ValidateStoredKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete key %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
	return nil
}

// DeleteVersion removes key's entry if it is the version v describes,
// checked and deleted under one lock.
func (s *Store) DeleteVersion(ctx context.Context, key string, v remote.Meta) (bool, error) {
	s.writes.Add(1)
	if err := tiercache.ValidateStoredKey(key); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memstore: delete key %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	switch {
	case !ok:
		return true, nil
	case !e.meta.SameVersion(v):
		return false, nil
	}
	delete(s.entries, key)
	return true, nil
}

// List returns the Meta of every entry whose key starts with prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]remote.Meta, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list prefix %q: %w", prefix, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []remote.Meta
	for k, e := range s.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, e.meta)
		}
	}
	return out, nil
}

// Keys returns every key starting with prefix, with when Put committed
// its version.
func (s *Store) Keys(ctx context.Context, prefix string) ([]remote.KeyTime, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list keys with prefix %q: %w", prefix, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []remote.KeyTime
	for k, e := range s.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, remote.KeyTime{Key: k, Committed: e.committed})
		}
	}
	return out, nil
}

// Touch sets key's LastAccess to now, every time: the store has no
// interval of its own. Touching a missing key does nothing.
func (s *Store) Touch(ctx context.Context, key string) error {
	s.writes.Add(1)
	if err := tiercache.ValidateStoredKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: touch key %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok {
		e.meta.LastAccess = time.Now().UTC()
		s.entries[key] = e
	}
	return nil
}

// Prune evicts the entries policy.Victims picks, and reports them to
// l.OnEvict once they are all gone. A Put never leaves orphaned data
// here, so there is nothing else to collect.
func (s *Store) Prune(ctx context.Context, l policy.Limits) (int, error) {
	s.writes.Add(1)
	if err := l.Validate(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: prune: %w", err)
	}
	victims, err := s.evict(l)
	if err != nil {
		return 0, err
	}
	// Reported without the lock, so that OnEvict may call the store.
	for _, it := range victims {
		l.Report(it)
	}
	return len(victims), nil
}

// evict removes the entries l evicts and returns them.
func (s *Store) evict(l policy.Limits) ([]policy.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]policy.Item, 0, len(s.entries))
	for k, e := range s.entries {
		items = append(items, policy.Item{Key: k, Size: e.meta.Size, LastAccess: e.meta.LastAccess})
	}
	victims, err := policy.Victims(items, l, time.Now())
	if err != nil {
		return nil, err
	}
	for _, it := range victims {
		delete(s.entries, it.Key)
	}
	return victims, nil
}
