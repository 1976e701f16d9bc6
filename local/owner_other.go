//go:build !unix

package local

// checkRootOwner does nothing: ownership checks are Unix-only.
func checkRootOwner(string) error { return nil }

// checkOwnerOf does nothing: ownership checks are Unix-only.
func checkOwnerOf(string) error { return nil }
