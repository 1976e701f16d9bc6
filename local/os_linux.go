//go:build !tiercache_portable

package local

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// syncTree makes the tree at dir durable. On Linux one syncfs(2) flushes
// the whole file system holding dir: for trees of tens of thousands of
// small files (a module cache) that is far cheaper than an fsync per file,
// at the price of also flushing other dirty data on that file system.
func syncTree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// bootID identifies the running boot of the system (a random UUID the
// kernel draws at boot), or "" if it cannot be read.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

// changedAt is the later of fi's modification and status-change times. A
// rename sets the latter, so for something moved into trash/ it tells
// when it was moved there.
func changedAt(fi fs.FileInfo) time.Time {
	t := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if c := time.Unix(st.Ctim.Unix()); c.After(t) {
			t = c
		}
	}
	return t
}
