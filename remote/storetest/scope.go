package storetest

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/tiertest"
)

// invalidStoredKeys are keys every store refuses: the invalid plain keys
// that are not stored keys of a scope either, and stored keys whose
// scope or key part is missing or invalid.
func invalidStoredKeys() []string {
	var keys []string
	for _, k := range tiertest.InvalidKeys() {
		if tiercache.ValidateStoredKey(k) != nil {
			keys = append(keys, k)
		}
	}
	return append(keys, "\x00k", "scope\x00", "scope\x00k\x00", "\x00", "bad\nscope\x00k",
		strings.Repeat("s", tiercache.MaxScopeLen+1)+"\x00k")
}

func inScope(t *testing.T, st remote.Store, scope string) remote.Store {
	t.Helper()
	v, err := remote.InScope(st, scope)
	if err != nil {
		t.Fatalf("InScope(%q): %v", scope, err)
	}
	return v
}

// testScopes: entries of one key in different scopes are separate entries
// of one store; a scope's view (remote.InScope) reads, lists and deletes
// (Delete, DeleteVersion) only its own, in plain keys; the store itself lists them all under their
// stored keys.
func (s *suite) testScopes(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	const mainScope, prScope = "refs/heads/main", "pr-1"
	scopes := map[string]remote.Store{
		"":        inScope(t, st, ""),
		mainScope: inScope(t, st, mainScope),
		prScope:   inScope(t, st, prScope),
	}
	data := func(scope, key string) []byte { return []byte(scope + "|" + key) }
	put := map[string][]string{
		"":        {"k", "pr-1", "pr-1x"}, // keys that are, or start with, a scope's name
		mainScope: {"k", "k/sub", "other"},
		prScope:   {"k", "x"},
	}
	for scope, keys := range put {
		for _, k := range keys {
			got := mustPut(t, scopes[scope], remote.Meta{Key: k, Description: scope}, data(scope, k))
			if got.Key != k || got.Scope != scope {
				t.Errorf("Put(%q) in scope %q returned key %q, scope %q", k, scope, got.Key, got.Scope)
			}
		}
	}
	for scope, keys := range put {
		v := scopes[scope]
		for _, k := range keys {
			b, m := mustRead(t, v, k)
			if !bytes.Equal(b, data(scope, k)) || m.Key != k || m.Scope != scope || m.Description != scope {
				t.Errorf("scope %q key %q: read %q, meta key %q scope %q description %q", scope, k, b, m.Key, m.Scope, m.Description)
			}
		}
		if got := keysOf(t, v, ""); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
			t.Errorf("List in scope %q = %q, want %q", scope, got, keys)
		}
		metas, err := v.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metas {
			if m.Scope != scope {
				t.Errorf("List in scope %q returned %q of scope %q", scope, m.Key, m.Scope)
			}
		}
	}
	if got := keysOf(t, scopes[""], "pr"); !slices.Equal(got, []string{"pr-1", "pr-1x"}) {
		t.Errorf("List(%q) in the default scope = %q: another scope's entries leaked in", "pr", got)
	}
	if got := keysOf(t, scopes[mainScope], "k"); !slices.Equal(got, []string{"k", "k/sub"}) {
		t.Errorf("List(%q) in scope %q = %q", "k", mainScope, got)
	}
	mustMiss(t, scopes[prScope], "other")
	mustMiss(t, scopes[mainScope], "x")
	// The store holds them all, under their stored keys.
	var all []string
	for scope, keys := range put {
		for _, k := range keys {
			all = append(all, tiercache.ScopedKey(scope, k))
		}
	}
	assertKeys(t, st, all...)
	if b, _ := mustRead(t, st, tiercache.ScopedKey(mainScope, "k")); !bytes.Equal(b, data(mainScope, "k")) {
		t.Errorf("the stored key of scope %q's %q reads %q", mainScope, "k", b)
	}

	// Deleting in one scope leaves the others' entries of the key.
	if err := scopes[prScope].Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, scopes[prScope], "k")
	for _, scope := range []string{"", mainScope} {
		if b, _ := mustRead(t, scopes[scope], "k"); !bytes.Equal(b, data(scope, "k")) {
			t.Errorf("after a delete in scope %q, scope %q's k reads %q", prScope, scope, b)
		}
	}

	// DeleteVersion too: main's version of k is not the default
	// scope's, and deleting it in main's view leaves the other scope's.
	mainK, err := scopes[mainScope].Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if gone, err := scopes[""].DeleteVersion(ctx, "k", mainK); gone || err != nil {
		t.Errorf("DeleteVersion in the default scope of scope %q's version of k: gone %v, %v; want kept", mainScope, gone, err)
	}
	if gone, err := scopes[mainScope].DeleteVersion(ctx, "k", mainK); !gone || err != nil {
		t.Errorf("DeleteVersion in scope %q of its version of k: gone %v, %v; want gone", mainScope, gone, err)
	}
	mustMiss(t, scopes[mainScope], "k")
	if b, _ := mustRead(t, scopes[""], "k"); !bytes.Equal(b, data("", "k")) {
		t.Errorf("after DeleteVersion in scope %q, the default scope's k reads %q", mainScope, b)
	}

	// A view takes plain keys only: a stored key is not one.
	for _, k := range []string{tiercache.ScopedKey(prScope, "x"), "a\x00b"} {
		if _, err := scopes[""].Stat(ctx, k); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Stat(%q) in a view: %v, want ErrInvalidKey", k, err)
		}
		if _, err := scopes[mainScope].Put(ctx, remote.Meta{Key: k}, strings.NewReader("x")); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("Put(%q) in a view: %v, want ErrInvalidKey", k, err)
		}
	}
	for _, bad := range []string{"a\nb", strings.Repeat("s", tiercache.MaxScopeLen+1)} {
		if _, err := remote.InScope(st, bad); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("InScope(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// signedReader yields data and claims sig as its signature.
type signedReader struct {
	io.Reader
	sig *tiercache.Signature
}

func (r *signedReader) Signature() *tiercache.Signature { return r.sig }

// testSigned: the signature a reader claims (remote.Signed) is recorded as
// is and returned by Put, Stat, Open and List, for a one-part and a
// multipart upload; an entry put without one has none.
func (s *suite) testSigned(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	sig := &tiercache.Signature{Key: bytes.Repeat([]byte{7}, 32), Sig: bytes.Repeat([]byte{9}, 64)}
	same := func(got *tiercache.Signature) bool {
		return got != nil && bytes.Equal(got.Key, sig.Key) && bytes.Equal(got.Sig, sig.Sig)
	}
	for i, n := range []int{100, bigSize} {
		data := randBytes(uint64(80+i), n)
		key := "signed/" + string(rune('a'+i))
		got, err := st.Put(ctx, remote.Meta{Key: key}, &signedReader{Reader: bytes.NewReader(data), sig: sig})
		if err != nil || !same(got.Signature) {
			t.Fatalf("%s: Put = %+v, %v; want the signature recorded", key, got.Signature, err)
		}
		if _, m := mustRead(t, st, key); !same(m.Signature) {
			t.Errorf("%s: Open's meta has signature %+v", key, m.Signature)
		}
		if m, err := st.Stat(ctx, key); err != nil || !same(m.Signature) {
			t.Errorf("%s: Stat = %+v, %v", key, m.Signature, err)
		}
	}
	metas, err := st.List(ctx, "signed/")
	if err != nil || len(metas) != 2 {
		t.Fatalf("List = %d, %v", len(metas), err)
	}
	for _, m := range metas {
		if !same(m.Signature) {
			t.Errorf("List: %s has signature %+v", m.Key, m.Signature)
		}
	}
	if got := mustPut(t, st, remote.Meta{Key: "signed/a"}, []byte("unsigned now")); got.Signature != nil {
		t.Errorf("an unsigned put over a signed entry kept signature %+v", got.Signature)
	}
	if m, err := st.Stat(ctx, "signed/a"); err != nil || m.Signature != nil {
		t.Errorf("Stat after the unsigned put: %+v, %v", m.Signature, err)
	}
}
