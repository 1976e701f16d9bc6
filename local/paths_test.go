package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
)

// TestMetaPaths: versions of up to MaxPaths paths record meta.json format
// 1, which releases that allowed only LegacyMaxPaths read as well (they
// restore such a version; only their remote tier's manifests need a new
// format), and read back. Paths within the limits whose JSON would be too
// large to read back are refused before anything is stored.
func TestMetaPaths(t *testing.T) {
	c := open(t, Options{})
	ctx := t.Context()
	src := smallSrc(t, "a")
	put := func(key string, paths []string) error {
		_, err := c.PutArchive(ctx, key, Info{Paths: paths}, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
			return archive.Write(ctx, w, src, archive.WriteOptions{})
		})
		return err
	}
	pathsOf := func(n int) []string {
		p := make([]string, n)
		for i := range p {
			p[i] = fmt.Sprintf("packages/p%04d/node_modules", i)
		}
		return p
	}
	for _, c2 := range []struct {
		paths  int
		format float64
	}{{1, 1}, {tiercache.LegacyMaxPaths + 1, 1}, {tiercache.MaxPaths, 1}} {
		key := fmt.Sprintf("paths-%d", c2.paths)
		if err := put(key, pathsOf(c2.paths)); err != nil {
			t.Fatalf("PutArchive of %d paths: %v", c2.paths, err)
		}
		var format any
		editMeta(t, c, key, func(m map[string]any) { format = m["format"] })
		if format != c2.format {
			t.Errorf("%d paths: meta.json format %v, want %v", c2.paths, format, c2.format)
		}
		l, ok, err := c.Lookup(ctx, key)
		if err != nil || !ok || !slices.Equal(l.Entry.Paths, pathsOf(c2.paths)) {
			t.Errorf("Lookup of %d paths = %d paths, %v, %v", c2.paths, len(l.Entry.Paths), ok, err)
		}
	}

	escaped := make([]string, tiercache.MaxPaths)
	for i := range escaped {
		escaped[i] = fmt.Sprintf("p%04d/", i) + strings.Repeat("<", tiercache.MaxPathsLen/tiercache.MaxPaths-6)
	}
	if err := put("escaped", escaped); !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), "description and paths") {
		t.Errorf("PutArchive of paths too large encoded: %v; want ErrInvalidArgument naming them", err)
	}
	if _, ok, err := c.Lookup(ctx, "escaped"); ok || err != nil {
		t.Errorf("the refused put left an entry: %v, %v", ok, err)
	}
}
