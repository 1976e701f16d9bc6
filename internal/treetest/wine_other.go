//go:build !windows

package treetest

// UnderWine reports false: only Windows programs run under Wine.
func UnderWine() bool { return false }
