package memstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
	"github.com/tiercache/tiercache/remote/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) remote.Store { return memstore.New() })
}

// TestKnobs checks what the tiered tests rely on beyond the contract.
func TestKnobs(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	if _, err := s.Put(ctx, remote.Meta{Key: "k"}, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	// Every write call counts, failed ones included.
	writes := s.Writes()
	_ = s.Touch(ctx, "k")
	_ = s.Touch(ctx, "")
	_ = s.Delete(ctx, "missing")
	_, _ = s.Prune(ctx, policy.Limits{MaxEntries: -1})
	if n := s.Writes() - writes; n != 4 {
		t.Errorf("%d write calls counted, want 4", n)
	}
	opens := s.Opens()
	for _, k := range []string{"k", "missing"} {
		if rc, _, err := s.Open(ctx, k); err == nil {
			_ = rc.Close()
		}
	}
	if n := s.Opens() - opens; n != 2 {
		t.Errorf("%d opens counted, want 2", n)
	}

	s.Corrupt("k", func(b []byte) []byte { return append(b, '!') })
	s.Corrupt("missing", func(b []byte) []byte { return []byte("x") })
	rc, m, err := s.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(back) != "hello!" || m.ArchiveSize != 5 {
		t.Errorf("corrupted entry reads %q with archive size %d, want \"hello!\" and the committed 5", back, m.ArchiveSize)
	}
	s.CorruptMeta("k", func(m remote.Meta) remote.Meta { m.Size = 42; return m })
	s.CorruptMeta("missing", func(m remote.Meta) remote.Meta { return m })
	if m, err := s.Stat(ctx, "k"); err != nil || m.Size != 42 || m.ArchiveSize != 5 {
		t.Errorf("after CorruptMeta: %+v, %v; want size 42, archive size 5", m, err)
	}
	if _, err := s.Stat(ctx, "missing"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Corrupt or CorruptMeta of a missing key made an entry: %v", err)
	}

	// A delayed Open gives up when its context ends.
	s.SetOpenDelay(time.Hour)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Open(cctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("delayed Open with a cancelled context: %v", err)
	}
}

// TestStreamBoundToContext: cancelling Open's context fails the stream,
// and Read after Close fails.
func TestStreamBoundToContext(t *testing.T) {
	s := memstore.New()
	data := bytes.Repeat([]byte("x"), 1000)
	if _, err := s.Put(t.Context(), remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	rc, _, err := s.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
	_ = rc.Close()
	if _, err := rc.Read(buf); err == nil {
		t.Error("Read after Close succeeded")
	}
}
