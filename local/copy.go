package local

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treecopy"
)

// Copy copies the tree at src (which may be reached through a symlink)
// into dst, an existing empty directory, gives dst the mode and mtime of
// src, and returns the tree's Shape. Regular files keep their bytes,
// permission bits (without setuid/setgid) and mtimes; directories, including empty ones,
// get their mode and mtime after their contents are written, so read-only
// trees copy fine; symlinks are copied as links, never followed, whatever
// their target; files hardlinked to each other within src are hardlinked
// in dst. Sockets are left out; devices and FIFOs are refused with
// ErrInvalidArgument.
func Copy(ctx context.Context, src, dst string) (tiercache.Shape, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return tiercache.Shape{}, fmt.Errorf("%w: source %w", tiercache.ErrInvalidArgument, err)
	}
	if !fi.IsDir() {
		return tiercache.Shape{}, fmt.Errorf("%w: source %s is not a directory", tiercache.ErrInvalidArgument, src)
	}
	res, err := treecopy.Copy(ctx, src, dst, treecopy.Options{})
	if err != nil {
		// treecopy names paths relative to the trees; say which trees,
		// so a full disk names the cache that is full.
		return tiercache.Shape{}, fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return tiercache.Shape{
		Size:  res.Bytes,
		Files: res.Files + res.Hardlinks + res.Symlinks + res.Dirs - 1, // Dirs counts dst itself
	}, nil
}

// statTree measures a tree the way Copy measures the trees it writes:
// sockets are left out, as Copy and archives leave them out, and the
// other special files refused.
// Directories are listed by a few goroutines at once: on a large tree the
// walk is a visible share of a push, which measures DIR before streaming.
func statTree(ctx context.Context, root string) (tiercache.Shape, error) {
	const walkers = 4
	var (
		mu    sync.Mutex
		st    tiercache.Shape
		seen  = make(map[inode]bool)
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	// Directories found but not yet listed; pending counts them so the
	// walkers know when the tree is exhausted.
	queue := make(chan string, 1024)
	var pending sync.WaitGroup
	var visit func(dir string)
	visit = func(dir string) {
		defer pending.Done()
		if failed() {
			return
		}
		if err := ctx.Err(); err != nil {
			fail(err)
			return
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			fail(err)
			return
		}
		var local tiercache.Shape
		for _, d := range entries {
			p := filepath.Join(dir, d.Name())
			local.Files++
			switch t := d.Type(); {
			case t.IsDir():
				pending.Add(1)
				select {
				case queue <- p:
				default:
					visit(p) // queue full: walk it here rather than block
				}
			case t&fs.ModeSymlink != 0:
			case t&fs.ModeSocket != 0:
				local.Files-- // not stored, so not counted
			case t.IsRegular():
				fi, err := d.Info()
				if err != nil {
					fail(err)
					return
				}
				id, multi, err := inodeOf(p, fi)
				if err != nil {
					fail(err)
					return
				}
				if multi {
					mu.Lock()
					dup := seen[id]
					seen[id] = true
					mu.Unlock()
					if dup {
						continue
					}
				}
				local.Size += fi.Size()
			default:
				fail(fmt.Errorf("%w: %s is a %s, which the cache does not store", tiercache.ErrInvalidArgument, p, fsutil.TypeName(t)))
				return
			}
		}
		mu.Lock()
		st.Files += local.Files
		st.Size += local.Size
		mu.Unlock()
	}
	var workers sync.WaitGroup
	for range walkers {
		workers.Go(func() {
			for dir := range queue {
				visit(dir)
			}
		})
	}
	pending.Add(1)
	queue <- root
	pending.Wait()
	close(queue)
	workers.Wait()
	return st, first
}
