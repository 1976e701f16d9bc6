//go:build !unix

package archive

import "os"

// osFile is a srcFile read through package os.
type osFile struct{ *os.File }

// stat describes the open file; ctime stays zero: package os does not
// report one here.
func (f osFile) stat() (srcInfo, error) {
	info, err := f.Stat()
	if err != nil {
		return srcInfo{}, err
	}
	return srcInfo{mtime: info.ModTime(), size: info.Size()}, nil
}
