package tiered

import (
	"io/fs"
	"runtime"
	"time"
)

// dirModeSeen is the mode os.Stat reports for a directory given mode m:
// m, except on Windows, which keeps only the owner's write bit (as the
// read-only attribute, which Wine does not keep on directories at all)
// and reports 0777 or 0555.
func dirModeSeen(m fs.FileMode) fs.FileMode {
	if runtime.GOOS != "windows" {
		return m
	}
	if m&0o200 == 0 {
		return 0o555
	}
	return 0o777
}

// timeKept is t as a file's mtime keeps it: to the nanosecond, except on
// Windows, which counts file times in 100 ns.
func timeKept(t time.Time) time.Time {
	if runtime.GOOS != "windows" {
		return t
	}
	return t.Truncate(100 * time.Nanosecond)
}
