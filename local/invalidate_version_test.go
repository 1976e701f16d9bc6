package local

import (
	"errors"
	"strings"
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

// TestInvalidateUnlessArchive: InvalidateUnless keeps the current
// version only if it is the archive named, removes any other (an archive
// of other bytes, a tree alone), leaves other keys alone, and removes
// nothing from a key without an entry.
func TestInvalidateUnlessArchive(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	a := putArchive(t, c, "k", smallSrc(t, "a"))
	b := putArchive(t, c, "other", smallSrc(t, "b"))

	if gone, err := c.InvalidateUnless(ctx, "k", strings.ToUpper(a.SHA256), a.ArchiveSize); gone || err != nil {
		t.Fatalf("InvalidateUnless(k, its own archive) = %v, %v; want it kept", gone, err)
	}
	if _, ok := lookup(t, c, "k"); !ok {
		t.Fatal("InvalidateUnless removed the archive it was given")
	}
	if gone, err := c.InvalidateUnless(ctx, "k", a.SHA256, a.ArchiveSize+1); !gone || err != nil {
		t.Fatalf("InvalidateUnless(k, another size) = %v, %v; want it removed", gone, err)
	}
	if _, ok := lookup(t, c, "k"); ok {
		t.Fatal("InvalidateUnless kept an archive of another size")
	}
	if gone, err := c.InvalidateUnless(ctx, "k", a.SHA256, a.ArchiveSize); gone || err != nil {
		t.Fatalf("InvalidateUnless(k, no entry) = %v, %v; want nothing removed", gone, err)
	}
	if _, ok := lookup(t, c, "other"); !ok {
		t.Fatal("InvalidateUnless of k removed another key")
	}

	if _, err := c.Put(ctx, "tree", smallSrc(t, "t"), "tree alone"); err != nil {
		t.Fatal(err)
	}
	if gone, err := c.InvalidateUnless(ctx, "tree", b.SHA256, b.ArchiveSize); !gone || err != nil {
		t.Fatalf("InvalidateUnless(a tree alone) = %v, %v; want it removed", gone, err)
	}
	if _, ok := lookup(t, c, "tree"); ok {
		t.Fatal("InvalidateUnless kept a tree alone")
	}
}
