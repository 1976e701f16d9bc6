//go:build linux && !tiercache_portable

package fsutil

import (
	"syscall"
	"testing"
)

func TestUmask(t *testing.T) {
	for _, um := range []int{0o022, 0o077, 0o002} {
		old := syscall.Umask(um)
		got := Umask()
		syscall.Umask(old)
		if got != um {
			t.Errorf("Umask() = %03o after umask(%03o)", got, um)
		}
	}
}
