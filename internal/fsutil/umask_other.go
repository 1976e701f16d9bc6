//go:build !windows && (!linux || tiercache_portable)

package fsutil

// Umask returns -1: only Linux reports the umask without changing it
// (umask(2) sets it, for every thread at once). Callers then create files
// private and chmod them (see CreateMode).
func Umask() int { return -1 }
