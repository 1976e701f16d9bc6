package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tiercache/tiercache"
)

// copyChunk is how much of a file is copied between two looks at ctx. The
// copy itself goes through os.File.ReadFrom, which lets the kernel move the
// bytes (copy_file_range on Linux) without a user-space buffer, so memory
// stays bounded whatever the file size.
const copyChunk = 8 << 20

// treeStats is what an Entry records about a tree.
type treeStats struct {
	// size is the bytes of regular files, each hardlinked inode counted
	// once (a hardlink member of an archive carries no data).
	size int64
	// files counts every entry below the root: regular files,
	// directories, symlinks and hardlinks (the archive members other than
	// the root itself).
	files int64
}

// inode identifies a file for hardlink detection.
type inode struct {
	dev, ino uint64
}

func inodeOf(fi fs.FileInfo) (inode, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink < 2 {
		return inode{}, false
	}
	return inode{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// modeOf is the mode an entry is stored with: its permission bits and the
// sticky bit; setuid and setgid are dropped, as the cache must not hand out
// privilege-raising files.
func modeOf(fi fs.FileInfo) fs.FileMode {
	return fi.Mode().Perm() | fi.Mode()&fs.ModeSticky
}

// copier copies one tree with full fidelity.
type copier struct {
	ctx   context.Context
	links map[inode]string // source inode -> first destination path
	stats treeStats
}

// copyTree copies the tree at src into dst, an existing empty directory,
// and finally gives dst the mode and mtime of src. Regular files keep their
// bytes, permission bits and mtimes; directories, including empty ones,
// get their mode and mtime after their contents are written, so read-only
// trees copy fine; symlinks are copied as links, never followed, whatever
// their target; files hardlinked to each other within src are hardlinked
// in dst. Other file types are refused with ErrInvalidArgument.
func copyTree(ctx context.Context, src, dst string) (treeStats, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return treeStats{}, fmt.Errorf("%w: source %w", tiercache.ErrInvalidArgument, err)
	}
	if !fi.IsDir() {
		return treeStats{}, fmt.Errorf("%w: source %s is not a directory", tiercache.ErrInvalidArgument, src)
	}
	c := &copier{ctx: ctx, links: make(map[inode]string)}
	if err := c.copyDirContents(src, dst); err != nil {
		return treeStats{}, err
	}
	if err := finishDir(dst, fi); err != nil {
		return treeStats{}, err
	}
	return c.stats, nil
}

func (c *copier) copyDirContents(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read source directory: %w", err)
	}
	for _, e := range entries {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		s := filepath.Join(src, e.Name())
		d := filepath.Join(dst, e.Name())
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat source: %w", err)
		}
		c.stats.files++
		switch mode := fi.Mode(); {
		case mode.IsDir():
			if err := os.Mkdir(d, 0o700); err != nil {
				return err
			}
			if err := c.copyDirContents(s, d); err != nil {
				return err
			}
			if err := finishDir(d, fi); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := c.copyFile(s, d, fi); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			if err := copySymlink(s, d, fi); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s is a special file (%v), which the cache does not store", tiercache.ErrInvalidArgument, s, mode.Type())
		}
	}
	return nil
}

// finishDir applies a directory's metadata once its contents are in place:
// a read-only mode would forbid filling it, and adding entries would move
// its mtime.
func finishDir(d string, fi fs.FileInfo) error {
	if err := os.Chmod(d, modeOf(fi)); err != nil {
		return err
	}
	return os.Chtimes(d, time.Time{}, fi.ModTime())
}

func (c *copier) copyFile(s, d string, fi fs.FileInfo) error {
	id, multi := inodeOf(fi)
	if multi {
		if first, ok := c.links[id]; ok {
			return os.Link(first, d)
		}
	}
	n, err := c.copyBytes(s, d)
	if err != nil {
		return err
	}
	if err := os.Chmod(d, modeOf(fi)); err != nil {
		return err
	}
	if err := os.Chtimes(d, time.Time{}, fi.ModTime()); err != nil {
		return err
	}
	c.stats.size += n
	if multi {
		c.links[id] = d
	}
	return nil
}

func (c *copier) copyBytes(s, d string) (int64, error) {
	// O_NOFOLLOW: if s was swapped for a symlink since it was listed, fail
	// rather than copy whatever the link points at.
	in, err := os.OpenFile(s, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(d, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		if err := c.ctx.Err(); err != nil {
			out.Close()
			return 0, err
		}
		n, err := io.CopyN(out, in, copyChunk)
		total += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Close()
			return 0, err
		}
	}
	return total, out.Close()
}

func copySymlink(s, d string, fi fs.FileInfo) error {
	target, err := os.Readlink(s)
	if err != nil {
		return err
	}
	if err := os.Symlink(target, d); err != nil {
		return err
	}
	return lchtimes(d, fi.ModTime())
}

// lchtimes sets the mtime of a symlink itself (os.Chtimes would follow it).
// The access time is set to the same instant.
func lchtimes(path string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "lchtimes", Path: path, Err: err}
	}
	return nil
}

// statTree measures a tree written by a PutFunc fill, the way copyTree
// measures the trees it writes, and refuses the same special files.
func statTree(ctx context.Context, root string) (treeStats, error) {
	var st treeStats
	seen := make(map[inode]bool)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		st.files++
		switch t := d.Type(); {
		case t.IsDir(), t&fs.ModeSymlink != 0:
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if id, multi := inodeOf(fi); multi {
				if seen[id] {
					return nil
				}
				seen[id] = true
			}
			st.size += fi.Size()
		default:
			return fmt.Errorf("%w: %s is a special file (%v), which the cache does not store", tiercache.ErrInvalidArgument, p, t)
		}
		return nil
	})
	return st, err
}
