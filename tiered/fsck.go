package tiered

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
)

// FsckOptions configure Fsck. The zero value checks metadata only and
// changes nothing.
type FsckOptions struct {
	// Repair removes what the check reports, in both tiers.
	Repair bool
	// Deep also walks every local tree and downloads every remote archive
	// to verify them against their metadata.
	Deep bool
	// Grace overrides how old leftovers of interrupted writes must be
	// before they are reported and removed, in both tiers; zero means
	// each tier's own (see local.VerifyOptions and remote.CheckOptions).
	Grace time.Duration
}

// FsckReport is what Fsck found in each tier.
type FsckReport struct {
	Local tiercache.CheckReport `json:"local"`
	// Remote is nil when no remote tier is configured.
	Remote *tiercache.CheckReport `json:"remote,omitempty"`
}

// Unrepaired returns how many problems remain in both tiers.
func (r FsckReport) Unrepaired() int {
	n := r.Local.Unrepaired()
	if r.Remote != nil {
		n += r.Remote.Unrepaired()
	}
	return n
}

// Fsck checks the local tier (local.Cache.Verify), then the remote one
// (remote.Checker), and with opts.Repair removes what is broken or
// left over in each. A deep check of the remote also reads every
// archive's members (archive.Inspect) and fails those a pull would
// refuse. A remote store that cannot check itself is an error wrapping
// tiercache.ErrInvalidArgument, and a repair in read-only mode one
// wrapping tiercache.ErrReadOnly, both before anything is examined. If
// the remote check fails, what was found so far is returned with the
// error. A remote-only Cache (see New) checks the remote alone and
// reports its local tier empty.
func (c *Cache) Fsck(ctx context.Context, opts FsckOptions) (FsckReport, error) {
	if opts.Repair && c.opts.ReadOnly {
		return FsckReport{}, fmt.Errorf("fsck --repair: %w", tiercache.ErrReadOnly)
	}
	var checker remote.Checker
	if c.rawRemote != nil {
		var ok bool
		if checker, ok = c.rawRemote.(remote.Checker); !ok {
			return FsckReport{}, fmt.Errorf("%w: fsck: the remote store (%T) cannot be checked", tiercache.ErrInvalidArgument, c.rawRemote)
		}
	}
	rep := FsckReport{Local: tiercache.CheckReport{Problems: []tiercache.Problem{}}}
	if c.local != nil {
		var err error
		rep.Local, err = c.local.Verify(ctx, local.VerifyOptions{Repair: opts.Repair, Deep: opts.Deep, Grace: opts.Grace})
		if err != nil {
			return rep, fmt.Errorf("local fsck: %w", err)
		}
	}
	if checker == nil {
		return rep, nil
	}
	rr, err := checker.Check(ctx, remote.CheckOptions{
		Repair: opts.Repair, Deep: opts.Deep, Grace: opts.Grace,
		Inspect: c.inspectArchive,
	})
	rep.Remote = &rr
	if err != nil {
		return rep, fmt.Errorf("remote fsck: %w", err)
	}
	return rep, nil
}

// inspectArchive reads an archive as a pull would, without writing
// anything: its members pass extraction's checks within what m records,
// they hold the tree m records, and the index m records, if any, reads
// back from the archive's end (archive.ReadIndex). (The store checks the
// archive's size and SHA-256 itself.) Anything that would fail every
// pull is an integrity error.
func (c *Cache) inspectArchive(ctx context.Context, m remote.Meta, r io.Reader) error {
	tail := newIndexTail(archive.IndexInfo(m.Index))
	if tail != nil {
		r = io.TeeReader(r, tail)
	}
	res, err := archive.Inspect(ctx, r, extractOptions(c.opts.Extract, m))
	if err == nil && tail != nil {
		// The rest, past the tar stream's end, holds the index frame.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err // the stream's failure, which the store reports
		}
		err = tail.check()
	}
	switch {
	case err == nil && (res.Files != m.Files || res.Size != m.Size):
		return fmt.Errorf("%w: key %q: the archive holds %d members of %d bytes, the manifest records %d of %d bytes",
			tiercache.ErrIntegrity, m.Key, res.Files, res.Size, m.Files, m.Size)
	case errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, tiercache.ErrUnsafeArchive) || errors.Is(err, tiercache.ErrLimitExceeded):
		return fmt.Errorf("%w: key %q: %w", tiercache.ErrIntegrity, m.Key, err)
	}
	return err
}
