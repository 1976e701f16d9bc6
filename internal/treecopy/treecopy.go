// Package treecopy copies a directory tree into another directory with
// fidelity (file bytes, permission bits, mtimes to the nanosecond, symlinks
// as links, hardlinks as hardlinks, empty directories), the way the CLI
// turns a cached tree into the directory a job asked for.
//
// Speed matters on a local hit, so each regular file is cloned where the
// file system can share data blocks, and several files are copied at once.
// On Linux a file is first cloned with a reflink (FICLONE, instant on
// btrfs, XFS and bcachefs), then copied with copy_file_range (in-kernel).
// On macOS it is first cloned with clonefile (instant on APFS). Elsewhere,
// and where cloning fails, it is copied with reads and writes. With
// Options.Link, files are hardlinked from the source instead, which is
// fastest but shares inodes with it.
//
// Every write into the destination is made relative to a descriptor of a
// destination directory, with a single-component name. Copy opens each
// directory's descriptor itself, through its parent's and without following
// symlinks, right after creating or checking it, so a descriptor always
// refers to a real directory inside the destination. Whatever the
// destination already holds at a path the tree uses is removed first rather
// than written through: a symlink planted in the destination is replaced,
// never followed, so a copy cannot write outside it, and a file that is a
// hardlink to something else (say, to a cache entry after an earlier Link
// copy) is unlinked, never overwritten in place. A regular file thus costs
// a handful of system calls: open, create, copy, fchmod, futimens, closes.
//
// The Linux code (copy_linux.go) uses Linux-only calls; the code every
// other Unix uses (copy_portable.go) does without them (times set by name
// relative to the directory, no O_PATH). Building with the tag
// tiercache_portable selects the latter on Linux too, so that its tests
// run where macOS and FreeBSD are not at hand. Both share the walk in
// copy_unix.go.
//
// Windows (copy_windows.go) has a walk of its own: a plain read/write
// copy through two os.Roots (one per tree), with the same rule that
// whatever is in the way is replaced and never followed. It keeps what
// Windows keeps of a file: bytes, the write bit (as the read-only
// attribute) and mtimes (to 100 ns). Hardlinks within the source are
// hardlinked in the copy, as on Unix, and symlinks keep the time they
// were created (see copy_windows.go); creating them needs a privilege on Windows, and
// Copy says so when it lacks it.
package treecopy

import (
	"context"
	"fmt"
	"os"

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
	// ChmodSource lets Copy give its owner read and search permission on
	// a source directory it could not otherwise enter (mode 000 or 0300,
	// which root's trees may hold), and leaves it so: for a source that
	// is the caller's own scratch (a pull's stage), never a tree others
	// copy. The copy gets the directory's mode as it was. Unix only.
	ChmodSource bool
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
	// Sockets is the number of sockets left out: a socket cannot be
	// copied meaningfully (tar leaves them out too).
	Sockets int64
}

// Copy copies the tree at src into dst, creating dst (and its parents) if
// absent. Entries of src replace whatever dst holds at the same paths, as
// `tar -x` does; other entries of dst are left alone. Directory modes and
// mtimes are applied after their contents are in place, so read-only
// directories copy fine. Owners are not copied, and setuid/setgid bits are
// dropped.
//
// src is read without following symlinks; a regular file is copied as the
// size it had when its directory was listed (cache trees do not change
// while they are copied). Sockets are left out (see Result.Sockets); Copy
// fails on the other file types a cache tree never holds (devices, FIFOs)
// with an error wrapping tiercache.ErrInvalidArgument. On error or
// cancellation, what was already copied stays in dst: directories whose
// walk finished with their final modes, the others private (0700).
func Copy(ctx context.Context, src, dst string, opts Options) (Result, error) {
	if opts.Workers < 0 {
		return Result{}, fmt.Errorf("%w: treecopy workers %d is negative", tiercache.ErrInvalidArgument, opts.Workers)
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	fi, err := os.Stat(src) // src itself may be reached through a symlink
	if err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", err)
	}
	if !fi.IsDir() {
		return Result{}, fmt.Errorf("%w: copy tree: source %s is not a directory", tiercache.ErrInvalidArgument, src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Result{}, fmt.Errorf("copy tree: %w", err)
	}
	return copyTree(ctx, src, dst, fi, opts)
}
