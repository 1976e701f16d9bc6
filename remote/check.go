package remote

import (
	"context"
	"io"
	"time"

	"github.com/tiercache/tiercache"
)

// Checker is implemented by stores that can check their own consistency
// (`tiercache fsck`). It is separate from Store, which stays the small
// interface the tiered cache needs for its daily work; callers detect it
// with a type assertion.
type Checker interface {
	// Check examines every entry of the store and the leftovers of
	// interrupted writes, and reports the problems it finds, one per
	// entry or object. With CheckOptions.Repair it also removes what it
	// reports: an entry whose archive is missing, has the wrong size or
	// (with Deep) the wrong SHA-256 is deleted, so readers get a miss
	// instead of an error; orphaned data and stray access records are
	// deleted; abandoned uploads are aborted.
	//
	// Leftovers younger than the grace are never reported: they may belong
	// to a write still running. A read-only store returns an error
	// wrapping tiercache.ErrReadOnly before any request when Repair is
	// set. Failing to examine the store (a listing that fails, say) is an
	// error; what is wrong with single entries goes into the report.
	Check(ctx context.Context, opts CheckOptions) (tiercache.CheckReport, error)
}

// CheckOptions configure Checker.Check. The zero value checks metadata
// only and changes nothing.
type CheckOptions struct {
	// Repair removes what the check reports.
	Repair bool
	// Deep downloads every archive and verifies its size and SHA-256
	// against the entry's metadata.
	Deep bool
	// Grace is how old orphaned data, stray access records and
	// abandoned uploads must be before they are reported (and, with
	// Repair, removed). Zero means the store's own grace (for S3,
	// Config.OrphanGrace); negative is an error. A tiny value such as
	// time.Nanosecond counts every leftover whatever its age: use it only
	// when no other process is writing to the store, or it will remove
	// the data of uploads still running.
	Grace time.Duration
	// Inspect, if set, is called by a deep check with each archive as it
	// is downloaded, and the entry's Meta; it need not read the archive
	// to its end. An error wrapping tiercache.ErrIntegrity reports the
	// entry as ProblemContentMismatch; another error fails the check.
	// The store only knows the archive as bytes: the tiered cache uses
	// this to read its members as a pull would (archive.Inspect), and
	// to verify the index Meta.Index records (archive.ReadIndex).
	Inspect func(ctx context.Context, m Meta, archive io.Reader) error
}

// Problem kinds a Checker reports (tiercache.Problem.Kind).
const (
	// ProblemCorruptManifest is an entry whose metadata does not parse.
	ProblemCorruptManifest = "corrupt-manifest"
	// ProblemNewerManifest is an entry whose metadata is of a format
	// version a newer tiercache sharing the store wrote. It is never
	// repaired: the entry and its objects are left to that version.
	ProblemNewerManifest = "newer-manifest"
	// ProblemMissingData is an entry whose archive does not exist.
	ProblemMissingData = "missing-data"
	// ProblemSizeMismatch is an entry whose archive's size differs from
	// the size its metadata records.
	ProblemSizeMismatch = "size-mismatch"
	// ProblemChecksumMismatch (Deep only) is an entry whose archive's
	// SHA-256 differs from the one its metadata records.
	ProblemChecksumMismatch = "checksum-mismatch"
	// ProblemContentMismatch (Deep with CheckOptions.Inspect) is an entry
	// whose archive is intact but does not hold what its metadata says
	// (the tree's size or file count, or the index Meta.Index locates),
	// or holds members extraction refuses, so every pull of it fails.
	ProblemContentMismatch = "content-mismatch"
	// ProblemOrphanData is an archive no entry names, older than the
	// grace: left by an interrupted or superseded write.
	ProblemOrphanData = "orphan-data"
	// ProblemStrayMarker is an access record of a key with no entry,
	// older than the grace.
	ProblemStrayMarker = "stray-marker"
	// ProblemStaleUpload is an unfinished multipart upload older than the
	// grace: its parts cost storage until it is aborted.
	ProblemStaleUpload = "stale-upload"
)
