package tiered

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPullPathsNestedSymlink: a pull may name a path inside another
// ("a" and "a/sub"). The entry's tree placed at "a" must not decide where
// "a/sub" goes: a symlink it holds at "sub" is refused, not followed out
// of "a", whether the inner path is a directory or a file, from every
// tier. Nested paths through real directories restore as before.
func TestPullPathsNestedSymlink(t *testing.T) {
	src := t.TempDir()
	outer, inner, file := filepath.Join(src, "outer"), filepath.Join(src, "inner"), filepath.Join(src, "config")
	for _, d := range []string{outer, inner} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(inner, "config"), []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	// From ws/outer/sub, ../../victim is ws's sibling.
	err := os.Symlink(filepath.Join("..", "..", "victim"), filepath.Join(outer, "sub"))
	if err == nil {
		_, err = os.Lstat(filepath.Join(outer, "sub")) // Wine may say yes and make none
	}
	linked := err == nil
	if !linked && !treetest.UnderWine() {
		t.Fatal(err)
	} // else only the nested pull through a directory, below
	store := memstore.New()
	pusher := newTiered(t, store, Options{})
	// The -rev entries record the inner path first: placing the outer
	// one after it would replace what it placed, through the symlink.
	for key, paths := range map[string][]string{"dir": {outer, inner}, "file": {outer, file}, "dir-rev": {inner, outer}, "file-rev": {file, outer}} {
		if _, err := pusher.PushPaths(t.Context(), key, paths, PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name string
		opts Options
		pull PullOptions
	}{
		{"cold", Options{}, PullOptions{}},
		{"link", Options{}, PullOptions{Link: true}},
		{"no-local", Options{NoLocal: true}, PullOptions{}},
	}
	for _, tc := range cases {
		if !linked {
			break
		}
		t.Run(tc.name, func(t *testing.T) {
			c := newTiered(t, store, tc.opts)
			for _, key := range []string{"dir", "file", "dir", "dir-rev", "file-rev"} { // the second "dir" from the local tier
				base := t.TempDir()
				victim := filepath.Join(base, "victim")
				if err := os.Mkdir(victim, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(victim, "config"), []byte("precious"), 0o644); err != nil {
					t.Fatal(err)
				}
				ws := filepath.Join(base, "ws", "outer")
				second := filepath.Join(ws, "sub")
				if strings.HasPrefix(key, "file") {
					second = filepath.Join(ws, "sub", "config")
				}
				paths := []string{ws, second}
				if strings.HasSuffix(key, "-rev") {
					paths = []string{second, ws}
				}
				_, _, err := c.PullPaths(t.Context(), key, nil, paths, tc.pull)
				if err == nil || !strings.Contains(err.Error(), "not followed") {
					t.Errorf("pull of %q into %s and %s: %v; want the symlink refused", key, ws, second, err)
				}
				if b, err := os.ReadFile(filepath.Join(victim, "config")); err != nil || string(b) != "precious" {
					t.Fatalf("pull of %q wrote outside its paths: victim/config = %q, %v", key, b, err)
				}
			}
		})
	}

	// Through a real directory, the inner path lands inside the outer.
	if err := os.Remove(filepath.Join(outer, "sub")); err != nil && linked {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outer, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := pusher.PushPaths(t.Context(), "real", []string{outer, inner}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(t.TempDir(), "outer")
	if _, ok, err := newTiered(t, store, Options{}).PullPaths(t.Context(), "real", nil, []string{ws, filepath.Join(ws, "sub")}, PullOptions{}); err != nil || !ok {
		t.Fatalf("nested pull through a directory: %v, %v", ok, err)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "sub", "config")); err != nil || string(b) != "planted" {
		t.Errorf("outer/sub/config = %q, %v", b, err)
	}

	// A symlink that was there before the pull is the caller's: a job
	// that keeps outer/sub elsewhere restores through it.
	if !linked {
		return
	}
	plain := filepath.Join(t.TempDir(), "outer")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := pusher.PushPaths(t.Context(), "own", []string{plain, inner}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	ws, elsewhere := filepath.Join(base, "outer"), filepath.Join(base, "elsewhere")
	for _, d := range []string{ws, elsewhere} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join("..", "elsewhere"), filepath.Join(ws, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := newTiered(t, store, Options{}).PullPaths(t.Context(), "own", nil, []string{ws, filepath.Join(ws, "sub")}, PullOptions{}); err != nil || !ok {
		t.Fatalf("nested pull through the caller's own symlink: %v, %v", ok, err)
	}
	if b, err := os.ReadFile(filepath.Join(elsewhere, "config")); err != nil || string(b) != "planted" {
		t.Errorf("elsewhere/config = %q, %v", b, err)
	}
}

// TestOuterFirstRealNesting: placement order follows where paths are,
// not how they are spelled: an inner path reached through the caller's
// symlink, spelled shorter than its outer path, is still placed after it.
func TestOuterFirstRealNesting(t *testing.T) {
	base := t.TempDir()
	outer := filepath.Join(base, "ws", "deep", "outer")
	if err := os.MkdirAll(outer, 0o755); err != nil {
		t.Fatal(err)
	}
	inners := []string{filepath.Join(outer, "sub")}
	short := filepath.Join(base, "w")
	err := os.Symlink(outer, short)
	if err == nil {
		_, err = os.Lstat(short) // Wine may say yes and make none
	}
	switch {
	case err == nil:
		inners = append(inners, filepath.Join(short, "sub")) // outer/sub, spelled 2 levels up
	case !treetest.UnderWine():
		t.Fatal(err)
	}
	for _, inner := range inners {
		if got := outerFirst([]string{inner, outer}); !slices.Equal(got, []int{1, 0}) {
			t.Errorf("outerFirst(%s, %s) = %v; want the outer one first", inner, outer, got)
		}
		if got := outerFirst([]string{outer, inner}); !slices.Equal(got, []int{0, 1}) {
			t.Errorf("outerFirst(%s, %s) = %v; want the outer one first", outer, inner, got)
		}
	}
}
