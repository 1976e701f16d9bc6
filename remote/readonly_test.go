package remote_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// checkingStore is a Store that is also a Checker, counting checks.
type checkingStore struct {
	*memstore.Store
	checks []remote.CheckOptions
}

func (c *checkingStore) Check(_ context.Context, opts remote.CheckOptions) (tiercache.CheckReport, error) {
	c.checks = append(c.checks, opts)
	return tiercache.CheckReport{Entries: 1}, nil
}

// TestReadOnly: every write through the wrapper is refused without
// reaching the store, reads pass through, and a Checker stays one whose
// repairs are refused.
func TestReadOnly(t *testing.T) {
	ctx := t.Context()
	s := &checkingStore{Store: memstore.New()}
	want, err := s.Put(ctx, remote.Meta{Key: "k", Size: 4}, strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	ro := remote.ReadOnly(s)
	writes := s.Writes()
	for name, err := range map[string]error{
		"Put":    func() error { _, err := ro.Put(ctx, remote.Meta{Key: "k2"}, strings.NewReader("x")); return err }(),
		"Delete": ro.Delete(ctx, "k"),
		"Touch":  ro.Touch(ctx, "k"),
		"Prune":  func() error { _, err := ro.Prune(ctx, policy.Limits{MaxEntries: 0}); return err }(),
	} {
		if !errors.Is(err, tiercache.ErrReadOnly) {
			t.Errorf("%s: %v, want ErrReadOnly", name, err)
		}
	}
	if n := s.Writes() - writes; n != 0 {
		t.Errorf("%d refused writes reached the store", n)
	}

	rc, m, err := ro.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(back) != "data" || !reflect.DeepEqual(m, want) {
		t.Errorf("Open: %q, %+v", back, m)
	}
	if m, err := ro.Stat(ctx, "k"); err != nil || !reflect.DeepEqual(m, want) {
		t.Errorf("Stat: %+v, %v", m, err)
	}
	if l, err := ro.List(ctx, ""); err != nil || len(l) != 1 {
		t.Errorf("List: %+v, %v", l, err)
	}

	c, ok := ro.(remote.Checker)
	if !ok {
		t.Fatal("the read-only view of a Checker is not a Checker")
	}
	if _, err := c.Check(ctx, remote.CheckOptions{Repair: true}); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Errorf("Check with Repair: %v, want ErrReadOnly", err)
	}
	if r, err := c.Check(ctx, remote.CheckOptions{Deep: true}); err != nil || r.Entries != 1 {
		t.Errorf("Check: %+v, %v", r, err)
	}
	if len(s.checks) != 1 || !s.checks[0].Deep {
		t.Errorf("checks reaching the store: %+v, want the one deep check", s.checks)
	}

	if again := remote.ReadOnly(ro); again != ro {
		t.Error("wrapping a read-only store again made a new wrapper")
	}
	if _, ok := remote.ReadOnly(memstore.New()).(remote.Checker); ok {
		t.Error("the read-only view of a store without Check is a Checker")
	}

	// Range reads pass through (a pull reads only the frames it lacks);
	// copies do not, since they come with a Put.
	for _, v := range []remote.Store{ro, remote.ReadOnly(memstore.New())} {
		if _, ok := v.(remote.BaseStore); ok {
			t.Errorf("the read-only view %T is a BaseStore", v)
		}
	}
	rr, ok := ro.(remote.RangeReader)
	if !ok {
		t.Fatal("the read-only view of a RangeReader is not one")
	}
	b, err := rr.OpenVersion(ctx, "k")
	if err != nil || b.Meta.SHA256 != want.SHA256 {
		t.Fatalf("OpenVersion: %+v, %v", b, err)
	}
	if p, err := rr.ReadBase(ctx, b, 1, 2); err != nil || string(p) != "at" {
		t.Errorf("ReadBase: %q, %v", p, err)
	}
	if n := s.Writes() - writes; n != 0 {
		t.Errorf("%d writes reached the store", n)
	}
}
