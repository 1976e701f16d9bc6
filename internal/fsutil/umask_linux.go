//go:build !tiercache_portable

package fsutil

import (
	"os"
	"strconv"
	"strings"
)

// Umask returns the process's umask as the kernel reports it (Linux 4.7
// and later), or -1 if it cannot tell. Reading it is the only safe way:
// umask(2) sets it, for every thread at once. Callers read it once per
// operation, since a program may change it between two.
func Umask() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if um, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return int(um)
			}
		}
	}
	return -1
}
