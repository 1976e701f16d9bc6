//go:build !unix

package local

import "io/fs"

// checkRootOwner does nothing: ownership checks are Unix-only.
func checkRootOwner(string) error { return nil }

// checkOwnerOf does nothing: ownership checks are Unix-only.
func checkOwnerOf(string) error { return nil }

// tierOwner reports false: what a process creates is its user's.
func tierOwner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
