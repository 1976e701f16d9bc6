package local

import (
	"errors"
	"testing"

	"github.com/tiercache/tiercache"
)

// TestInvalidateIfListedVersion: InvalidateIf removes an entry only at
// the version ListVersions found it: a version committed since stays
// current, a removed entry is not reported removed again, and the
// version of another key or scope removes nothing.
func TestInvalidateIfListedVersion(t *testing.T) {
	root := open(t, Options{})
	c, err := root.InScope("pr")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	put := func(key, tag string) {
		t.Helper()
		if _, err := c.Put(ctx, key, smallSrc(t, tag), tag); err != nil {
			t.Fatal(err)
		}
	}
	listed := func(key string) Version {
		t.Helper()
		ls, err := root.ListVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Key == key && l.Scope == "pr" {
				return l.Version
			}
		}
		t.Fatalf("ListVersions has no %q in scope pr", key)
		return Version{}
	}
	get := func(key string) (string, bool) {
		t.Helper()
		p, ok, err := c.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return p, ok
	}

	put("a", "old")
	put("b", "b")
	old, b := listed("a"), listed("b")
	put("a", "new")
	if ok, err := c.InvalidateIf(ctx, "a", old); ok || err != nil {
		t.Errorf("InvalidateIf(a, replaced version) = %v, %v; want nothing removed", ok, err)
	}
	if p, ok := get("a"); !ok {
		t.Fatal("InvalidateIf of a replaced version removed the newer one")
	} else {
		checkTag(t, p, "new")
	}
	if ok, err := c.InvalidateIf(ctx, "a", b); ok || err != nil {
		t.Errorf("InvalidateIf(a, b's version) = %v, %v; want nothing removed", ok, err)
	}
	if ok, err := root.InvalidateIf(ctx, "b", b); ok || err != nil {
		t.Errorf("InvalidateIf(b in the default scope, b's version in pr) = %v, %v; want nothing removed", ok, err)
	}
	if _, ok := get("b"); !ok {
		t.Fatal("InvalidateIf with another key's or scope's version removed b")
	}

	cur := listed("a")
	if ok, err := c.InvalidateIf(ctx, "a", cur); !ok || err != nil {
		t.Errorf("InvalidateIf(a, its current version) = %v, %v; want it removed", ok, err)
	}
	if _, ok := get("a"); ok {
		t.Error("a is still there after InvalidateIf of its current version")
	}
	if ok, err := c.InvalidateIf(ctx, "a", cur); ok || err != nil {
		t.Errorf("InvalidateIf(a) again = %v, %v; want nothing removed", ok, err)
	}
	if ok, err := c.InvalidateIf(ctx, "b", Version{}); ok || !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("InvalidateIf(b, no version) = %v, %v; want ErrInvalidArgument", ok, err)
	}
	if _, ok := get("b"); !ok {
		t.Fatal("b is gone")
	}
}
