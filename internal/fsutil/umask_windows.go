package fsutil

// Umask returns 0: Windows applies no umask. A file created with a mode
// keeps it, as far as Windows keeps modes at all (the write bit, as the
// read-only attribute), so callers need no chmod after creating one.
func Umask() int { return 0 }
