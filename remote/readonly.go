package remote

import (
	"context"
	"fmt"
	"io"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
)

// ReadOnly returns a Store that reads through s and refuses every write
// (Put, Delete, DeleteVersion, Touch, Prune, and Check with Repair)
// with an error wrapping tiercache.ErrReadOnly, without calling s: no
// write request can leave the process through it. It is a Checker, and
// a RangeReader (never a BaseStore, whose Put would copy), if s is one.
// Wrapping a read-only Store again returns it as is.
func ReadOnly(s Store) Store {
	switch s.(type) {
	case readOnly, readOnlyChecker, readOnlyRange, readOnlyRangeChecker:
		return s
	}
	ro := readOnly{s}
	c, checks := s.(Checker)
	rr, ranges := s.(RangeReader)
	switch {
	case checks && ranges:
		return readOnlyRangeChecker{readOnlyChecker{ro, c}, rangeReads{rr}}
	case checks:
		return readOnlyChecker{ro, c}
	case ranges:
		return readOnlyRange{ro, rangeReads{rr}}
	}
	return ro
}

type readOnly struct{ Store }

var _ Store = readOnly{}

func refused(op, key string) error {
	if key == "" {
		return fmt.Errorf("%w: %s", tiercache.ErrReadOnly, op)
	}
	return fmt.Errorf("%w: %s key %q", tiercache.ErrReadOnly, op, key)
}

func (readOnly) Put(_ context.Context, m Meta, _ io.Reader) (Meta, error) {
	return Meta{}, refused("put", m.Key)
}

func (readOnly) Delete(_ context.Context, key string) error { return refused("delete", key) }

func (readOnly) DeleteVersion(_ context.Context, key string, _ Meta) (bool, error) {
	return false, refused("delete", key)
}

func (readOnly) Touch(_ context.Context, key string) error { return refused("record access to", key) }

func (readOnly) Prune(context.Context, policy.Limits) (int, error) { return 0, refused("prune", "") }

type readOnlyChecker struct {
	readOnly
	c Checker
}

var _ Checker = readOnlyChecker{}

func (r readOnlyChecker) Check(ctx context.Context, opts CheckOptions) (tiercache.CheckReport, error) {
	if opts.Repair {
		return tiercache.CheckReport{}, refused("check with repair", "")
	}
	return r.c.Check(ctx, opts)
}

// rangeReads passes range reads through, for readOnlyRange and
// readOnlyRangeChecker. The RangeReader is a named field, not embedded:
// embedded, its Put and Delete would be promoted over readOnly's
// refusals.
type rangeReads struct{ rr RangeReader }

func (r rangeReads) OpenVersion(ctx context.Context, key string) (Base, error) {
	return r.rr.OpenVersion(ctx, key)
}

func (r rangeReads) ReadBase(ctx context.Context, b Base, off, n int64) ([]byte, error) {
	return r.rr.ReadBase(ctx, b, off, n)
}

type readOnlyRange struct {
	readOnly
	rangeReads
}

type readOnlyRangeChecker struct {
	readOnlyChecker
	rangeReads
}

var (
	_ RangeReader = readOnlyRange{}
	_ RangeReader = readOnlyRangeChecker{}
)
