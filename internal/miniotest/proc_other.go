//go:build !unix

package miniotest

import "syscall"

// sysProcAttr returns nil: only Linux can tie the server's life to the
// test binary's, so elsewhere a crashed test binary may leave it running.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// processGone reports false: without a portable liveness probe, stale
// directories are left for the OS's temp cleaning.
func processGone(int) bool { return false }
