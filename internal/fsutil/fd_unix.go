//go:build unix

package fsutil

import "golang.org/x/sys/unix"

// IgnoringEINTR retries fn while a signal interrupts it, as package os
// does for its own system calls (Go's preemption signals can interrupt
// slow ones).
func IgnoringEINTR[T any](fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if err != unix.EINTR { // a bare Errno: no wrapping to look through
			return v, err
		}
	}
}
