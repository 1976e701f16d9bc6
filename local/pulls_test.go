package local

import (
	"path/filepath"
	"testing"
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
