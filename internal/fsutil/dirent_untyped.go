//go:build unix && !(linux || darwin || freebsd || netbsd || openbsd)

package fsutil

// DirEntries is DirNames, every entry's Type TypeUnknown: these systems'
// entries have no d_type (Solaris, illumos, AIX) or no length field
// golang.org/x/sys/unix describes (DragonFly).
func DirEntries(fd int, buf []byte) ([]Dirent, error) {
	names, err := DirNames(fd, buf)
	if err != nil {
		return nil, err
	}
	ents := make([]Dirent, len(names))
	for i, n := range names {
		ents[i] = Dirent{Name: n, Type: TypeUnknown}
	}
	return ents, nil
}
