//go:build unix

package archive

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWriteLinkCountChangeIsNoChange: a file of the tree that is
// a hardlink of another tree's file (as after pull --link, which links
// DIR's files to the local tier's tree) gains a link while it is read,
// as when another job pulls the same entry with --link, or loses one, as
// when a prune drops that tree. Its bytes, size and mtime stay; only its
// ctime moves, with its link count. That is no change of the file.
func TestWriteLinkCountChangeIsNoChange(t *testing.T) {
	for _, op := range []string{"link", "unlink"} {
		t.Run(op, func(t *testing.T) {
			src, cacheTree, other := t.TempDir(), t.TempDir(), t.TempDir()
			cached := filepath.Join(cacheTree, "f")
			if err := os.WriteFile(cached, noiseSeed(1000, 'f'), 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(src, "f")
			if err := os.Link(cached, p); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // past the ctime's granularity
			opened := false
			onOpen(t, func(rel string) {
				if rel != "f" {
					return
				}
				opened = true
				var err error
				if op == "link" {
					err = os.Link(cached, filepath.Join(other, "f"))
				} else {
					err = os.Remove(cached)
				}
				if err != nil {
					t.Fatal(err)
				}
			})
			_, err := Write(t.Context(), io.Discard, src, WriteOptions{})
			if !opened {
				t.Fatal("the hook never ran")
			}
			if err != nil {
				t.Fatalf("Write of a file whose content, size and mtime never changed, only its link count: %v", err)
			}
		})
	}
}
