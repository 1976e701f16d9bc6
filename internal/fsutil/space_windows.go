package fsutil

import (
	"fmt"
	"math"

	"golang.org/x/sys/windows"
)

// FreeBytes returns the bytes available to the calling user (quotas
// included) on the volume holding path, so a caller can refuse a tree
// that cannot fit before it starts writing it.
func FreeBytes(path string) (int64, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	var avail uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, nil, nil); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return int64(min(avail, math.MaxInt64)), nil
}
