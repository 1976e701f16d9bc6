package local

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/tiertest"
)

func inScope(t *testing.T, c *Cache, scope string) *Cache {
	t.Helper()
	v, err := c.InScope(scope)
	if err != nil {
		t.Fatalf("InScope(%q): %v", scope, err)
	}
	return v
}

// TestConformanceScoped: a scope's view is a Backend like the cache.
func TestConformanceScoped(t *testing.T) {
	tiertest.Run(t, func(t *testing.T) tiercache.Backend { return inScope(t, open(t, Options{}), "refs/heads/main") })
}

// TestScopes: one key in three scopes is three entries, each found only
// in its scope; List, Stats and Prune see them all, named by scope; the
// signature an entry was stored with comes back with it.
func TestScopes(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	scopes := []string{"", "refs/heads/main", "pr-1"}
	sig := &tiercache.Signature{Key: bytes.Repeat([]byte{1}, 32), Sig: bytes.Repeat([]byte{2}, 64)}
	for i, scope := range scopes {
		v := inScope(t, c, scope)
		src := srcDir(t)
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(scope), 0o644); err != nil {
			t.Fatal(err)
		}
		info := Info{Description: scope}
		if i == 1 {
			info.Signature = sig
		}
		if _, err := v.PutArchive(ctx, "k", info, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
			return archive.Write(ctx, w, src, archive.WriteOptions{})
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // an order for Prune
	}
	for i, scope := range scopes {
		v := inScope(t, c, scope)
		p, ok, err := v.Get(ctx, "k")
		if err != nil || !ok {
			t.Fatalf("Get in scope %q: %v, %v", scope, ok, err)
		}
		if b, _ := os.ReadFile(filepath.Join(p, "f")); string(b) != scope {
			t.Errorf("scope %q's k holds %q", scope, b)
		}
		s, ok, err := v.Lookup(ctx, "k")
		if err != nil || !ok || s.Entry.Scope != scope {
			t.Fatalf("Lookup in scope %q: %+v, %v, %v", scope, s.Entry, ok, err)
		}
		if got := s.Entry.Signature; (i == 1) != (got != nil) || (got != nil && !bytes.Equal(got.Sig, sig.Sig)) {
			t.Errorf("scope %q: signature %+v", scope, got)
		}
	}
	if _, ok, _ := inScope(t, c, "pr-2").Get(ctx, "k"); ok {
		t.Error("a scope that stored nothing found k")
	}
	entries, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Scope+"|"+e.Key)
	}
	slices.Sort(got)
	if want := []string{"pr-1|k", "refs/heads/main|k", "|k"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}

	if err := inScope(t, c, "pr-1").Invalidate(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := inScope(t, c, "pr-1").Get(ctx, "k"); ok {
		t.Error("k still found in scope pr-1 after its Invalidate")
	}
	for _, scope := range scopes[:2] {
		if _, ok, _ := inScope(t, c, scope).Get(ctx, "k"); !ok {
			t.Errorf("Invalidate in pr-1 removed scope %q's k", scope)
		}
	}
	// Prune ranks every scope's entries together: the least recently
	// used goes, whatever its scope.
	time.Sleep(20 * time.Millisecond)
	if _, _, err := inScope(t, c, "refs/heads/main").Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n, err := inScope(t, c, "pr-9").Prune(ctx, 1, 0); err != nil || n != 1 {
		t.Fatalf("Prune to one entry evicted %d, %v", n, err)
	}
	if _, ok, _ := c.Get(ctx, "k"); ok {
		t.Error("Prune kept the default scope's k, the least recently used")
	}
	if _, ok, _ := inScope(t, c, "refs/heads/main").Get(ctx, "k"); !ok {
		t.Error("Prune evicted the most recently used entry")
	}
	if _, err := c.InScope("bad\nscope"); err == nil {
		t.Error("InScope took an invalid scope")
	}
}
