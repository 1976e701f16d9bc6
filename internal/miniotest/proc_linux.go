package miniotest

import (
	"errors"
	"syscall"
)

// sysProcAttr makes the kernel kill the server when the test binary dies,
// even by a panic or a signal that skips Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processGone reports whether no process has the given pid. A recycled pid
// keeps a stale directory a little longer, which is harmless.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
