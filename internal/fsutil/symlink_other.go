//go:build !windows

package fsutil

// SymlinkHint returns "": where symlinks are part of every file system
// and any process may create them, a failure is about the link itself.
func SymlinkHint(error) string { return "" }
