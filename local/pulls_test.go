package local

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPullRecords: LastPull returns what NotePull last recorded for the
// same paths, however they are spelled, and nothing for other paths.
func TestPullRecords(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "cache"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if _, _, ok, err := c.LastPull([]string{a}); ok || err != nil {
		t.Fatalf("LastPull before any pull: %v %v", ok, err)
	}
	for _, k := range []string{"deps-1", "deps-2"} {
		if err := c.NotePull([]string{a}, "", k); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.NotePull([]string{a, b}, "refs/heads/main", "two"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		paths       []string
		scope, want string
	}{
		{[]string{a}, "", "deps-2"},
		{[]string{filepath.Join(dir, "x", "..", "a") + string(filepath.Separator)}, "", "deps-2"},
		{[]string{a, b}, "refs/heads/main", "two"},
		{[]string{b, a}, "", ""},
		{[]string{b}, "", ""},
	} {
		scope, got, ok, err := c.LastPull(tc.paths)
		if err != nil || got != tc.want || scope != tc.scope || ok != (tc.want != "") {
			t.Errorf("LastPull(%q) = %q, %q, %v, %v; want %q, %q", tc.paths, scope, got, ok, err, tc.scope, tc.want)
		}
	}
	if err := c.NotePull([]string{a}, "", "bad/../key\x00"); err == nil {
		t.Error("NotePull took an invalid key")
	}
	if err := c.NotePull([]string{a}, "bad\nscope", "k"); err == nil {
		t.Error("NotePull took an invalid scope")
	}
}

// TestPullRecordTempsSwept: a temporary pull record left by a killed
// pull is removed by a sweep once older than the grace, a young one and
// the records themselves are kept.
func TestPullRecordTempsSwept(t *testing.T) {
	const grace = time.Minute
	c, err := Open(filepath.Join(t.TempDir(), "cache"), Options{Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "a")
	if err := c.NotePull([]string{dir}, "", "deps-1"); err != nil {
		t.Fatal(err)
	}
	pulls := filepath.Join(c.root, pullsDir)
	stale, young := filepath.Join(pulls, markerTmp+"1"), filepath.Join(pulls, markerTmp+"2")
	for _, p := range []string{stale, young} {
		if err := os.WriteFile(p, []byte("deps-0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * grace)
	if err := os.Chtimes(stale, long, long); err != nil {
		t.Fatal(err)
	}
	if err := c.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a stale temporary pull record survived the sweep: %v", err)
	}
	if _, err := os.Lstat(young); err != nil {
		t.Errorf("a young temporary pull record was swept: %v", err)
	}
	if _, k, ok, err := c.LastPull([]string{dir}); !ok || err != nil || k != "deps-1" {
		t.Errorf("LastPull after the sweep: %q %v %v", k, ok, err)
	}
}
