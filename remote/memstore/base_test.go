package memstore_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
	"github.com/tiercache/tiercache/remote/storetest"
)

func TestBaseConformance(t *testing.T) {
	storetest.RunBase(t, func(t *testing.T) remote.BaseStore { return memstore.New() })
}

func randBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// putBase stores data under key and opens it as a base.
func putBase(t *testing.T, s *memstore.Store, key string, data []byte) remote.Base {
	t.Helper()
	if _, err := s.Put(t.Context(), remote.Meta{Key: key}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	b, err := s.OpenBase(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBaseGoneStrictly: where the contract lets a store keep a replaced
// version readable for a while, this one drops it at once, so tests
// over it see the harder case.
func TestBaseGoneStrictly(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	v1 := randBytes(1, 1000)
	b1 := putBase(t, s, "k", v1)
	b2 := putBase(t, s, "k", v1) // the same bytes, another version
	if b1.Ref == b2.Ref {
		t.Fatalf("two versions share the Ref %q", b1.Ref)
	}
	if _, err := s.ReadBase(ctx, b1, 0, 10); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("ReadBase of a replaced version: %v, want ErrNotFound", err)
	}
	ru := storetest.NewReuser(b1, v1, storetest.Span{N: 1000})
	if _, err := s.Put(ctx, remote.Meta{Key: "new"}, ru); err != nil {
		t.Fatal(err)
	}
	if total, _ := ru.Copies(); total != 0 {
		t.Errorf("copied %d bytes from a replaced version", total)
	}
	if f := ru.Failures(); len(f) != 1 || !errors.Is(f[0], tiercache.ErrNotFound) {
		t.Errorf("copy failures %v, want one ErrNotFound", f)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBase(ctx, b2, 0, 10); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("ReadBase of a deleted version: %v, want ErrNotFound", err)
	}
	if _, err := s.ReadBase(ctx, remote.Base{Ref: "not a ref"}, 0, 10); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("ReadBase of a foreign Ref: %v, want ErrInvalidArgument", err)
	}
}

// deletingReuser deletes its base's key before the first read after it
// has yielded after bytes: the base goes in the middle of the put.
type deletingReuser struct {
	*storetest.Reuser
	t     *testing.T
	s     *memstore.Store
	after int
	read  int
	// deletedAt is how many bytes had been read when the base went.
	deletedAt int
}

func (d *deletingReuser) Read(p []byte) (int, error) {
	if d.after > 0 && d.read >= d.after {
		d.after, d.deletedAt = 0, d.read
		if err := d.s.Delete(d.t.Context(), d.Base().Meta.Key); err != nil {
			d.t.Error(err)
		}
	}
	n, err := d.Reuser.Read(p)
	d.read += n
	return n, err
}

// TestBaseGoneMidPut: copies stop when the base goes, once, and the put
// commits the stream.
func TestBaseGoneMidPut(t *testing.T) {
	s := memstore.New()
	base := randBytes(2, 4<<20)
	b := putBase(t, s, "base", base)
	ru := storetest.NewReuser(b, base, storetest.Span{N: int64(len(base))})
	r := &deletingReuser{Reuser: ru, t: t, s: s, after: 2 << 20}
	m, err := s.Put(t.Context(), remote.Meta{Key: "new"}, r)
	if err != nil {
		t.Fatal(err)
	}
	if total, _ := ru.Copies(); r.deletedAt == 0 || total != int64(r.deletedAt) {
		t.Errorf("copied %d bytes, want the %d read before the base went", total, r.deletedAt)
	}
	if f := ru.Failures(); len(f) != 1 || !errors.Is(f[0], tiercache.ErrNotFound) {
		t.Errorf("copy failures %v, want one ErrNotFound", f)
	}
	if m.ArchiveSize != int64(len(base)) || m.SHA256 != b.Meta.SHA256 {
		t.Errorf("committed %+v, want the base's archive", m)
	}
}

// TestCopyChecksRuns: a reader that reports runs its stream does not
// repeat fails the put with ErrIntegrity and commits nothing, where a
// real server-side copy would store the base's bytes.
func TestCopyChecksRuns(t *testing.T) {
	s := memstore.New()
	base := randBytes(3, 3<<20)
	b := putBase(t, s, "base", base)
	data := bytes.Clone(base)
	data[2<<20] ^= 1
	for name, span := range map[string]storetest.Span{
		"a changed byte":     {N: int64(len(data))},
		"a shifted base":     {Off: 0, BaseOff: 1, N: 1 << 20},
		"a run past the end": {Off: 1 << 20, BaseOff: 2 << 20, N: 2 << 20},
	} {
		ru := storetest.NewReuser(b, data, span)
		if _, err := s.Put(t.Context(), remote.Meta{Key: "new"}, ru); !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("%s: Put: %v, want ErrIntegrity", name, err)
		}
		if _, err := s.Stat(t.Context(), "new"); !errors.Is(err, tiercache.ErrNotFound) {
			t.Errorf("%s: a failed Put committed: %v", name, err)
		}
	}
}

// TestSetCopyRefused: with copies refused, a put through a Reuser calls
// CopyFailed once with the error and copies nothing; cleared, it copies.
func TestSetCopyRefused(t *testing.T) {
	s := memstore.New()
	base := randBytes(4, 2<<20)
	b := putBase(t, s, "base", base)
	refused := errors.New("copies not implemented")
	s.SetCopyRefused(refused)
	ru := storetest.NewReuser(b, base, storetest.Span{N: int64(len(base))})
	m, err := s.Put(t.Context(), remote.Meta{Key: "new"}, ru)
	if err != nil || m.SHA256 != b.Meta.SHA256 {
		t.Fatalf("Put with copies refused: %+v, %v", m, err)
	}
	if total, _ := ru.Copies(); total != 0 {
		t.Errorf("copied %d bytes with copies refused", total)
	}
	if f := ru.Failures(); len(f) != 1 || !errors.Is(f[0], refused) {
		t.Errorf("copy failures %v, want one, the refusal", f)
	}

	s.SetCopyRefused(nil)
	ru = storetest.NewReuser(b, base, storetest.Span{N: int64(len(base))})
	if _, err := s.Put(t.Context(), remote.Meta{Key: "new"}, ru); err != nil {
		t.Fatal(err)
	}
	if total, _ := ru.Copies(); total != int64(len(base)) || len(ru.Failures()) != 0 {
		t.Errorf("after clearing the refusal: copied %d of %d bytes, failures %v", total, len(base), ru.Failures())
	}
}
