//go:build unix && !linux

package miniotest

import (
	"errors"
	"syscall"
)

// sysProcAttr returns nil: only Linux can tie the server's life to the
// test binary's, so elsewhere a crashed test binary may leave it running.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// processGone reports whether no process has the given pid.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
