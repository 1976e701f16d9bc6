package s3

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// TestManifestVersionByPaths: an entry of up to LegacyMaxPaths paths is
// committed in manifest version 1, which releases from before the limit
// was raised read; one of more in version 2, which they pass over as a
// newer tiercache's instead of failing to store it locally. Both read
// back here, and a manifest recording more paths than any tiercache
// writes is refused as damaged.
func TestManifestVersionByPaths(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	pathsOf := func(n int) []string {
		p := make([]string, n)
		for i := range p {
			p[i] = fmt.Sprintf("packages/p%04d/node_modules", i)
		}
		return p
	}
	for _, c := range []struct {
		paths   int
		version float64
	}{{1, 1}, {tiercache.LegacyMaxPaths, 1}, {tiercache.LegacyMaxPaths + 1, 2}, {tiercache.MaxPaths, 2}} {
		key := fmt.Sprintf("paths-%d", c.paths)
		if _, err := s.Put(bg, remote.Meta{Key: key, Paths: pathsOf(c.paths)}, strings.NewReader("tree of "+key)); err != nil {
			t.Fatalf("Put of %d paths: %v", c.paths, err)
		}
		var version any
		e.rewriteManifest(t, key, func(m map[string]any) { version = m["version"] })
		if version != c.version {
			t.Errorf("%d paths: manifest version %v, want %v", c.paths, version, c.version)
		}
		rc, meta, err := s.Open(bg, key)
		if err != nil {
			t.Fatalf("Open of %d paths: %v", c.paths, err)
		}
		_ = rc.Close()
		if !slices.Equal(meta.Paths, pathsOf(c.paths)) {
			t.Errorf("%d paths: read back %d paths", c.paths, len(meta.Paths))
		}
	}

	e.rewriteManifest(t, "paths-1", func(m map[string]any) {
		m["meta"].(map[string]any)["paths"] = pathsOf(tiercache.MaxPaths + 1)
	})
	_, _, err := s.Open(bg, "paths-1")
	if !errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), "paths") {
		t.Errorf("Open of a manifest of %d paths: %v; want an integrity error naming the paths", tiercache.MaxPaths+1, err)
	}
}
