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
	"github.com/tiercache/tiercache/archive"
)

// Problem kinds Verify reports (tiercache.Problem.Kind).
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
	// copy in place, say). Repair removes it like a broken entry; of an
	// entry kept as an archive (checked sound first), only the tree made
	// beside it goes, unless it was used within the grace period, and the
	// next Get makes it again.
	ProblemTreeMismatch = "tree-mismatch"
	// ProblemArchiveMismatch is an entry kept as an archive whose file
	// no longer has its recorded size or (Deep only) SHA-256, or does not
	// read back as the tree the entry records or with the index it
	// records: the file (or its metadata) was damaged on disk. A pull drops such an entry and fetches the key again; Repair
	// removes it like a broken entry.
	ProblemArchiveMismatch = "archive-mismatch"
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
	// ProblemTempPointer is a temporary pointer (or pull record) older
	// than the grace, left by a crash while it was swapped. Repair
	// removes it.
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
	// with the entry's metadata, and reads every archive back with a
	// pull's checks, comparing its SHA-256 and shape with the metadata.
	Deep bool
	// Grace is how old orphan versions, versions retired from being
	// current and temporary pointers must be before they are reported
	// (and, with Repair, deleted). Zero means the Cache's grace
	// (Options.Grace); negative is an error. A shorter grace can delete a
	// replaced tree that another process is still copying out.
	Grace time.Duration
}

// Verify checks the cache's entries and looks for what interrupted
// operations left behind, and with opts.Repair removes what it finds
// (see the Problem* kinds). It is safe to run while other goroutines and
// processes use the cache: an entry is reported only if its pointer still
// names the same version after the check, a staging directory only if no
// live Put holds its lock, and the leftovers only once older than the
// grace; leftovers are found by the sweeps' own scan, and repairs go
// through the same locks as Put, Prune and the sweeps. With Repair, a
// leftover found no longer one when looked at again under its key's lock
// (a Put committed it, or restarted its grace, meanwhile) is left in
// place and not reported.
// The steps after the entries run under the sweep lock, so no sweep moves
// things meanwhile.
//
// Failing to examine the cache (an unreadable directory, a cancelled
// ctx) is an error. A repair that fails leaves its Problem unrepaired,
// with the reason in Detail.
func (c *Cache) Verify(ctx context.Context, opts VerifyOptions) (tiercache.CheckReport, error) {
	if opts.Grace < 0 {
		return tiercache.CheckReport{}, fmt.Errorf("%w: verify: negative grace %v", tiercache.ErrInvalidArgument, opts.Grace)
	}
	if err := ctx.Err(); err != nil {
		return tiercache.CheckReport{}, err
	}
	v := &verifier{c: c, opts: opts, report: tiercache.CheckReport{Problems: []tiercache.Problem{}}}
	if err := v.entries(ctx); err != nil {
		return v.report, fmt.Errorf("verify %s: %w", c.root, err)
	}
	lock, err := c.lock(ctx, filepath.Join(c.locksDir, sweepLock))
	if err != nil {
		return v.report, fmt.Errorf("verify %s: %w", c.root, err)
	}
	defer lock.Unlock()
	grace := cmp.Or(opts.Grace, c.grace)
	s := &scan{c: c, stop: ctx.Err, grace: grace, settle: min(grace, stagingSettle), wait: ctx}
	report := func(p *tiercache.Problem, remove func() error) error {
		if p != nil {
			v.add(*p, remove)
		}
		return nil
	}
	// Trash first, so what this run moves there is not reported twice.
	for _, step := range []func(found) error{s.trash, s.staging, s.orphans, s.retired, s.tempPointers} {
		if err := step(report); err != nil {
			return v.report, fmt.Errorf("verify %s: %w", c.root, err)
		}
	}
	if opts.Repair {
		if err := c.emptyTrashWait(ctx); err != nil {
			if ctx.Err() != nil {
				return v.report, fmt.Errorf("verify %s: emptying trash: %w", c.root, err)
			}
			// A file a running build holds open (Windows will not
			// delete it): reported unrepaired, as its removal is, and
			// no reason to leave the rest, the remote included,
			// unchecked. The next sweep retries.
			v.report.Problems = append(v.report.Problems, tiercache.Problem{Kind: ProblemTrash, Path: c.trashDir, Detail: "emptying it: " + err.Error()})
		}
	}
	return v.report, nil
}

// stagingSettle is how old a staging lock file without its directory
// must be before Verify reports it (see scan.staging). Verify uses the
// grace instead if shorter.
const stagingSettle = time.Minute

// verifier is the state of one Verify.
type verifier struct {
	c      *Cache
	opts   VerifyOptions
	report tiercache.CheckReport
}

// add records a problem; repair, if Repair is set, removes it. A
// leftover the repair finds no longer one is not recorded: like an entry
// replaced while it was checked, it was a concurrent write, not a
// problem, and reporting it would fail a job that repairs.
func (v *verifier) add(p tiercache.Problem, repair func() error) {
	if v.opts.Repair && repair != nil {
		if err := repair(); errors.Is(err, errNotLeftover) {
			return
		} else if err != nil {
			p.Detail += "; repair failed: " + err.Error()
		} else {
			p.Repaired = true
		}
	}
	v.report.Problems = append(v.report.Problems, p)
}

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
		if _, err := os.Stat(filepath.Join(v.c.dataDir, version, archiveFile)); err == nil && p.Kind == ProblemTreeMismatch {
			v.add(*p, func() error {
				dropped, err := v.c.dropTree(ctx, name, version)
				if err == nil && !dropped {
					err = errors.New("the tree was used within the grace period; run fsck again later")
				}
				return err
			})
			return nil
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
func (v *verifier) entry(ctx context.Context, name string) (*tiercache.Problem, string, error) {
	c := v.c
	version, err := c.current(name)
	if err == nil && version == "" {
		return nil, "", nil // removed since listed
	}
	v.report.Entries++
	p := &tiercache.Problem{Kind: ProblemBrokenEntry, Path: filepath.Join(c.indexDir, name)}
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
	case nameOf(tiercache.ScopedKey(m.Scope, m.Key)) != name:
		p.Path, p.Detail = vdir, fmt.Sprintf("its metadata names key %q, which is not stored under this name", m.Key)
	case m.Archive != nil:
		p.Key = m.Key
		s := Stored{Entry: tiercache.Entry{Key: m.Key}, Archive: filepath.Join(vdir, archiveFile), version: version, meta: m}
		p = v.archive(ctx, p, s)
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
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
			case errors.Is(err, fs.ErrPermission):
				// A directory its owner may not read (root's trees
				// hold mode 000 ones) cannot be counted: no sign of
				// damage, and repairing would drop a sound tree.
				p = nil
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

// archive checks the archive of an entry kept as one (s): that it has its
// recorded size and, with Deep, that it reads back as what the entry
// records (digest, shape and index, if it records one) with a pull's
// checks, and that a tree made beside it still holds what the entry
// records. It returns p filled in, or nil if all is well.
func (v *verifier) archive(ctx context.Context, p *tiercache.Problem, s Stored) *tiercache.Problem {
	m := s.meta
	fi, err := os.Stat(s.Archive)
	switch {
	case err != nil:
		p.Path, p.Detail = s.Archive, "the archive is missing or unreadable: "+err.Error()
		return p
	case fi.Size() != m.Archive.Size:
		p.Kind, p.Path = ProblemArchiveMismatch, s.Archive
		p.Detail = fmt.Sprintf("the archive is %d bytes, the metadata records %d", fi.Size(), m.Archive.Size)
		return p
	case !v.opts.Deep:
		return nil
	}
	f, err := os.Open(s.Archive)
	if err != nil {
		p.Path, p.Detail = s.Archive, err.Error()
		return p
	}
	res, err := archive.Inspect(ctx, f, s.ExtractLimits(archive.ExtractOptions{}))
	if err == nil {
		err = s.CheckArchive(res)
	}
	if idx := archive.IndexInfo(m.Archive.Index); err == nil && idx.Length > 0 {
		// The archive is intact: an index that does not read back is
		// one its readers would trust wrongly or refuse. One of a newer
		// version is authentic, and unused here: not a problem.
		if _, err = archive.ReadIndex(f, m.Archive.Size, idx); errors.Is(err, archive.ErrIndexVersion) {
			err = nil
		}
	}
	f.Close()
	if err != nil {
		p.Kind, p.Path, p.Detail = ProblemArchiveMismatch, s.Archive, err.Error()
		return p
	}
	tree := filepath.Join(filepath.Dir(s.Archive), treeDir)
	if fi, err := os.Lstat(tree); err == nil && fi.IsDir() {
		st, err := statTree(ctx, tree)
		switch {
		case errors.Is(err, fs.ErrPermission) && ctx.Err() == nil:
			// Unreadable to its owner, not damaged (see above).
		case err != nil:
			p.Kind, p.Path, p.Detail = ProblemTreeMismatch, tree, err.Error()
			return p
		case st.Files != m.Files || st.Size != m.Size:
			p.Kind, p.Path = ProblemTreeMismatch, tree
			p.Detail = fmt.Sprintf("the tree holds %d files of %d bytes, the metadata records %d files of %d bytes", st.Files, st.Size, m.Files, m.Size)
			return p
		}
	}
	v.report.Verified++
	return nil
}
