package tiered

import (
	"errors"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treecopy"
)

// Progress reports the advance of one transfer. Total is -1 when unknown
// (an upload's compressed size is known only at its end).
type Progress struct {
	// Op is "upload", "download", "extract" (Pull's extraction of a
	// local archive into its dir), "copy" (Pull's copy from a local
	// tree into its dir), "wait": another process on the machine is
	// downloading Key, and this one waits for it (reported once, before
	// the wait), or "wait-push": another push of Key on the machine is
	// finishing its upload, and this push waits for it before it
	// commits (reported likewise).
	Op string
	// Key is the key being transferred.
	Key string
	// Done is the number of archive bytes transferred so far (of tree
	// bytes, for a copy).
	Done int64
	// Total is the archive size (the tree's, for a copy), or -1 if not
	// known yet.
	Total int64
}

// Hit describes where a Restore or a Pull found its tree.
type Hit struct {
	// Path is the cached tree's directory (read-only for the caller);
	// for a Pull, the directory pulled into.
	Path string
	// Paths, for a Pull with PullOptions.Resolve, are the paths the
	// entry found was restored into (or, with LookupOnly, would be).
	Paths []string
	// Key is the key that matched: the exact key or a restore-prefix match.
	Key string
	// Scope is the scope Key matched in: the Cache's own or one of its
	// read scopes (see Options.ReadScopes).
	Scope string
	// Untrusted lists the entries a Cache with Options.Trust refused on
	// the way (each an *UntrustedError): on a miss too.
	Untrusted []error
	// Refused lists the remote entries that failed their checks on the
	// way (corrupt, hostile, beyond the limits, or too large for the
	// room left; each a *RemoteError), each skipped as a miss while the
	// remote was still asked for the next candidate: on a miss too. A
	// Pull lists there a local entry too large for the room beside the
	// path it restores into, as it would the download.
	Refused []error
	// Tier is TierLocal when the tree was already local, TierRemote when
	// it was downloaded by this call.
	Tier tiercache.Tier
	// Entry is the local entry's metadata after the hit.
	Entry tiercache.Entry
	// Downloaded is the number of archive bytes downloaded (0 on a local hit).
	Downloaded int64
	// Base, when set, is the local entry whose archive supplied FromBase
	// bytes of the archive downloaded: the frames it shares with the
	// entry, each checked against the entry's verified index, were read
	// from it instead of downloaded (see PullOptions.NoBase).
	Base     string
	FromBase int64
	// BaseNote, when set, says why a download read nothing from the
	// earlier versions the local tier holds: for verbose output.
	BaseNote string
	// RemoteErr, when set, is a remote failure (a *RemoteError) that
	// Restore survived by going on with the local tier alone, where it
	// then found this hit.
	RemoteErr error
	// SkippedSymlinks counts the symlinks left out of the paths pulled
	// into (PullOptions.SkipSymlinks); FirstSkipped names the first, as
	// a member of the archive.
	SkippedSymlinks int64
	FirstSkipped    string
	// Skipped lists the restore-key candidates a PullPaths left out
	// because they hold another number of paths than it names, with
	// why; on a miss too.
	Skipped []string
	// LeftOut lists the members of the entry a Pull left out of the
	// paths it restored into because the local tier's root is there (a
	// tiercache/ in a tree pulled into ~/.cache, say), or a parent of it
	// is there as something other than a directory; each as the path
	// it would have had.
	LeftOut []string
	// Dropped, when set, is why a local copy was found damaged (it
	// failed its recorded SHA-256 or shape): a copy of the key, which
	// Pull dropped before fetching the key again or going on to the next
	// candidate; or the Base, whose damaged frames were downloaded
	// instead, dropped once the download ended.
	Dropped error
	// Untouched lists the paths pulled into that the entry restored holds
	// nothing for, left as they were: they were missing when it was
	// pushed (see PullOptions.Names).
	Untouched []string
	// Copy describes Pull's copy from the local tier's tree into its
	// dir, and CopyTime how long restoring into dir took (the copy, or
	// the extraction from a local archive); zero when nothing was
	// copied.
	Copy     CopyResult
	CopyTime time.Duration
}

// CopyResult counts what a copy (or hardlinking) of a tree wrote: its
// directories, files and their bytes, symlinks, and extra hardlinks.
type CopyResult = treecopy.Result

// PutResult describes what a put did in each tier.
type PutResult struct {
	// Path is the local cached copy.
	Path string
	// Entry is the local entry's metadata.
	Entry tiercache.Entry
	// Uploaded is true when the archive was uploaded to the remote.
	Uploaded bool
	// Signed is true when the upload was signed (Options.Signer).
	Signed bool
	// UploadSkipped is true when the remote already held an identical
	// tree under the key, so nothing was uploaded.
	UploadSkipped bool
	// ArchiveSize is the size of the archive uploaded (or found identical).
	ArchiveSize int64
	// Elapsed is the wall time of the whole put.
	Elapsed time.Duration
	// RemoteErr, when set, is why nothing was saved remotely by a put
	// that still stored the tree locally (a *RemoteError): PutResult
	// then returns a nil error, since the cache holds the tree.
	RemoteErr error
	// AlreadyIn is set by a Push with PushOptions.IfAbsent that found
	// key stored: the tier it was found in. Nothing was stored then,
	// and Path and Entry are empty.
	AlreadyIn tiercache.Tier
	// Base is the key of the entry whose frames the upload repeated
	// (see PushOptions.Base), "" if none was used; Copied is how many
	// of the archive's bytes the remote copied from it server-side
	// instead of receiving them, and FramesReused how many of the
	// archive's frames it copied whole: frames none of whose bytes were
	// sent (0 when nothing was copied, though frames were found in the
	// base). ArchiveSize - Copied bytes were sent.
	Base         string
	Copied       int64
	FramesReused int
	// FramesKept counts the frames taken, already compressed, from the
	// local tier's copy of the base instead of being compressed again:
	// the CPU a push with a base saves (see archive.FrameSource).
	FramesKept int
	// BaseNote, when set, says why no base was used, or why copying
	// from it stopped (the rest was uploaded): for verbose output.
	BaseNote string
	// LeftOut lists what a Push left out of the paths it archived
	// because the local tier is there (see Push): each the tier's root,
	// as a path below the path pushed.
	LeftOut []string
	// Sockets counts the sockets a Push left out of the archive, as tar
	// leaves them out (a socket cannot be stored); FirstSocket names
	// the first, as a path below the path pushed.
	Sockets     int64
	FirstSocket string
}

// ErrNoRoom reports an entry larger than the local tier's free space, or
// a tree larger than the free space beside the directory a Pull restores
// into. It
// comes wrapped in a RemoteError, since nothing was written: the entry is
// skipped as one that fails its checks would be.
var ErrNoRoom = errors.New("no room on the disk")

// RemoteError reports a failure that lies with the remote tier or with the
// object it served: the store unreachable, refusing or misconfigured, a
// missing bucket, a download cut short, or an archive that fails
// verification or extraction's safety checks. Neither the local tier nor
// the caller's directory was changed by it, so a caller may carry on
// without the remote: a cache outage should make a slow build, not a
// failed one. Failures of the local tier or of the caller's directory are
// never RemoteErrors.
type RemoteError struct{ Err error }

// Error is the remote failure's own message.
func (e *RemoteError) Error() string { return e.Err.Error() }

// Unwrap returns the remote failure.
func (e *RemoteError) Unwrap() error { return e.Err }

// IsRemote reports whether err is, or wraps, a *RemoteError.
func IsRemote(err error) bool {
	var re *RemoteError
	return errors.As(err, &re)
}

// remoteErr wraps err, if not nil, as a *RemoteError.
func remoteErr(err error) error {
	if err == nil || IsRemote(err) {
		return err
	}
	return &RemoteError{Err: err}
}

// ignoreDropped is err, but nil for a local version found damaged,
// which the local tier dropped: a miss, for a caller that goes on to
// fetch the key or try the next candidate.
func ignoreDropped(err error) error {
	if errors.Is(err, tiercache.ErrIntegrity) {
		return nil
	}
	return err
}

// fillFirst returns fillErr, the failure of the fill a local put ran, in
// place of putErr, the put's report of it: a pull's error reads "extract
// KEY: ..." rather than "put KEY: extract KEY: ...", which suggests a push.
func fillFirst(putErr, fillErr error) error {
	if fillErr != nil && errors.Is(putErr, fillErr) {
		return fillErr
	}
	return putErr
}

// TierStats holds per-tier aggregates; Remote is nil when no remote is
// configured.
type TierStats struct {
	Local  tiercache.Stats  `json:"local"`
	Remote *tiercache.Stats `json:"remote,omitempty"`
}

// PruneResult counts the entries Prune evicted from each tier, and lists
// them.
type PruneResult struct {
	Local  int `json:"local"`
	Remote int `json:"remote"`
	// Evicted lists the entries evicted by the limits, the local tier's
	// first, each tier's in the order evicted (least recently used
	// first); not the leftovers a prune collects. A remote entry whose
	// key the store could not tell has Key "".
	Evicted []Evicted `json:"evicted"`
}

// Evicted is one entry a prune evicted.
type Evicted struct {
	Tier  tiercache.Tier `json:"tier"`
	Scope string         `json:"scope,omitempty"`
	Key   string         `json:"key"`
	// Bytes is what the entry counted against its tier's byte limit:
	// its bytes on disk locally (Entry.Stored), its tree bytes remotely
	// (Entry.Size).
	Bytes int64 `json:"bytes"`
}
