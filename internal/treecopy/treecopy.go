// Package treecopy copies a directory tree into another directory with
// fidelity (file bytes, permission bits, mtimes to the nanosecond, symlinks
// as links, hardlinks as hardlinks, empty directories), the way the CLI
// turns a cached tree into the directory a job asked for.
//
// Speed matters on a local hit, so each regular file is first cloned with a
// reflink (FICLONE, instant on btrfs, XFS and bcachefs), then copied with
// copy_file_range (in-kernel, which io.Copy between two *os.File uses), and
// several files are copied at once. With Options.Link, files are hardlinked
// from the source instead, which is fastest but shares inodes with it.
//
// Every write into the destination goes through an os.Root opened on it, and
// whatever the destination already holds at a path the tree uses is removed
// first rather than written through: a symlink planted in the destination
// is replaced, never followed, so a copy cannot write outside it, and a file
// that is a hardlink to something else (say, to a cache entry after an
// earlier Link copy) is unlinked, never overwritten in place.
package treecopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache"
)

// DefaultWorkers is the number of files copied concurrently when
// Options.Workers is zero. A few are enough to hide per-file latency
// (open, clone, chmod, utimes) without thrashing a disk.
const DefaultWorkers = 4

// Options configure Copy. The zero value copies (or clones) every file with
// DefaultWorkers workers.
type Options struct {
	// Link hardlinks each regular file from the source instead of copying
	// it, falling back to a copy where the two are on different file
	// systems. The destination's files then share inodes with the
	// source: modifying one in place modifies the other. Permission bits
	// and mtimes are the source's by construction.
	Link bool
	// Workers is the number of files copied concurrently; zero means
	// DefaultWorkers. Negative is an error.
	Workers int
	// Progress, if set, is called with the size of each regular file
	// once it is in place. It is called from several goroutines at once
	// and must be safe for concurrent use.
	Progress func(bytes int64)
}

// Result counts what Copy placed in the destination.
type Result struct {
	// Dirs is the number of directories, the destination itself included.
	Dirs int64
	// Files is the number of regular files (hardlinks excluded).
	Files int64
	// Bytes is the total size of those regular files.
	Bytes int64
	// Symlinks is the number of symbolic links.
	Symlinks int64
	// Hardlinks is the number of extra names of files that the source
	// holds several times (a file with 3 names counts 1 file and 2
	// hardlinks).
	Hardlinks int64
	// Cloned is how many of Files were cloned with a reflink.
	Cloned int64
	// Linked is how many of Files were hardlinked from the source (Link).
	Linked int64
}

// Copy copies the tree at src into dst, creating dst (and its parents) if
// absent. Entries of src replace whatever dst holds at the same paths, as
// `tar -x` does; other entries of dst are left alone. Directory modes and
// mtimes are applied after their contents are in place, so read-only
// directories copy fine. Owners are not copied, and setuid/setgid bits are
// dropped.
//
// src is read without following symlinks. Copy fails on file types a cache
// tree never holds (devices, FIFOs, sockets) with an error wrapping
// tiercache.ErrInvalidArgument. On error or cancellation, what was already
// copied stays in dst.
func Copy(ctx context.Context, src, dst string, opts Options) (Result, error) {
	if opts.Workers < 0 {
		return Result{}, fmt.Errorf("%w: treecopy workers %d is negative", tiercache.ErrInvalidArgument, opts.Workers)
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", err)
	}
	if !fi.IsDir() {
		return Result{}, fmt.Errorf("%w: copy tree: source %s is not a directory", tiercache.ErrInvalidArgument, src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", err)
	}
	defer root.Close()
	c := &copier{src: src, dst: dst, root: root, opts: opts, inodes: map[inode]string{}}
	return c.run(ctx)
}

type inode struct{ dev, ino uint64 }

// fileJob is one regular file to copy or link.
type fileJob struct {
	rel  string // slash-separated path relative to both roots
	info fs.FileInfo
}

// linkJob gives an extra name to a file copied earlier.
type linkJob struct{ first, rel string }

// dirMeta is applied to a directory once its contents are in place.
type dirMeta struct {
	rel  string
	info fs.FileInfo
}

type copier struct {
	src, dst string
	root     *os.Root
	opts     Options
	inodes   map[inode]string // first name seen of each multiply-linked file
	res      Result
	// Written by the workers.
	files, bytes, cloned, linked atomic.Int64
}

func (c *copier) run(ctx context.Context) (Result, error) {
	var (
		dirs  []dirMeta
		links []linkJob
	)
	jobs := make(chan fileJob, 64)
	g, gctx := errgroup.WithContext(ctx)
	for range c.opts.Workers {
		g.Go(func() error {
			for j := range jobs {
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := c.copyFile(j); err != nil {
					return err
				}
			}
			return nil
		})
	}
	walkErr := filepath.WalkDir(c.src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		if err := gctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(c.src, p)
		if err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		switch t := info.Mode().Type(); {
		case t == fs.ModeDir:
			if err := c.mkdir(rel); err != nil {
				return err
			}
			dirs = append(dirs, dirMeta{rel, info})
			c.res.Dirs++
		case t == fs.ModeSymlink:
			if err := c.symlink(rel, info); err != nil {
				return err
			}
			c.res.Symlinks++
		case t.IsRegular():
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				id := inode{uint64(st.Dev), uint64(st.Ino)}
				if first, seen := c.inodes[id]; seen {
					links = append(links, linkJob{first, rel})
					return nil
				}
				c.inodes[id] = rel
			}
			select {
			case jobs <- fileJob{rel, info}:
			case <-gctx.Done():
				return gctx.Err()
			}
		default:
			return fmt.Errorf("%w: copy tree: %s is a %v, not a file, directory or symlink", tiercache.ErrInvalidArgument, p, t)
		}
		return nil
	})
	close(jobs)
	if err := g.Wait(); err != nil {
		return c.result(), err
	}
	if walkErr != nil {
		return c.result(), walkErr
	}
	// Extra names last: their first name is complete by now.
	for _, l := range links {
		if err := ctx.Err(); err != nil {
			return c.result(), err
		}
		if err := c.replace(l.rel, func() error { return c.root.Link(l.first, l.rel) }); err != nil {
			return c.result(), fmt.Errorf("copy tree: hardlink %s: %w", l.rel, err)
		}
		c.res.Hardlinks++
	}
	// Deepest first, so that making a directory read-only or setting its
	// mtime comes after everything inside it has been written.
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := c.setMeta(d.rel, d.info); err != nil {
			return c.result(), err
		}
	}
	return c.result(), nil
}

func (c *copier) result() Result {
	r := c.res
	r.Files = c.files.Load()
	r.Bytes = c.bytes.Load()
	r.Cloned = c.cloned.Load()
	r.Linked = c.linked.Load()
	return r
}

// name is rel as an os.Root file name.
func name(rel string) string { return filepath.FromSlash(rel) }

// mkdir makes rel a writable directory, replacing a non-directory there.
func (c *copier) mkdir(rel string) error {
	if rel == "." {
		return c.ensureWritableDir(".")
	}
	err := c.root.Mkdir(name(rel), 0o700)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("copy tree: mkdir %s: %w", rel, err)
	}
	fi, err := c.root.Lstat(name(rel))
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	if fi.IsDir() {
		return c.ensureWritableDir(rel)
	}
	if err := c.root.Remove(name(rel)); err != nil {
		return fmt.Errorf("copy tree: replace %s: %w", rel, err)
	}
	if err := c.root.Mkdir(name(rel), 0o700); err != nil {
		return fmt.Errorf("copy tree: mkdir %s: %w", rel, err)
	}
	return nil
}

// ensureWritableDir lets us create entries in an existing directory (an
// earlier pull of a read-only tree leaves 0555 directories); its final mode
// is set after its contents.
func (c *copier) ensureWritableDir(rel string) error {
	fi, err := c.root.Lstat(name(rel))
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	if fi.Mode().Perm()&0o700 == 0o700 {
		return nil
	}
	if err := c.root.Chmod(name(rel), fi.Mode().Perm()|0o700); err != nil {
		return fmt.Errorf("copy tree: chmod %s: %w", rel, err)
	}
	return nil
}

// replace runs create, and if something already exists at rel, removes it
// and runs create again. Trying first keeps the common case (an empty
// destination) at one system call.
func (c *copier) replace(rel string, create func() error) error {
	err := create()
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := c.removeExisting(rel); err != nil {
		return err
	}
	return create()
}

// removeExisting removes whatever is at rel, a whole directory included.
func (c *copier) removeExisting(rel string) error {
	fi, err := c.root.Lstat(name(rel))
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return c.root.Remove(name(rel))
	}
	err = c.root.RemoveAll(name(rel))
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	// Read-only directories: their entries cannot be unlinked until they
	// are writable. Errors surface in the second RemoveAll.
	_ = fs.WalkDir(c.root.FS(), rel, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = c.root.Chmod(name(p), 0o700)
		}
		return nil
	})
	return c.root.RemoveAll(name(rel))
}

func (c *copier) symlink(rel string, info fs.FileInfo) error {
	target, err := os.Readlink(filepath.Join(c.src, name(rel)))
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	if err := c.replace(rel, func() error { return c.root.Symlink(target, name(rel)) }); err != nil {
		return fmt.Errorf("copy tree: symlink %s: %w", rel, err)
	}
	return c.lutimes(rel, info.ModTime())
}

// lutimes sets a symlink's own mtime. os.Root has no Lchtimes, so it goes
// through a descriptor of the parent directory opened via the root and a
// single-component name with AT_SYMLINK_NOFOLLOW: confined and not
// following the link.
func (c *copier) lutimes(rel string, mtime time.Time) error {
	dir, base := path.Split(rel)
	if dir == "" {
		dir = "."
	}
	d, err := c.root.Open(name(path.Clean(dir)))
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	defer d.Close()
	ts := unix.NsecToTimespec(mtime.UnixNano())
	err = withFd(d, func(fd int) error {
		return unix.UtimesNanoAt(fd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return fmt.Errorf("copy tree: set mtime of symlink %s: %w", rel, err)
	}
	return nil
}

func (c *copier) copyFile(j fileJob) error {
	srcPath := filepath.Join(c.src, name(j.rel))
	if c.opts.Link {
		linked, err := c.link(srcPath, j.rel)
		if err != nil {
			return fmt.Errorf("copy tree: link %s: %w", j.rel, err)
		}
		if linked {
			c.linked.Add(1)
			c.done(j.info.Size())
			return nil
		}
	}
	in, err := os.OpenFile(srcPath, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	defer in.Close()
	var out *os.File
	err = c.replace(j.rel, func() error {
		var err error
		out, err = c.root.OpenFile(name(j.rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("copy tree: create %s: %w", j.rel, err)
	}
	if err := c.fill(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy tree: copy %s: %w", j.rel, err)
	}
	// fchmod on the descriptor we created: no path, nothing to follow.
	if err := out.Chmod(fileMode(j.info.Mode())); err != nil {
		out.Close()
		return fmt.Errorf("copy tree: chmod %s: %w", j.rel, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy tree: write %s: %w", j.rel, err)
	}
	if err := c.root.Chtimes(name(j.rel), atime(j.info), j.info.ModTime()); err != nil {
		return fmt.Errorf("copy tree: set mtime of %s: %w", j.rel, err)
	}
	c.done(j.info.Size())
	return nil
}

func (c *copier) done(size int64) {
	c.files.Add(1)
	c.bytes.Add(size)
	if c.opts.Progress != nil {
		c.opts.Progress(size)
	}
}

// link hardlinks srcPath at rel. linkat into a directory descriptor opened
// through the root, with a single-component name, is confined like the
// root's own calls. It reports false (and no error) when the two are on
// different file systems, so the caller copies instead.
func (c *copier) link(srcPath, rel string) (bool, error) {
	dir, base := path.Split(rel)
	if dir == "" {
		dir = "."
	}
	d, err := c.root.Open(name(path.Clean(dir)))
	if err != nil {
		return false, err
	}
	defer d.Close()
	err = c.replace(rel, func() error {
		return withFd(d, func(fd int) error {
			err := unix.Linkat(unix.AT_FDCWD, srcPath, fd, base, 0)
			if errors.Is(err, unix.EEXIST) {
				return fs.ErrExist
			}
			return err
		})
	})
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) {
		// EPERM: hardlinks refused (protected_hardlinks for a file
		// owned by someone else, or a file system without them).
		return false, nil
	}
	return err == nil, err
}

// fill clones in into out, or copies it when the file system cannot clone.
func (c *copier) fill(out, in *os.File) error {
	err := withFd(out, func(ofd int) error {
		return withFd(in, func(ifd int) error { return unix.IoctlFileClone(ofd, ifd) })
	})
	if err == nil {
		c.cloned.Add(1)
		return nil
	}
	// io.Copy between two *os.File uses copy_file_range where it can.
	_, err = io.Copy(out, in)
	return err
}

// setMeta applies a directory's mode and times.
func (c *copier) setMeta(rel string, info fs.FileInfo) error {
	if err := c.root.Chmod(name(rel), fileMode(info.Mode())); err != nil {
		return fmt.Errorf("copy tree: chmod %s: %w", rel, err)
	}
	if err := c.root.Chtimes(name(rel), atime(info), info.ModTime()); err != nil {
		return fmt.Errorf("copy tree: set mtime of %s: %w", rel, err)
	}
	return nil
}

// fileMode keeps the permission bits and the sticky bit; setuid and
// setgid are dropped like every tier drops them.
func fileMode(m fs.FileMode) fs.FileMode { return m.Perm() | m&fs.ModeSticky }

// atime returns the source's access time, so a copy does not look
// freshly read to tools that care; mtime where the platform hides it.
func atime(info fs.FileInfo) time.Time {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Unix())
	}
	return info.ModTime()
}

// withFd runs fn with f's descriptor without the side effects of f.Fd().
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
