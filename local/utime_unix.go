//go:build unix && !darwin

package local

import "golang.org/x/sys/unix"

// utimeOmit, as a time given to utimensat, leaves that time unchanged.
const utimeOmit = unix.UTIME_OMIT
