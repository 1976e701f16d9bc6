//go:build unix && !linux

package main

// slowAfterDelete reports false: the slowdown it looks for is that of
// Linux's ext4 (see ext4_linux.go).
func slowAfterDelete(string) (bool, string) { return false, "not Linux" }
