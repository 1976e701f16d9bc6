package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// missingCacheDir returns e with TIERCACHE_DIR in a directory that does
// not exist, and a check that neither was created.
func missingCacheDir(t *testing.T, e env) (env, func(what string)) {
	parent := filepath.Join(t.TempDir(), "missing")
	e = e.with("TIERCACHE_DIR", filepath.Join(parent, "cache"))
	return e, func(what string) {
		t.Helper()
		if _, err := os.Lstat(parent); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s made the cache directory (or its parent): %v", what, err)
		}
	}
}

// TestLookupOnlyMakesNoCacheDir: pull --lookup-only without a remote
// reports a miss and leaves a missing local tier uncreated.
func TestLookupOnlyMakesNoCacheDir(t *testing.T) {
	e, absent := missingCacheDir(t, newEnv(t))
	dst := filepath.Join(t.TempDir(), "dst")
	r := mustCLI(t, e, "pull", "--lookup-only", "k-1", dst)
	absent("pull --lookup-only")
	if !strings.Contains(r.stderr, `miss: nothing stored under "k-1" (lookup only) (local only: no remote configured)`) {
		t.Errorf("pull --lookup-only: stderr %q, want a lookup-only miss", r.stderr)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pull --lookup-only made DIR: %v", err)
	}
}
