//go:build unix

package treecopy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// copyTree is Copy once the arguments are checked and dst exists;
// fi describes src.
func copyTree(ctx context.Context, src, dst string, fi fs.FileInfo, opts Options) (Result, error) {
	// dst and src themselves may be reached through symlinks (a home
	// directory that is a link, say); only what is below them is never
	// followed.
	root, err := openTop(dst)
	if err != nil {
		return Result{}, err
	}
	defer root.release()
	if err := ensureWritable(root.fd); err != nil {
		return Result{}, fmt.Errorf("copy tree: make %s writable: %w", dst, err)
	}
	srcRoot, err := openTop(src)
	if err != nil {
		return Result{}, err
	}
	defer srcRoot.release()
	// The root's metadata from its descriptor, like every other entry's:
	// a unix.Stat_t names its time fields alike on every Unix, the
	// syscall.Stat_t of os.Stat does not.
	rootInfo := &statInfo{name: fi.Name()}
	if _, err := fsutil.IgnoringEINTR(func() (struct{}, error) { return struct{}{}, unix.Fstat(srcRoot.fd, &rootInfo.st) }); err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", &fs.PathError{Op: "fstat", Path: src, Err: err})
	}
	var dstSt unix.Stat_t
	if _, err := fsutil.IgnoringEINTR(func() (struct{}, error) { return struct{}{}, unix.Fstat(root.fd, &dstSt) }); err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", &fs.PathError{Op: "fstat", Path: dst, Err: err})
	}
	c := &copier{src: src, root: root, srcRoot: srcRoot, opts: opts, inodes: map[inode]string{}, umask: fsutil.Umask(),
		foreignRoot: int(dstSt.Uid) != os.Geteuid()}
	return c.run(ctx, rootInfo)
}

// openTop opens the directory dir (following symlinks) as a handle with
// one reference, the caller's.
func openTop(dir string) (*dirHandle, error) {
	fd, err := fsutil.IgnoringEINTR(func() (int, error) {
		return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("copy tree: %w", &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	h := &dirHandle{fd: fd}
	h.refs.Store(1)
	return h, nil
}

type inode struct{ dev, ino uint64 }

// dirHandle is an open descriptor of a directory, of the destination or
// of the source, shared by the walker and the workers creating (or
// reading) entries in it. It is closed when the last of them releases it,
// so at most the walker's current path plus the directories of queued
// files are open at once. Entries are reached relative to it, one name at
// a time: no path is resolved again for each file.
type dirHandle struct {
	fd   int
	refs atomic.Int32
	// meta, set on a destination directory's handle, is applied through
	// fd when the last reference goes, if the directory is complete by
	// then (see dirMeta.finish).
	meta *dirMeta
}

func (h *dirHandle) acquire() { h.refs.Add(1) }

func (h *dirHandle) release() {
	if h.refs.Add(-1) == 0 {
		if h.meta != nil {
			h.meta.finish(h.fd)
		}
		_ = unix.Close(h.fd) // read-only descriptor: nothing to flush
	}
}

// fileJob is one regular file to copy or link, in its batch's
// directories.
type fileJob struct {
	base string // the file's name in both directories
	rel  string // slash-separated path relative to both roots
	info fs.FileInfo
}

// batch is some regular files of one directory, copied one after the
// other by one worker. Creating a file locks its directory, so workers
// that each fill a different directory do not wait on one another, as
// they did (several percent of a copy's CPU went to spinning on that lock)
// when consecutive files of one directory went to different workers.
type batch struct {
	dir, src *dirHandle // held once for the whole batch
	files    []fileJob
	bytes    int64
}

// A batch is handed to the workers once it holds this many files or
// bytes, so that a large directory is still spread over several workers.
const (
	batchFiles = 64
	batchBytes = 8 << 20
)

// release drops the batch's hold on its directories.
func (b *batch) release() {
	b.dir.release()
	b.src.release()
}

// linkJob gives an extra name to a file copied earlier.
type linkJob struct{ first, rel string }

// dirMeta is applied to a directory once its contents are in place: by
// whoever releases the directory's handle last, while the copy goes on
// (that spreads the work over the workers and saves reopening each
// directory), or else by setDirMeta at the end.
//
// The fields other than rel and info are written by the walker before it
// lets go of the handle and read by the goroutine that lets go last; the
// handle's atomic reference count orders the two.
type dirMeta struct {
	rel  string
	info fs.FileInfo
	// walked is set once every entry of the directory was created or
	// queued without error.
	walked bool
	// pinned is set when an extra name of a hardlinked file is to go in
	// the directory: those are made after the workers finish, so it must
	// stay writable until then.
	pinned bool
	// stop reports that the copy failed: an incomplete directory keeps
	// its temporary mode, as after any failure.
	stop func() bool
	// done is set once finish applied the metadata; err if it failed.
	done bool
	err  error
	// foreign is set on an existing destination root that belongs to
	// another user: only its owner may set its mode and times, and the
	// user may still write into it (a shared 0777 directory), as with
	// tar -x. Copy leaves them as they are.
	foreign bool
}

// early reports whether a directory of mode m can get its final mode while
// the copy goes on. The hardlinks made at the end, and setDirMeta, open
// directories through their parents, so a parent must stay readable and
// searchable by its owner.
func early(m fs.FileMode) bool { return m.Perm()&0o500 == 0o500 }

// finish applies d through fd, the directory's descriptor, if the
// directory is complete.
func (d *dirMeta) finish(fd int) {
	if !d.walked || d.pinned || d.stop() {
		return
	}
	d.err = d.apply(fd)
	d.done = d.err == nil
}

// apply gives the directory open as fd its mode and times.
func (d *dirMeta) apply(fd int) error {
	ts, err := times(d.info)
	if err != nil {
		return fmt.Errorf("copy tree: set mtime of %s: %w", d.rel, err)
	}
	err = applyDirMeta(fd, fileMode(d.info.Mode()), &ts, d.rel)
	if d.foreign && errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return err
}

type copier struct {
	src  string
	root *dirHandle
	// foreignRoot: root belongs to another user (see dirMeta.foreign).
	foreignRoot bool
	opts        Options
	inodes      map[inode]string // first name seen of each multiply-linked file
	dirs        []*dirMeta       // in walk order: parents before children
	links       []linkJob
	res         Result
	jobs        chan *batch
	// Written by the workers.
	files, bytes, cloned, linked atomic.Int64
	// noClone is set once the file systems turn out unable to clone, so
	// that each later file does not pay a failing clone.
	noClone atomic.Bool
	// umask is the process's umask, or -1 if unknown (see copyFile).
	umask int
	// srcRoot is the source's descriptor; dirBuf the walker's scratch
	// space for reading directories.
	srcRoot *dirHandle
	dirBuf  []byte
	// ctx is the copy's, cancelled when a worker fails.
	ctx context.Context
}

// stop reports whether the copy is failing or cancelled.
func (c *copier) stop() bool { return c.ctx.Err() != nil }

func (c *copier) run(ctx context.Context, rootInfo fs.FileInfo) (Result, error) {
	c.jobs = make(chan *batch, 16)
	g, gctx := errgroup.WithContext(ctx)
	c.ctx = gctx
	for range c.opts.Workers {
		g.Go(func() error {
			for b := range c.jobs {
				err := c.copyBatch(gctx, b)
				b.release()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	// The root's metadata is applied at the end: its handle is Copy's.
	c.dirs = append(c.dirs, &dirMeta{rel: ".", info: rootInfo, foreign: c.foreignRoot})
	c.res.Dirs++
	c.dirBuf = make([]byte, 32<<10)
	walkErr := c.walk(gctx, ".", c.root, c.srcRoot)
	close(c.jobs)
	err := g.Wait()
	// Workers that stopped early left jobs behind; their handles are
	// still held.
	for b := range c.jobs {
		b.release()
	}
	if err != nil {
		return c.result(), err
	}
	if walkErr != nil {
		return c.result(), walkErr
	}
	// Extra names last: their first name is complete by now.
	for _, l := range c.links {
		if err := ctx.Err(); err != nil {
			return c.result(), err
		}
		if err := c.hardlink(l); err != nil {
			return c.result(), fmt.Errorf("copy tree: hardlink %s: %w", l.rel, err)
		}
		c.res.Hardlinks++
	}
	if err := c.setDirMeta(); err != nil {
		return c.result(), err
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

// srcPath is rel's path in the source.
func (c *copier) srcPath(rel string) string { return filepath.Join(c.src, filepath.FromSlash(rel)) }

// walk copies the entries of the source directory rel, open as sdir, into
// dir, whose handles the caller holds: symlinks here, regular files by
// queueing them for the workers in batches, then each subdirectory in
// turn. Entries are visited in lexical order, files before subdirectories,
// so the first name of a hardlinked file is the same from run to run.
func (c *copier) walk(ctx context.Context, rel string, dir, sdir *dirHandle) error {
	names, err := fsutil.DirNames(sdir.fd, c.dirBuf)
	if err != nil {
		return fmt.Errorf("copy tree: %w", &fs.PathError{Op: "readdirent", Path: c.srcPath(rel), Err: err})
	}
	slices.Sort(names)
	var subdirs []*dirMeta
	var b *batch // files not yet handed to the workers
	defer func() {
		if b != nil {
			b.release()
		}
	}()
	for _, base := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		crel := base // names from the directory are single components
		if rel != "." {
			crel = rel + "/" + base
		}
		info, err := lstatAt(sdir.fd, base)
		if err != nil {
			return fmt.Errorf("copy tree: %w", &fs.PathError{Op: "lstat", Path: c.srcPath(crel), Err: err})
		}
		sub, file, err := c.entry(dir, sdir, base, crel, info)
		switch {
		case err != nil:
			return err
		case sub != nil:
			subdirs = append(subdirs, sub)
		case file:
			if b == nil {
				dir.acquire()
				sdir.acquire()
				b = &batch{dir: dir, src: sdir}
			}
			b.files = append(b.files, fileJob{base, crel, info})
			b.bytes += info.Size()
			if len(b.files) >= batchFiles || b.bytes >= batchBytes {
				err, b = c.send(ctx, b), nil
				if err != nil {
					return err
				}
			}
		}
	}
	if b != nil {
		err, b = c.send(ctx, b), nil
		if err != nil {
			return err
		}
	}
	for _, d := range subdirs {
		if err := c.subdir(ctx, dir, sdir, d); err != nil {
			return err
		}
	}
	return nil
}

// entry handles one entry of a directory being walked, dir in the
// destination and sdir in the source: a symlink is made at once, a socket
// left out, an extra name of a hardlinked file kept for the end. It
// returns a subdirectory for the walk to enter after this directory's
// files, or reports a regular file to copy.
func (c *copier) entry(dir, sdir *dirHandle, base, rel string, info *statInfo) (sub *dirMeta, file bool, err error) {
	switch t := info.Mode().Type(); {
	case t == fs.ModeDir:
		return &dirMeta{rel: rel, info: info, stop: c.stop}, false, nil
	case t == fs.ModeSymlink:
		if err := c.symlink(dir, sdir, base, rel, info); err != nil {
			return nil, false, err
		}
		c.res.Symlinks++
	case t == fs.ModeSocket:
		c.res.Sockets++
	case t.IsRegular():
		if st := &info.st; st.Nlink > 1 {
			id := inode{uint64(st.Dev), uint64(st.Ino)}
			if first, seen := c.inodes[id]; seen {
				c.links = append(c.links, linkJob{first, rel})
				if dir.meta != nil {
					dir.meta.pinned = true
				}
				return nil, false, nil
			}
			c.inodes[id] = rel
		}
		return nil, true, nil
	default:
		return nil, false, fmt.Errorf("%w: copy tree: %s is a %s, not a file, directory or symlink", tiercache.ErrInvalidArgument, c.srcPath(rel), fsutil.TypeName(t))
	}
	return nil, false, nil
}

// send queues b for the workers; on cancellation it releases b instead.
func (c *copier) send(ctx context.Context, b *batch) error {
	select {
	case c.jobs <- b:
		return nil
	case <-ctx.Done():
		b.release()
		return ctx.Err()
	}
}

// subdir creates the subdirectory d of dir and copies its tree into it.
func (c *copier) subdir(ctx context.Context, dir, sdir *dirHandle, d *dirMeta) error {
	base := path.Base(d.rel)
	// O_NOFOLLOW: a directory swapped for a symlink since its lstat
	// makes the open fail instead of leading the walk out.
	open := func() (int, error) {
		return unix.Openat(sdir.fd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	sfd, err := fsutil.IgnoringEINTR(open)
	if errors.Is(err, unix.EACCES) && c.opts.ChmodSource {
		// d.info has the mode the copy gets, read before this change.
		if err = chmodDirAt(sdir.fd, base, 0o500); err == nil {
			sfd, err = fsutil.IgnoringEINTR(open)
		}
	}
	if err != nil {
		return fmt.Errorf("copy tree: %w", &fs.PathError{Op: "open", Path: c.srcPath(d.rel), Err: err})
	}
	schild := &dirHandle{fd: sfd}
	schild.refs.Store(1)
	defer schild.release()
	child, err := c.mkdir(dir, base, d.rel)
	if err != nil {
		return err
	}
	if early(d.info.Mode()) {
		child.meta = d
	}
	c.dirs = append(c.dirs, d)
	c.res.Dirs++
	err = c.walk(ctx, d.rel, child, schild)
	d.walked = err == nil
	child.release()
	return err
}

// copyBatch copies the files of b one after the other.
func (c *copier) copyBatch(ctx context.Context, b *batch) error {
	for _, j := range b.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.copyFile(b.dir, b.src, j); err != nil {
			return err
		}
	}
	return nil
}

// readlinkAt returns the target of the symlink name in the directory dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := fsutil.IgnoringEINTR(func() (int, error) { return unix.Readlinkat(dirfd, name, buf) })
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// statInfo is an fs.FileInfo from an fstatat; its Sys is the
// *unix.Stat_t.
type statInfo struct {
	name string
	st   unix.Stat_t
}

// lstatAt describes the entry name of the directory dirfd without
// following a symlink.
func lstatAt(dirfd int, name string) (*statInfo, error) {
	i := &statInfo{name: name}
	_, err := fsutil.IgnoringEINTR(func() (struct{}, error) {
		return struct{}{}, unix.Fstatat(dirfd, name, &i.st, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return nil, err
	}
	return i, nil
}

func (i *statInfo) Name() string       { return i.name }
func (i *statInfo) Size() int64        { return i.st.Size }
func (i *statInfo) Mode() fs.FileMode  { return fsutil.UnixMode(uint32(i.st.Mode)) }
func (i *statInfo) ModTime() time.Time { return time.Unix(i.st.Mtim.Sec, i.st.Mtim.Nsec) }
func (i *statInfo) IsDir() bool        { return i.Mode().IsDir() }
func (i *statInfo) Sys() any           { return &i.st }

// mkdir makes base in parent a writable directory, replacing a
// non-directory there, and returns a handle on it (one reference, the
// caller's).
func (c *copier) mkdir(parent *dirHandle, base, rel string) (*dirHandle, error) {
	created := true
	err := unix.Mkdirat(parent.fd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		created, err = false, nil
	}
	if err != nil {
		return nil, fmt.Errorf("copy tree: mkdir %s: %w", rel, err)
	}
	fd, err := openDirAt(parent.fd, base)
	if !created && notDir(err) {
		// A symlink or a file is in the way: replace it, never enter it.
		if err := removeAt(parent.fd, base); err != nil {
			return nil, fmt.Errorf("copy tree: replace %s: %w", rel, err)
		}
		if err := unix.Mkdirat(parent.fd, base, 0o700); err != nil {
			return nil, fmt.Errorf("copy tree: mkdir %s: %w", rel, err)
		}
		created = true
		fd, err = openDirAt(parent.fd, base)
	}
	if err != nil {
		return nil, fmt.Errorf("copy tree: open %s: %w", rel, err)
	}
	if !created {
		// An earlier pull of a read-only tree leaves 0555 directories;
		// the final mode is set after the contents.
		if err := ensureWritable(fd); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("copy tree: chmod %s: %w", rel, err)
		}
	}
	h := &dirHandle{fd: fd}
	h.refs.Store(1)
	return h, nil
}

// openDirAt opens the directory name in dirfd for reading, failing (see
// notDir) rather than following a symlink. A directory its owner
// cannot read (mode 0300, say) is first made readable.
func openDirAt(dirfd int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := fsutil.IgnoringEINTR(func() (int, error) { return unix.Openat(dirfd, name, flags, 0) })
	if !errors.Is(err, unix.EACCES) {
		return fd, err
	}
	if err := chmodDirAt(dirfd, name, 0o700); err != nil {
		return -1, err
	}
	return fsutil.IgnoringEINTR(func() (int, error) { return unix.Openat(dirfd, name, flags, 0) })
}

// notDir reports whether err, from openDirAt, says that the name is not a
// directory: ENOTDIR, or for a symlink ELOOP (EMLINK on FreeBSD).
func notDir(err error) bool {
	return errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK)
}

// ensureWritable gives the directory fd its owner's rwx bits, so that
// entries can be created and removed in it.
func ensureWritable(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&0o700 == 0o700 {
		return nil
	}
	return unix.Fchmod(fd, uint32(st.Mode)&0o7777|0o700)
}

// removeAt removes whatever dirfd holds under name, a whole directory
// included, without following symlinks. Read-only directories are made
// writable first so that their entries can go.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	// Linux answers EISDIR for a directory; macOS and the BSDs EPERM,
	// which may also mean a file that may not go.
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, openErr := openDirAt(dirfd, name)
	if notDir(openErr) {
		return err // not a directory after all: unlinkat's answer stands
	}
	if openErr != nil {
		return openErr
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	if err := ensureWritable(fd); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAt(fd, n); err != nil {
			return err
		}
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// replaceAt runs create, and if something already exists at name in
// dirfd, removes it and runs create again. Trying first keeps the common
// case (an empty destination) at one system call.
func replaceAt(dirfd int, name string, create func() error) error {
	err := create()
	// Another process restoring into the same directory (two pulls of
	// one DIR) may put the name back between removal and creation: a
	// few more tries, rather than fail the pull.
	for range 8 {
		if !errors.Is(err, unix.EEXIST) {
			return err
		}
		if err := removeAt(dirfd, name); err != nil {
			return err
		}
		err = create()
	}
	return err
}

func (c *copier) symlink(dir, sdir *dirHandle, base, rel string, info fs.FileInfo) error {
	target, err := readlinkAt(sdir.fd, base)
	if err != nil {
		return fmt.Errorf("copy tree: %w", &fs.PathError{Op: "readlink", Path: c.srcPath(rel), Err: err})
	}
	if err := replaceAt(dir.fd, base, func() error { return unix.Symlinkat(target, dir.fd, base) }); err != nil {
		return fmt.Errorf("copy tree: symlink %s: %w", rel, err)
	}
	ts, err := times(info)
	if err == nil {
		err = unix.UtimesNanoAt(dir.fd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("copy tree: set mtime of symlink %s: %w", rel, err)
	}
	return nil
}

// copyFile copies (or links) j from the source directory src into dir.
func (c *copier) copyFile(dir, src *dirHandle, j fileJob) error {
	if c.opts.Link {
		linked, err := c.link(dir, src, j)
		if err != nil {
			return fmt.Errorf("copy tree: link %s: %w", j.rel, err)
		}
		if linked {
			c.linked.Add(1)
			c.done(j.info.Size())
			return nil
		}
	}
	in, err := fsutil.IgnoringEINTR(func() (int, error) {
		return unix.Openat(src.fd, j.base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return fmt.Errorf("copy tree: %w", &fs.PathError{Op: "open", Path: c.srcPath(j.rel), Err: err})
	}
	defer unix.Close(in)
	mode := fileMode(j.info.Mode())
	ts, err := times(j.info)
	if err != nil {
		return fmt.Errorf("copy tree: set mtime of %s: %w", j.rel, err)
	}
	cloned, err := c.cloneNew(dir, in, j, mode, &ts)
	if err != nil {
		return err
	}
	if cloned {
		c.done(j.info.Size())
		return nil
	}
	// Created with its final mode where the umask leaves that intact (a
	// read-only mode too: the descriptor that creates a file may write
	// it), which saves an fchmod per file; otherwise private, then chmod.
	create, chmod := fsutil.CreateMode(fs.FileMode(mode), c.umask)
	// O_EXCL|O_NOFOLLOW: anything at the name, a symlink or a hardlinked
	// file included, makes the create fail instead of being written to.
	var out int
	err = replaceAt(dir.fd, j.base, func() error {
		var err error
		out, err = fsutil.IgnoringEINTR(func() (int, error) {
			return unix.Openat(dir.fd, j.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(create))
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("copy tree: create %s: %w", j.rel, err)
	}
	if err := c.fill(out, in, j.info.Size()); err != nil {
		_ = unix.Close(out)
		return fmt.Errorf("copy tree: copy %s: %w", j.rel, err)
	}
	// The mode through the descriptor we created: no path, nothing to
	// follow. Times last, since writing moves the mtime.
	if chmod {
		if err := unix.Fchmod(out, mode); err != nil {
			_ = unix.Close(out)
			return fmt.Errorf("copy tree: chmod %s: %w", j.rel, err)
		}
	}
	if err := setFileTimes(out, dir.fd, j.base, &ts); err != nil {
		_ = unix.Close(out)
		return fmt.Errorf("copy tree: set mtime of %s: %w", j.rel, err)
	}
	if err := unix.Close(out); err != nil {
		return fmt.Errorf("copy tree: write %s: %w", j.rel, err)
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

// link hardlinks the job's source file as its name. It reports false (and
// no error) when the two are on different file systems, so the caller
// copies instead.
func (c *copier) link(dir, src *dirHandle, j fileJob) (bool, error) {
	err := replaceAt(dir.fd, j.base, func() error {
		// Flags 0: a symlink in the source would be linked, not followed.
		return unix.Linkat(src.fd, j.base, dir.fd, j.base, 0)
	})
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) {
		// EPERM: hardlinks refused (protected_hardlinks for a file
		// owned by someone else, or a file system without them).
		return false, nil
	}
	return err == nil, err
}

// readWrite copies in to out from their current offsets to in's end,
// through buf.
func readWrite(out, in int, buf []byte) error {
	for {
		n, err := fsutil.IgnoringEINTR(func() (int, error) { return unix.Read(in, buf) })
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		for w := buf[:n]; len(w) > 0; {
			m, err := fsutil.IgnoringEINTR(func() (int, error) { return unix.Write(out, w) })
			if err != nil {
				return err
			}
			w = w[m:]
		}
	}
}

// hardlink gives a file copied earlier its extra name. Hardlinks are rare,
// so the two directories are opened afresh.
func (c *copier) hardlink(l linkJob) error {
	fromDir, fromBase := path.Split(l.first)
	toDir, toBase := path.Split(l.rel)
	from, err := c.openDir(fromDir)
	if err != nil {
		return err
	}
	defer unix.Close(from)
	to, err := c.openDir(toDir)
	if err != nil {
		return err
	}
	defer unix.Close(to)
	return replaceAt(to, toBase, func() error { return unix.Linkat(from, fromBase, to, toBase, 0) })
}

// openDir opens the destination directory rel one component at a time
// from the root, never following a symlink.
func (c *copier) openDir(rel string) (int, error) {
	fd, err := unix.Dup(c.root.fd)
	if err != nil {
		return -1, err
	}
	for _, comp := range strings.Split(strings.Trim(rel, "/"), "/") {
		if comp == "" || comp == "." {
			continue
		}
		next, err := openDirAt(fd, comp)
		_ = unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// setDirMeta applies the mode and times of every directory that did not
// get them while the copy went on (the root, pinned directories, modes
// that early refuses), deepest first, so that making a directory
// read-only or setting its mtime comes after everything inside it has
// been written. Reverse walk order visits all of a directory's subtree
// right before the directory itself, so a stack of descriptors along the
// current path opens each directory once.
func (c *copier) setDirMeta() error {
	type open struct {
		rel string
		fd  int
	}
	stack := []open{{".", c.root.fd}} // the root's handle is closed by Copy
	defer func() {
		for _, o := range stack[1:] {
			_ = unix.Close(o.fd)
		}
	}()
	for _, d := range slices.Backward(c.dirs) {
		if d.err != nil {
			return d.err
		}
		if d.done {
			continue
		}
		for top := stack[len(stack)-1]; !within(d.rel, top.rel); top = stack[len(stack)-1] {
			_ = unix.Close(top.fd)
			stack = stack[:len(stack)-1]
		}
		for top := stack[len(stack)-1]; top.rel != d.rel; top = stack[len(stack)-1] {
			rest := d.rel
			if top.rel != "." {
				rest = d.rel[len(top.rel)+1:]
			}
			comp, _, _ := strings.Cut(rest, "/")
			fd, err := openDirAt(top.fd, comp)
			if err != nil {
				return fmt.Errorf("copy tree: open %s: %w", d.rel, err)
			}
			stack = append(stack, open{path.Join(top.rel, comp), fd})
		}
		if err := d.apply(stack[len(stack)-1].fd); err != nil {
			return err
		}
	}
	return nil
}

// within reports whether rel is dir or inside it.
func within(rel, dir string) bool {
	return dir == "." || rel == dir || strings.HasPrefix(rel, dir+"/")
}

// fileMode keeps the permission bits and the sticky bit; setuid and
// setgid are dropped like every tier drops them.
func fileMode(m fs.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	return mode
}

// times returns the source's access and modification times, so a copy
// does not look freshly read to tools that care either.
func times(info fs.FileInfo) ([2]unix.Timespec, error) {
	mtime, err := unix.TimeToTimespec(info.ModTime())
	if err != nil {
		return [2]unix.Timespec{}, err
	}
	atime := mtime
	if st, ok := info.Sys().(*unix.Stat_t); ok { // statInfo's
		atime = st.Atim
	}
	return [2]unix.Timespec{atime, mtime}, nil
}
