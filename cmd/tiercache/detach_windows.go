package main

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// detached starts a child without this process's console and in a
// process group of its own, so a Ctrl-C or Ctrl-Break sent to the
// console does not reach it.
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP}
}
