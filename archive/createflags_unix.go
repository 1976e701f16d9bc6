//go:build unix && (!linux || tiercache_portable)

package archive

import (
	"os"
	"syscall"
)

// createFlags are the flags for creating an extracted file: never open an
// existing file, and never follow a symlink in the final component (for
// create_other.go; Linux creates files by descriptor, see create_linux.go).
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW
