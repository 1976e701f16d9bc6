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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/windows"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// The Windows copy reads the source through an os.Root and writes the
// destination through another, by slash-separated paths: Windows has no
// descriptor-relative calls in the standard library beyond os.Root's, and
// os.Root already resolves names one component at a time without leaving
// its directory. Each destination directory is created, or checked to be
// a real directory (not a symlink or junction), before anything goes into
// it, and every file is created with O_EXCL, which fails on a symlink as on
// any existing name; so, as on Unix, whatever is in the way is removed and
// never written through.
//
// Windows keeps one permission bit, the write bit, as the read-only
// attribute; that is what a mode copies as. A file's identity (volume and
// file index) and link count come only through an open handle, which the
// copy has anyway: the first name of a file with several in the source
// is copied, the others are hardlinked to that copy once every file is
// written, as on Unix. Symlink mtimes are left as created: os.Root has no
// call that sets them without following the link.

// winCopier is one Copy on Windows.
type winCopier struct {
	opts     Options
	src, dst string
	sroot    *os.Root
	droot    *os.Root
	dirs     []winDir // in walk order: parents before children
	res      Result
	jobs     chan winJob
	// Written by the workers.
	files, bytes, linked atomic.Int64
	mu                   sync.Mutex
	firsts               map[fsutil.FileID]string // first name copied of each multiply-linked file
	links                []winLink                // later names, linked at the end
}

// winLink gives an extra name to a file copied earlier.
type winLink struct{ first, rel string }

// winDir is a directory whose mode and times are set once it is full.
type winDir struct {
	rel  string
	info fs.FileInfo
}

// winJob is one regular file to copy or link.
type winJob struct {
	rel  string
	info fs.FileInfo
}

func copyTree(ctx context.Context, src, dst string, fi fs.FileInfo, opts Options) (Result, error) {
	sroot, err := os.OpenRoot(src)
	if err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", err)
	}
	defer sroot.Close()
	droot, err := os.OpenRoot(dst)
	if err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", err)
	}
	defer droot.Close()
	c := &winCopier{opts: opts, src: src, dst: dst, sroot: sroot, droot: droot, firsts: map[fsutil.FileID]string{}}
	return c.run(ctx, fi)
}

func (c *winCopier) run(ctx context.Context, rootInfo fs.FileInfo) (Result, error) {
	c.jobs = make(chan winJob, 64)
	g, gctx := errgroup.WithContext(ctx)
	for range c.opts.Workers {
		g.Go(func() error {
			for j := range c.jobs {
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
	c.dirs = append(c.dirs, winDir{rel: ".", info: rootInfo})
	c.res.Dirs++
	walkErr := c.walk(gctx, ".")
	close(c.jobs)
	err := g.Wait()
	c.res.Files, c.res.Bytes, c.res.Linked = c.files.Load(), c.bytes.Load(), c.linked.Load()
	if err == nil {
		err = walkErr
	}
	if err != nil {
		return c.res, err
	}
	for _, l := range c.links {
		if err := ctx.Err(); err != nil {
			return c.res, err
		}
		if err := c.replace(l.rel, func() error { return c.droot.Link(l.first, l.rel) }); err != nil {
			return c.res, fmt.Errorf("copy tree: hardlink %s: %w", l.rel, err)
		}
		c.res.Hardlinks++
	}
	// Deepest first: a directory's times and read-only attribute come
	// after everything inside it was written.
	for _, d := range slices.Backward(c.dirs) {
		if err := ctx.Err(); err != nil {
			return c.res, err
		}
		if err := c.droot.Chmod(d.rel, d.info.Mode().Perm()); err != nil {
			return c.res, fmt.Errorf("copy tree: chmod %s: %w", d.rel, err)
		}
		atime, mtime := fileTimes(d.info)
		if err := c.droot.Chtimes(d.rel, atime, mtime); err != nil {
			return c.res, fmt.Errorf("copy tree: set mtime of %s: %w", d.rel, err)
		}
	}
	return c.res, nil
}

// srcPath is rel's path in the source, for errors.
func (c *winCopier) srcPath(rel string) string { return filepath.Join(c.src, filepath.FromSlash(rel)) }

// walk copies the entries of the source directory rel into the
// destination directory of the same path, which exists: symlinks and
// directories here, regular files by queueing them for the workers.
// Entries are visited in lexical order, like the Unix walk.
func (c *winCopier) walk(ctx context.Context, rel string) error {
	d, err := c.sroot.Open(rel)
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("copy tree: read directory %s: %w", c.srcPath(rel), err)
	}
	slices.Sort(names)
	var subdirs []string
	for _, base := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		crel := path.Join(rel, base)
		info, err := c.sroot.Lstat(crel)
		if err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		switch t := info.Mode().Type(); {
		case t.IsDir():
			if err := c.mkdir(crel); err != nil {
				return err
			}
			c.dirs = append(c.dirs, winDir{rel: crel, info: info})
			c.res.Dirs++
			subdirs = append(subdirs, crel)
		case t&fs.ModeSymlink != 0:
			if err := c.symlink(crel); err != nil {
				return err
			}
			c.res.Symlinks++
		case t&fs.ModeSocket != 0:
			c.res.Sockets++
		case t.IsRegular():
			select {
			case c.jobs <- winJob{rel: crel, info: info}:
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			// Junctions and other reparse points that are not symlinks
			// show as irregular files.
			return fmt.Errorf("%w: copy tree: %s is a %s, not a file, directory or symlink", tiercache.ErrInvalidArgument, c.srcPath(crel), fsutil.TypeName(t))
		}
	}
	for _, sub := range subdirs {
		if err := c.walk(ctx, sub); err != nil {
			return err
		}
	}
	return nil
}

// mkdir makes rel a directory of the destination, keeping a real
// directory that is there and replacing anything else.
func (c *winCopier) mkdir(rel string) error {
	err := c.droot.Mkdir(rel, 0o700)
	if errors.Is(err, fs.ErrExist) {
		fi, lerr := c.droot.Lstat(rel)
		if lerr == nil && fi.IsDir() {
			return nil
		}
		// A symlink, junction or file is in the way: never entered.
		if err = fsutil.RemoveAllIn(c.droot, rel); err == nil {
			err = c.droot.Mkdir(rel, 0o700)
		}
	}
	if err != nil {
		return fmt.Errorf("copy tree: mkdir %s: %w", rel, err)
	}
	return nil
}

// replace runs create, and if something already exists at rel, removes
// it and runs create again.
func (c *winCopier) replace(rel string, create func() error) error {
	err := create()
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Not root.RemoveAll alone: where Windows cannot delete a read-only
	// file as it is, that clears the attribute of every other name of
	// the file, say of a cache entry this name was linked from.
	if err := fsutil.RemoveAllIn(c.droot, rel); err != nil {
		return err
	}
	// A name deleted while another handle has the file open (a virus
	// scanner, an indexer; under Wine, another name of a hardlinked
	// file) may linger until that handle closes: wait briefly for it.
	for i := range 20 {
		if err = create(); !errors.Is(err, fs.ErrExist) {
			return err
		}
		time.Sleep(time.Duration(i+1) * 5 * time.Millisecond)
	}
	return err
}

func (c *winCopier) symlink(rel string) error {
	target, err := c.sroot.Readlink(rel)
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	if err := c.replace(rel, func() error { return c.droot.Symlink(target, rel) }); err != nil {
		if hint := fsutil.SymlinkHint(err); hint != "" {
			return fmt.Errorf("copy tree: symlink %s: %s: %w", rel, hint, err)
		}
		return fmt.Errorf("copy tree: symlink %s: %w", rel, err)
	}
	return nil
}

// copyBufs holds the buffers files are copied through.
var copyBufs = sync.Pool{New: func() any { return new([256 << 10]byte) }}

// copyFile copies (or links) j into the destination.
func (c *winCopier) copyFile(j winJob) error {
	if c.opts.Link {
		linked, err := c.link(j.rel)
		if err != nil {
			return fmt.Errorf("copy tree: link %s: %w", j.rel, err)
		}
		if linked {
			c.linked.Add(1)
			c.done(j.info.Size())
			return nil
		}
	}
	in, err := c.sroot.Open(j.rel)
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	defer in.Close()
	if later, err := c.laterName(j.rel, in); err != nil || later {
		return err
	}
	// Created with its final write bit: a read-only file is still
	// written through the handle that creates it.
	var out *os.File
	err = c.replace(j.rel, func() error {
		var err error
		out, err = c.droot.OpenFile(j.rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, j.info.Mode().Perm())
		return err
	})
	if err != nil {
		return fmt.Errorf("copy tree: create %s: %w", j.rel, err)
	}
	buf := copyBufs.Get().(*[256 << 10]byte)
	_, err = io.CopyBuffer(onlyWriter{out}, in, buf[:])
	copyBufs.Put(buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy tree: copy %s: %w", j.rel, err)
	}
	// After the close: Windows may stamp the last write when a written
	// handle closes.
	atime, mtime := fileTimes(j.info)
	if err := c.droot.Chtimes(j.rel, atime, mtime); err != nil {
		return fmt.Errorf("copy tree: set mtime of %s: %w", j.rel, err)
	}
	c.done(j.info.Size())
	return nil
}

// laterName reports whether the file open as in, at rel, is another name
// of a file already being copied, and if so records rel to be linked to
// that copy at the end.
func (c *winCopier) laterName(rel string, in *os.File) (bool, error) {
	id, nlink, err := fsutil.HandleIdentity(windows.Handle(in.Fd()))
	if err != nil {
		return false, fmt.Errorf("copy tree: %s: %w", c.srcPath(rel), err)
	}
	if nlink < 2 {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	first, seen := c.firsts[id]
	if !seen {
		c.firsts[id] = rel
		return false, nil
	}
	c.links = append(c.links, winLink{first: first, rel: rel})
	return true, nil
}

// onlyWriter hides the destination's ReadFrom, so that io.CopyBuffer
// uses the pooled buffer rather than one of its own.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

func (c *winCopier) done(size int64) {
	c.files.Add(1)
	c.bytes.Add(size)
	if c.opts.Progress != nil {
		c.opts.Progress(size)
	}
}

// link hardlinks the source file rel as the same path in the destination.
// It reports false, and no error, where the file cannot be linked (another
// volume, a file system without hardlinks, a file with too many links),
// so the caller copies it. Links go by path: os.Root links only within one
// root. The destination's directories were created or checked by this
// copy, and the name itself is replaced, never followed.
func (c *winCopier) link(rel string) (bool, error) {
	from, to := c.srcPath(rel), filepath.Join(c.dst, filepath.FromSlash(rel))
	err := c.replace(rel, func() error { return os.Link(from, to) })
	if errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) || errors.Is(err, windows.ERROR_INVALID_FUNCTION) ||
		errors.Is(err, windows.ERROR_NOT_SUPPORTED) || errors.Is(err, windows.ERROR_TOO_MANY_LINKS) ||
		errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return false, nil
	}
	return err == nil, err
}

// fileTimes returns info's access and modification times, so a copy
// does not look freshly read to tools that care either.
func fileTimes(info fs.FileInfo) (atime, mtime time.Time) {
	mtime = info.ModTime()
	atime = mtime
	if d, ok := info.Sys().(*syscall.Win32FileAttributeData); ok {
		atime = time.Unix(0, d.LastAccessTime.Nanoseconds())
	}
	return atime, mtime
}
