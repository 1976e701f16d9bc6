//go:build !windows

package fsutil

// removeSharedReadOnly does nothing: a file's permission bits do not stop
// the removal of one of its names, so none are changed on the way.
func removeSharedReadOnly(string) {}
