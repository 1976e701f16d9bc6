package tiered

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

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
	Local local.Report `json:"local"`
	// Remote is nil when no remote tier is configured.
	Remote *remote.CheckReport `json:"remote,omitempty"`
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
// left over in each. A deep check of the remote also reads the members
// of every archive and compares their count and bytes with the entry's
// metadata, as a pull would after extracting them. A remote store that cannot check itself is an error
// wrapping tiercache.ErrInvalidArgument, and a repair in read-only mode
// one wrapping tiercache.ErrReadOnly, both before anything is examined.
// If the remote check fails, what was found so far is returned with the
// error.
func (c *Cache) Fsck(ctx context.Context, opts FsckOptions) (FsckReport, error) {
	if opts.Repair && c.opts.ReadOnly {
		return FsckReport{}, fmt.Errorf("fsck --repair: %w", tiercache.ErrReadOnly)
	}
	if err := c.needLocal("fsck"); err != nil {
		return FsckReport{}, err
	}
	var checker remote.Checker
	if c.remote != nil {
		var ok bool
		if checker, ok = c.remote.(remote.Checker); !ok {
			return FsckReport{}, fmt.Errorf("%w: fsck: the remote store (%T) cannot be checked", tiercache.ErrInvalidArgument, c.remote)
		}
	}
	var rep FsckReport
	var err error
	rep.Local, err = c.local.Verify(ctx, local.VerifyOptions{Repair: opts.Repair, Deep: opts.Deep, Grace: opts.Grace})
	if err != nil {
		return rep, fmt.Errorf("local fsck: %w", err)
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

// inspectArchive reads the tar members of a zstd archive, without
// writing anything, and checks their number and regular-file bytes
// against m, the way verify does after an extraction: an archive whose
// manifest records another tree would fail every pull. It stops at the
// first member past what m records.
func (c *Cache) inspectArchive(ctx context.Context, m remote.Meta, r io.Reader) error {
	maxMem := c.opts.Extract.MaxDecoderMemory
	if maxMem == 0 {
		maxMem = archive.DefaultMaxDecoderMemory
	}
	// One decoder goroutine at most: it must not read r after we return.
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxMem))
	if err != nil {
		return fmt.Errorf("key %q: %w", m.Key, err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	var files, size int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: key %q: the archive does not decode: %w", tiercache.ErrIntegrity, m.Key, err)
		}
		files++
		if hdr.Typeflag == tar.TypeReg {
			size += hdr.Size
		}
		if files > m.Files || size > m.Size {
			break
		}
	}
	if files != m.Files || size != m.Size {
		what := "holds"
		if files > m.Files || size > m.Size {
			what = "holds at least"
		}
		return fmt.Errorf("%w: key %q: the archive %s %d members of %d bytes, the manifest records %d of %d bytes",
			tiercache.ErrIntegrity, m.Key, what, files, size, m.Files, m.Size)
	}
	return nil
}
