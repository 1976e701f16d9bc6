package s3

import "syscall"

// The kernel kills versitygw when the test binary dies, even by a panic
// or a signal that skips the test's cleanup.
func init() {
	versityGWProcAttr = func() *syscall.SysProcAttr {
		return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
}
