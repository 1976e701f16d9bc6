//go:build unix

package archive

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// fileID identifies an inode, to find hardlinks.
type fileID struct{ dev, ino uint64 }

// identity returns info's inode and link count.
func identity(info fs.FileInfo) (id fileID, nlink uint64, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 0, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, uint64(st.Nlink), true
}

// lchtimes sets the mtime of the symlink name inside root without following
// it: os.Root has no Lchtimes, so it opens the parent directory through the
// root and calls utimensat relative to it with AT_SYMLINK_NOFOLLOW.
func lchtimes(root *os.Root, name string, mtime time.Time) error {
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	rc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	// Not via UnixNano, which overflows outside 1678..2262: archives may
	// carry any time. The atime gets the mtime too (UTIME_OMIT is not
	// portable across Unixes; atimes are not part of the format).
	mt, err := unix.TimeToTimespec(mtime)
	if err != nil {
		return &fs.PathError{Op: "lchtimes", Path: name, Err: err}
	}
	ts := []unix.Timespec{mt, mt}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		opErr = unix.UtimesNanoAt(int(fd), path.Base(name), ts, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return err
	}
	if opErr != nil {
		return &fs.PathError{Op: "lchtimes", Path: name, Err: opErr}
	}
	return nil
}

// dirBufSize is the size of the buffer directory entries are read into:
// a few dozen entries per getdents-style call.
const dirBufSize = 32 << 10

// srcDir is a directory of the tree being archived, held open by a raw
// descriptor. Raw descriptors rather than *os.File: an os.File costs
// extra fcntl and epoll calls per open, which add up over tens of
// thousands of files.
type srcDir struct {
	fd   int
	tree *srcTree
	top  bool
}

// srcTree is what the directories of one walk share.
type srcTree struct {
	dir  string
	root *os.Root // opened on dir for the first symlink, see readlink
	// from and to map a member's name to its path below dir, when the
	// members of dir/to are stored under from (see WriteSource's Paths).
	from, to string
}

// openSourceDir opens the root of the tree to archive (following a
// symlink there, like os.OpenRoot).
func openSourceDir(dir string) (srcDir, error) {
	fd, err := fsutil.IgnoringEINTR(func() (int, error) {
		return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return srcDir{}, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return srcDir{fd: fd, tree: &srcTree{dir: dir}, top: true}, nil
}

// close releases d (and, for the top, what the walk shared); a read-only
// descriptor has nothing to flush.
func (d srcDir) close() {
	_ = unix.Close(d.fd)
	if d.top && d.tree.root != nil {
		d.tree.root.Close()
	}
}

// names lists d's entries (without "." and ".."), unsorted, with the
// types the listing gives. rel names d in errors; buf is scratch space.
func (d srcDir) names(rel string, buf []byte) ([]fsutil.Dirent, error) {
	ents, err := fsutil.DirEntries(d.fd, buf)
	if err != nil {
		return nil, &fs.PathError{Op: "readdirent", Path: d.path(rel), Err: err}
	}
	return ents, nil
}

// lstat describes the entry name of d without following a symlink.
func (d srcDir) lstat(name, rel string) (srcInfo, error) {
	var st unix.Stat_t
	if _, err := fsutil.IgnoringEINTR(func() (int, error) {
		return 0, unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return srcInfo{}, &fs.PathError{Op: "lstat", Path: d.path(rel), Err: err}
	}
	return statInfo(&st), nil
}

// statInfo is the srcInfo of st.
func statInfo(st *unix.Stat_t) srcInfo {
	return srcInfo{
		mode:  fsutil.UnixMode(uint32(st.Mode)),
		mtime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		ctime: time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)),
		size:  int64(st.Size),
		id:    fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)},
		nlink: uint64(st.Nlink),
	}
}

// readlink returns the target of the symlink name in d, at rel in the
// tree. It goes through an os.Root on the tree, resolving rel one
// component at a time: readlinkat is missing from golang.org/x/sys/unix on
// some Unixes (Solaris, illumos, AIX, DragonFly), and module caches hold
// few symlinks.
func (d srcDir) readlink(_, rel string) (string, error) {
	if d.tree.root == nil {
		root, err := os.OpenRoot(d.tree.dir)
		if err != nil {
			return "", err
		}
		d.tree.root = root
	}
	return d.tree.root.Readlink(d.tree.to + strings.TrimPrefix(rel, d.tree.from))
}

// path is where the member rel of d's walk is on disk, for errors a user
// must act on (a file they may not read): the member's name alone, "0/x"
// for an entry of several paths, says nothing of where it is.
func (d srcDir) path(rel string) string {
	return filepath.Join(d.tree.dir, filepath.FromSlash(d.tree.to+strings.TrimPrefix(rel, d.tree.from)))
}

// storeAs makes the walk of d, opened on dir's parent, name the members
// below dir/base as below as (only readlink needs to know).
func (d srcDir) storeAs(base, as string) { d.tree.from, d.tree.to = as, base }

// openDir opens the subdirectory name of d. O_NOFOLLOW|O_DIRECTORY: a
// directory swapped for a symlink since it was listed makes the open fail
// instead of leading the walk out of the tree.
func (d srcDir) openDir(name, rel string) (srcDir, error) {
	fd, err := fsutil.IgnoringEINTR(func() (int, error) {
		return unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return srcDir{}, &fs.PathError{Op: "open", Path: d.path(rel), Err: err}
	}
	return srcDir{fd: fd, tree: d.tree}, nil
}

// openFile opens the regular file name of d for reading. O_NOFOLLOW: a
// file swapped for a symlink since its lstat makes the open fail rather
// than be followed. O_NONBLOCK: one swapped for a FIFO cannot hang the
// open (it reads as a file that shrank); regular files ignore the flag.
func (d srcDir) openFile(name, rel string) (srcFile, error) {
	fd, err := fsutil.IgnoringEINTR(func() (int, error) {
		return unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path(rel), Err: err}
	}
	return &rawFile{fd: fd, rel: rel}, nil
}

// rawFile reads a file through a raw descriptor.
type rawFile struct {
	fd  int
	rel string
}

// Read reads into p, returning io.EOF at the end of the file.
func (f *rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := fsutil.IgnoringEINTR(func() (int, error) { return unix.Read(f.fd, p) })
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: f.rel, Err: err}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// stat describes the open file, as lstat describes its name.
func (f *rawFile) stat() (srcInfo, error) {
	var st unix.Stat_t
	if _, err := fsutil.IgnoringEINTR(func() (int, error) {
		return 0, unix.Fstat(f.fd, &st)
	}); err != nil {
		return srcInfo{}, &fs.PathError{Op: "fstat", Path: f.rel, Err: err}
	}
	return statInfo(&st), nil
}

// Close closes the descriptor; it was opened read-only, so no error can
// mean lost data.
func (f *rawFile) Close() error { return unix.Close(f.fd) }
