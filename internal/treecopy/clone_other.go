//go:build unix && !darwin && (!linux || tiercache_portable)

package treecopy

// cloneFile is nil where no system call clones a file to a new name:
// files are copied (tests may set it to stand in for macOS's).
var cloneFile func(in, dirfd int, base string) error
