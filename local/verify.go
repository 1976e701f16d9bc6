package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/flock"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// Problem kinds Verify reports.
const (
	// ProblemBrokenEntry is a pointer that does not lead to a usable
	// version of its key: a bad target, a missing version, metadata that
	// is missing, unreadable or names a key that does not belong under
	// the pointer's name, or a missing tree. Get reports such an entry as
	// an integrity error. Repair removes the pointer, so the key misses.
	ProblemBrokenEntry = "broken-entry"
	// ProblemTreeMismatch (Deep only) is an entry whose tree no longer
	// holds the number of files and bytes its metadata records: something
	// wrote into it (a caller that changed files of a `pull --link`
	// copy in place, say). Repair removes it like a broken entry.
	ProblemTreeMismatch = "tree-mismatch"
	// ProblemStaleStaging is the staging directory of a Put whose process
	// died. Repair deletes it.
	ProblemStaleStaging = "stale-staging"
	// ProblemOrphanVersion is a version no pointer names and no retired
	// record covers, older than the grace: a crash between publishing a
	// version and pointing at it. Repair deletes it.
	ProblemOrphanVersion = "orphan-version"
	// ProblemExpiredVersion is a version replaced or removed longer ago
	// than the grace, which a sweep would delete. Repair deletes it.
	ProblemExpiredVersion = "expired-version"
	// ProblemTempPointer is a temporary pointer older than the grace, left
	// by a crash while a pointer was swapped. Repair removes it.
	ProblemTempPointer = "temp-pointer"
	// ProblemTrash is something left in trash/ by an interrupted
	// deletion. Repair deletes it.
	ProblemTrash = "trash"
)

// VerifyOptions configure Verify. The zero value checks metadata only and
// changes nothing.
type VerifyOptions struct {
	// Repair removes what Verify reports.
	Repair bool
	// Deep walks every entry's tree and compares its file count and size
	// with the entry's metadata.
	Deep bool
	// Grace is how old orphan versions, versions retired from being
	// current and temporary pointers must be before they are reported
	// (and, with Repair, deleted). Zero means the Cache's grace
	// (Options.Grace); negative is an error. A shorter grace can delete a
	// replaced tree that another process is still copying out.
	Grace time.Duration
}

// Problem is one thing Verify found wrong.
type Problem struct {
	// Kind is one of the Problem* constants.
	Kind string `json:"kind"`
	// Key is the entry's key, when it is known.
	Key string `json:"key,omitempty"`
	// Path is the file or directory concerned.
	Path string `json:"path"`
	// Detail says what is wrong with it.
	Detail string `json:"detail"`
	// Repaired is true when Verify removed it.
	Repaired bool `json:"repaired"`
}

// Report is what Verify found.
type Report struct {
	// Entries is the number of entries examined.
	Entries int `json:"entries"`
	// Verified is the number of trees walked and found to match their
	// metadata (Deep).
	Verified int `json:"verified"`
	// Problems lists what was found, repaired or not.
	Problems []Problem `json:"problems"`
}

// Unrepaired returns how many problems remain.
func (r Report) Unrepaired() int {
	n := 0
	for _, p := range r.Problems {
		if !p.Repaired {
			n++
		}
	}
	return n
}

// Verify checks the cache's entries and looks for what interrupted
// operations left behind, and with opts.Repair removes what it finds
// (see the Problem* kinds). It is safe to run while other goroutines and
// processes use the cache: an entry is reported only if its pointer still
// names the same version after the check, a staging directory only if no
// live Put holds its lock, and the leftovers only once older than the
// grace; repairs go through the same locks as Put, Prune and the sweeps.
// The steps after the entries run under the sweep lock, so no sweep moves
// things meanwhile.
//
// Failing to examine the cache (an unreadable directory, a cancelled
// ctx) is an error. A repair that fails leaves its Problem unrepaired,
// with the reason in Detail.
func (c *Cache) Verify(ctx context.Context, opts VerifyOptions) (Report, error) {
	if opts.Grace < 0 {
		return Report{}, fmt.Errorf("%w: verify: negative grace %v", tiercache.ErrInvalidArgument, opts.Grace)
	}
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	v := &verifier{c: c, opts: opts, grace: cmp.Or(opts.Grace, c.grace), report: Report{Problems: []Problem{}}}
	if err := v.entries(ctx); err != nil {
		return v.report, fmt.Errorf("verify %s: %w", c.root, err)
	}
	lock, err := flock.Lock(ctx, filepath.Join(c.locksDir, sweepLock))
	if err != nil {
		return v.report, fmt.Errorf("verify %s: %w", c.root, err)
	}
	defer lock.Unlock()
	// Trash first, so what this run moves there is not reported twice.
	for _, step := range []func(context.Context) error{v.trash, v.staging, v.orphans, v.retired, v.tempPointers} {
		if err := step(ctx); err != nil {
			return v.report, fmt.Errorf("verify %s: %w", c.root, err)
		}
	}
	if opts.Repair {
		if err := c.emptyTrashWait(ctx); err != nil {
			return v.report, fmt.Errorf("verify %s: emptying trash: %w", c.root, err)
		}
	}
	return v.report, nil
}

// verifier is the state of one Verify.
type verifier struct {
	c      *Cache
	opts   VerifyOptions
	grace  time.Duration
	report Report
}

// add records a problem; repair, if Repair is set, removes it.
func (v *verifier) add(p Problem, repair func() error) {
	if v.opts.Repair && repair != nil {
		if err := repair(); err != nil {
			p.Detail += "; repair failed: " + err.Error()
		} else {
			p.Repaired = true
		}
	}
	v.report.Problems = append(v.report.Problems, p)
}

// old reports whether a leftover modified at t is past the grace.
func (v *verifier) old(t time.Time) bool { return time.Since(t) >= v.grace }

// entries checks every pointer in index/.
func (v *verifier) entries(ctx context.Context) error {
	changed := false
	err := forEachName(v.c.indexDir, ctx.Err, func(name string) error {
		if strings.HasPrefix(name, ".") {
			return nil // a temporary pointer: see tempPointers
		}
		p, version, err := v.entry(ctx, name)
		if err != nil || p == nil {
			return err
		}
		v.add(*p, func() error {
			changed = true
			if err := v.c.evict(ctx, name, version); err != nil && !errors.Is(err, errReplaced) {
				return err
			}
			return nil
		})
		return nil
	})
	if changed && !v.c.noSync {
		err = errors.Join(err, syncPath(v.c.indexDir))
	}
	return err
}

// entry checks the entry under name and returns its problem, if any,
// with the version its pointer names.
func (v *verifier) entry(ctx context.Context, name string) (*Problem, string, error) {
	c := v.c
	version, err := c.current(name)
	if err == nil && version == "" {
		return nil, "", nil // removed since listed
	}
	v.report.Entries++
	p := &Problem{Kind: ProblemBrokenEntry, Path: filepath.Join(c.indexDir, name)}
	if err != nil {
		p.Detail = err.Error()
		return p, version, nil
	}
	vdir := filepath.Join(c.dataDir, version)
	m, err := readMeta(filepath.Join(vdir, metaFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Path, p.Detail = vdir, "the version or its metadata is missing"
	case err != nil:
		p.Path, p.Detail = vdir, err.Error()
	case nameOf(m.Key) != name:
		p.Path, p.Detail = vdir, fmt.Sprintf("its metadata names key %q, which is not stored under this name", m.Key)
	default:
		p.Key = m.Key
		tree := filepath.Join(vdir, treeDir)
		if fi, err := os.Lstat(tree); err != nil || !fi.IsDir() {
			p.Path, p.Detail = tree, "the tree is missing"
		} else if v.opts.Deep {
			st, err := statTree(ctx, tree)
			switch {
			case ctx.Err() != nil:
				return nil, "", ctx.Err()
			case err != nil:
				p.Kind, p.Path, p.Detail = ProblemTreeMismatch, tree, err.Error()
			case st.Files != m.Files || st.Size != m.Size:
				p.Kind, p.Path = ProblemTreeMismatch, tree
				p.Detail = fmt.Sprintf("the tree holds %d files of %d bytes, the metadata records %d files of %d bytes", st.Files, st.Size, m.Files, m.Size)
			default:
				p = nil
				v.report.Verified++
			}
		} else {
			p = nil
		}
	}
	if p == nil {
		return nil, version, nil
	}
	// A version only changes or vanishes once its pointer has moved: if
	// it did, this was a replacement racing the check, not damage.
	if cur, err := c.current(name); err == nil && cur != version {
		return nil, "", nil
	}
	return p, version, nil
}

// trash reports (and deletes) what is left in trash/ past the grace.
// Anything younger is a deletion under way or about to start: a sweep
// that found the sweep lock held (by a detached empty-trash, say) moves
// dead staging here and leaves the deleting to the lock's holder or the
// next command.
func (v *verifier) trash(ctx context.Context) error {
	return forEachName(v.c.trashDir, ctx.Err, func(name string) error {
		path := filepath.Join(v.c.trashDir, name)
		if fi, err := os.Lstat(path); err == nil && !v.old(changedAt(fi)) {
			return nil
		}
		v.add(Problem{Kind: ProblemTrash, Path: path, Detail: "left by an interrupted deletion"},
			func() error { return fsutil.RemoveAll(path) })
		return nil
	})
}

// stagingSettle is how old a staging lock file without its directory
// must be before Verify reports it (see forEachDeadStaging). Verify uses
// the grace instead if shorter.
const stagingSettle = time.Minute

// staging reports the staging of dead Puts (see forEachDeadStaging).
func (v *verifier) staging(ctx context.Context) error {
	return v.c.forEachDeadStaging(ctx.Err, min(v.grace, stagingSettle), func(path, why string, remove func() error) error {
		v.add(Problem{Kind: ProblemStaleStaging, Path: path, Detail: why}, remove)
		return nil
	})
}

// orphans reports versions that no pointer names and no retired record
// covers, once older than the grace. Like the sweep, it rechecks under
// the key's stripe lock, which a Put holds from publishing a version to
// pointing at it, before deleting.
func (v *verifier) orphans(ctx context.Context) error {
	c := v.c
	orphan := func(version string) bool {
		name, ok := versionName(version)
		if !ok {
			return false // not ours: leave it alone
		}
		if _, err := os.Lstat(filepath.Join(c.retiredDir, version)); err == nil {
			return false
		}
		cur, err := c.current(name)
		return err == nil && cur != version
	}
	return forEachName(c.dataDir, ctx.Err, func(version string) error {
		path := filepath.Join(c.dataDir, version)
		if !orphan(version) {
			return nil
		}
		fi, err := os.Lstat(path)
		if err != nil || !v.old(fi.ModTime()) {
			return ignoreNotExist(err)
		}
		name, _ := versionName(version)
		v.add(Problem{Kind: ProblemOrphanVersion, Path: path, Detail: fmt.Sprintf("no pointer names it; last used %s ago", since(fi.ModTime()))},
			func() error {
				lock, err := c.lockStripe(ctx, name)
				if err != nil {
					return err
				}
				defer lock.Unlock()
				if !orphan(version) {
					return nil // pointed at meanwhile: no longer an orphan
				}
				return c.toTrash(path, version)
			})
		return nil
	})
}

// retired reports versions retired longer ago than the grace that are
// still in data/.
func (v *verifier) retired(ctx context.Context) error {
	c := v.c
	return forEachName(c.retiredDir, ctx.Err, func(version string) error {
		rec := filepath.Join(c.retiredDir, version)
		fi, err := os.Lstat(rec)
		if err != nil || !v.old(fi.ModTime()) {
			return ignoreNotExist(err)
		}
		name, ok := versionName(version)
		if !ok {
			return nil
		}
		path := filepath.Join(c.dataDir, version)
		if _, err := os.Lstat(path); err != nil {
			return ignoreNotExist(err) // only the record is left: harmless
		}
		if cur, _ := c.current(name); cur == version {
			return nil // current again (a crash mid-swap): not expired
		}
		v.add(Problem{Kind: ProblemExpiredVersion, Path: path, Detail: fmt.Sprintf("replaced or removed %s ago", since(fi.ModTime()))},
			func() error {
				lock, err := c.lockStripe(ctx, name)
				if err != nil {
					return err
				}
				defer lock.Unlock()
				if cur, _ := c.current(name); cur != version {
					if err := c.toTrash(path, version); err != nil {
						return err
					}
				}
				return ignoreNotExist(os.Remove(rec))
			})
		return nil
	})
}

// tempPointers reports temporary pointers older than the grace.
func (v *verifier) tempPointers(ctx context.Context) error {
	c := v.c
	return forEachName(c.indexDir, ctx.Err, func(name string) error {
		if !strings.HasPrefix(name, tmpPrefix) {
			return nil
		}
		path := filepath.Join(c.indexDir, name)
		fi, err := os.Lstat(path)
		if err != nil || !v.old(fi.ModTime()) {
			return ignoreNotExist(err)
		}
		v.add(Problem{Kind: ProblemTempPointer, Path: path, Detail: "a temporary pointer left by an interrupted put"},
			func() error { return ignoreNotExist(os.Remove(path)) })
		return nil
	})
}

// since renders the time elapsed since t, rounded to the second.
func since(t time.Time) string { return time.Since(t).Round(time.Second).String() }
