package tiered

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPullPathsDirectoryOverFile: the entry's directory is not put
// where a file is, and the pull fails before any path is touched, as it
// does for a file where a directory is: from the remote, from the local
// archive, from the local tree (Link) and straight from the remote
// (NoLocal).
func TestPullPathsDirectoryOverFile(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	srcDir, srcFile := pathsSource(t)
	// The file first: the directory, second, is refused after it.
	if _, err := c.PushPaths(t.Context(), "k", []string{srcFile, srcDir}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	cold := dropLocal(t, c)
	for _, tc := range []struct {
		name string
		c    *Cache
		opts PullOptions
	}{
		{"cold", cold, PullOptions{}},
		{"warm", cold, PullOptions{}},
		{"link", cold, PullOptions{Link: true}},
		{"no-local", newTiered(t, store, Options{NoLocal: true}), PullOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			file, dir := filepath.Join(base, "f"), filepath.Join(base, "d")
			if err := os.WriteFile(dir, []byte("in the way"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, ok, err := tc.c.PullPaths(t.Context(), "k", nil, []string{file, dir}, PullOptions{Link: tc.opts.Link})
			if ok || err == nil {
				t.Fatalf("pull of a directory over a file: %v, %v; want a failure", ok, err)
			}
			if !strings.Contains(err.Error(), dir+" is not a directory; the entry holds a directory there") {
				t.Errorf("pull of a directory over a file: %v; want a failure saying %s is in the way", err, dir)
			}
			if IsRemote(err) {
				t.Errorf("a path in the way is reported as the remote's failure: %v", err)
			}
			if b, err := os.ReadFile(dir); err != nil || string(b) != "in the way" {
				t.Errorf("the file in the way changed: %q, %v", b, err)
			}
			if _, err := os.Lstat(file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the first path was restored before the second was refused: %v", err)
			}
		})
	}
}
