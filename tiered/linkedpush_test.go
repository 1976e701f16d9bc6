//go:build unix

package tiered

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// TestPushOfLinkedPullWhileOthersLink: DIR restored with --link
// shares its files with the local tier's tree. Another job on the machine
// restoring the same entry with --link (and cleaning up after) changes
// those files' link counts, so their ctimes, but not their bytes, size or
// mtime. A push of DIR meanwhile must not fail for it.
func TestPushOfLinkedPullWhileOthersLink(t *testing.T) {
	c := newTiered(t, nil, Options{})
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		b := make([]byte, 4<<20)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Push(t.Context(), "k1", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dir")
	if _, ok, err := c.Pull(t.Context(), "k1", nil, dir, PullOptions{Link: true}); !ok || err != nil {
		t.Fatalf("pull --link: %v, %v", ok, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "f0"), &st); err != nil || st.Nlink < 2 {
		t.Fatalf("DIR's file is not linked to the local tier's tree: nlink %d, %v", st.Nlink, err)
	}

	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // another job: pull --link, build, clean up; again
		defer wg.Done()
		base := t.TempDir()
		for i := 0; ctx.Err() == nil; i++ {
			other := filepath.Join(base, fmt.Sprint(i))
			_, _, _ = c.Pull(ctx, "k1", nil, other, PullOptions{Link: true})
			_ = os.RemoveAll(other)
		}
	}()
	for i := range 3 {
		if _, err := c.Push(t.Context(), fmt.Sprintf("k2-%d", i), dir, PushOptions{}); err != nil {
			stop()
			wg.Wait()
			t.Fatalf("push %d of an unchanged DIR restored with --link, while another job pulls the entry with --link: %v", i, err)
		}
	}
	stop()
	wg.Wait()
}
