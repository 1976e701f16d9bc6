//go:build unix && !linux

package e2e

import "testing"

// diskTmpfs reports that no tmpfs can be mounted here: the disk-full
// tests use RLIMIT_FSIZE instead.
func diskTmpfs(t testing.TB, _ int64) (dir string, ok bool) {
	t.Helper()
	t.Logf("no tmpfs to mount on this system: using RLIMIT_FSIZE instead")
	return "", false
}

// diskGrow is never reached without a tmpfs.
func diskGrow(t testing.TB, _ string, _ int64) {
	t.Helper()
	t.Fatal("diskGrow without a tmpfs")
}
