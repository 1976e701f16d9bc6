package remote

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
)

// InScope returns a view of s that holds the entries of one scope (see
// tiercache.ScopedKey): its methods take and return plain keys, which it
// stores in s under their stored keys, and its List and Keys see only
// the scope's entries, with one listing of s each. Every Meta it returns
// has Scope set to scope. In the default scope "" it only hides the
// other scopes from List and Keys. Prune is s's: it ranks every scope's entries
// together, as one bucket's budget. The view is a BaseStore, or a
// RangeReader, if s is one; a Base it returns names the plain key in
// its Meta too.
func InScope(s Store, scope string) (Store, error) {
	if err := tiercache.ValidateScope(scope); err != nil {
		return nil, err
	}
	v := scoped{s: s, scope: scope}
	if bs, ok := s.(BaseStore); ok {
		return scopedBase{scopedRange{v, bs}, bs}, nil
	}
	if rr, ok := s.(RangeReader); ok {
		return scopedRange{v, rr}, nil
	}
	return v, nil
}

type scoped struct {
	s     Store
	scope string
}

var _ Store = scoped{}

// stored returns key's stored key in the view's scope, after checking
// key is a plain key (a stored key of another scope is not one).
func (v scoped) stored(key string) (string, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return "", err
	}
	return tiercache.ScopedKey(v.scope, key), nil
}

// plain turns a Meta from s into the view's: m.Key's scope must be the
// view's.
func (v scoped) plain(m Meta) (Meta, bool) {
	scope, key := tiercache.SplitStoredKey(m.Key)
	if scope != v.scope {
		return Meta{}, false
	}
	m.Key, m.Scope = key, scope
	return m, true
}

func (v scoped) fromStore(m Meta, err error) (Meta, error) {
	if err != nil {
		return Meta{}, err
	}
	pm, ok := v.plain(m)
	if !ok {
		return Meta{}, fmt.Errorf("%w: the store answered for key %q in scope %q", tiercache.ErrIntegrity, m.Key, v.scope)
	}
	return pm, nil
}

func (v scoped) Open(ctx context.Context, key string) (io.ReadCloser, Meta, error) {
	k, err := v.stored(key)
	if err != nil {
		return nil, Meta{}, err
	}
	rc, m, err := v.s.Open(ctx, k)
	if err != nil {
		if m.Key != "" && errors.Is(err, tiercache.ErrIntegrity) {
			// A damaged entry's Meta, for its removal (see Store.Open).
			if pm, ok := v.plain(m); ok {
				return nil, pm, err
			}
		}
		return nil, Meta{}, err
	}
	if m, err = v.fromStore(m, nil); err != nil {
		rc.Close()
		return nil, Meta{}, err
	}
	return rc, m, nil
}

func (v scoped) Stat(ctx context.Context, key string) (Meta, error) {
	k, err := v.stored(key)
	if err != nil {
		return Meta{}, err
	}
	return v.fromStore(v.s.Stat(ctx, k))
}

func (v scoped) Put(ctx context.Context, meta Meta, r io.Reader) (Meta, error) {
	k, err := v.stored(meta.Key)
	if err != nil {
		return Meta{}, err
	}
	meta.Key = k
	return v.fromStore(v.s.Put(ctx, meta, r))
}

func (v scoped) Delete(ctx context.Context, key string) error {
	k, err := v.stored(key)
	if err != nil {
		return err
	}
	return v.s.Delete(ctx, k)
}

func (v scoped) DeleteVersion(ctx context.Context, key string, m Meta) (bool, error) {
	k, err := v.stored(key)
	if err != nil {
		return false, err
	}
	return v.s.DeleteVersion(ctx, k, m)
}

func (v scoped) Touch(ctx context.Context, key string) error {
	k, err := v.stored(key)
	if err != nil {
		return err
	}
	return v.s.Touch(ctx, k)
}

// List lists the stored keys starting with the scope's stored prefix;
// in the default scope that also finds the scopes whose names start with
// prefix, which it drops.
func (v scoped) List(ctx context.Context, prefix string) ([]Meta, error) {
	if prefix != "" {
		if err := tiercache.ValidateKey(prefix); err != nil {
			return nil, err
		}
	}
	metas, err := v.s.List(ctx, tiercache.ScopedKey(v.scope, prefix))
	if err != nil {
		return nil, err
	}
	out := metas[:0]
	for _, m := range metas {
		if pm, ok := v.plain(m); ok {
			out = append(out, pm)
		}
	}
	return out, nil
}

// Keys is List's filter over s's Keys: the scope's keys, plain.
func (v scoped) Keys(ctx context.Context, prefix string) ([]KeyTime, error) {
	if prefix != "" {
		if err := tiercache.ValidateKey(prefix); err != nil {
			return nil, err
		}
	}
	kts, err := v.s.Keys(ctx, tiercache.ScopedKey(v.scope, prefix))
	if err != nil {
		return nil, err
	}
	out := kts[:0]
	for _, kt := range kts {
		if scope, key := tiercache.SplitStoredKey(kt.Key); scope == v.scope {
			out = append(out, KeyTime{Key: key, Committed: kt.Committed})
		}
	}
	return out, nil
}

func (v scoped) Prune(ctx context.Context, l policy.Limits) (int, error) { return v.s.Prune(ctx, l) }

type scopedRange struct {
	scoped
	rr RangeReader
}

var _ RangeReader = scopedRange{}

// version is OpenVersion, or OpenBase with open, in the view's scope.
func (v scopedRange) version(ctx context.Context, key string, open func(context.Context, string) (Base, error)) (Base, error) {
	k, err := v.stored(key)
	if err != nil {
		return Base{}, err
	}
	b, err := open(ctx, k)
	if err != nil {
		return Base{}, err
	}
	if b.Meta, err = v.fromStore(b.Meta, nil); err != nil {
		return Base{}, err
	}
	return b, nil
}

func (v scopedRange) OpenVersion(ctx context.Context, key string) (Base, error) {
	return v.version(ctx, key, v.rr.OpenVersion)
}

func (v scopedRange) ReadBase(ctx context.Context, b Base, off, n int64) ([]byte, error) {
	return v.rr.ReadBase(ctx, b, off, n)
}

type scopedBase struct {
	scopedRange
	bs BaseStore
}

var _ BaseStore = scopedBase{}

func (v scopedBase) OpenBase(ctx context.Context, key string) (Base, error) {
	return v.version(ctx, key, v.bs.OpenBase)
}
