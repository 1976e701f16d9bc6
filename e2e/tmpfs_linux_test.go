package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// diskTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it, unmounted at the end of the test; ok is false when the test may
// not mount (not root, or in a container that forbids it).
func diskTmpfs(t testing.TB, size int64) (dir string, ok bool) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Logf("cannot mount a tmpfs (%v): using RLIMIT_FSIZE instead", err)
		return "", false
	}
	// Registered after t.TempDir's own cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir, true
}

// diskGrow gives the tmpfs at dir a new size.
func diskGrow(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("resizing the tmpfs: %v", err)
	}
}
