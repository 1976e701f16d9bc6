//go:build unix

package main

import "syscall"

// detached puts a child in a session of its own, so the terminal's or
// the job's signals to this process's group do not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
