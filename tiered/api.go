package tiered

import (
	"time"

	"github.com/tiercache/tiercache"
)

// Tier names used in Entry.Tier, Hit.Tier and TierStats.
const (
	TierLocal  = "local"
	TierRemote = "remote"
)

// Progress reports the advance of one transfer. Total is -1 when unknown
// (an upload's compressed size is known only at its end).
type Progress struct {
	// Op is "upload" or "download".
	Op string
	// Key is the key being transferred.
	Key string
	// Done is the number of archive bytes transferred so far.
	Done int64
	// Total is the archive size, or -1 if not known yet.
	Total int64
}

// Hit describes where a Restore found its tree.
type Hit struct {
	// Path is the cached tree's directory (read-only for the caller).
	Path string
	// Key is the key that matched: the exact key or a restore-prefix match.
	Key string
	// Tier is TierLocal when the tree was already local, TierRemote when
	// it was hydrated from the remote by this call.
	Tier string
	// Entry is the local entry's metadata after the hit.
	Entry tiercache.Entry
	// Downloaded is the number of archive bytes downloaded (0 on a local hit).
	Downloaded int64
}

// PutResult describes what Put did in each tier.
type PutResult struct {
	// Path is the local cached copy.
	Path string
	// Entry is the local entry's metadata.
	Entry tiercache.Entry
	// Uploaded is true when the archive was uploaded to the remote.
	Uploaded bool
	// UploadSkipped is true when the remote already held an identical
	// tree under the key, so nothing was uploaded.
	UploadSkipped bool
	// ArchiveSize is the size of the archive uploaded (or found identical).
	ArchiveSize int64
	// Elapsed is the wall time of the whole put.
	Elapsed time.Duration
}

// TierStats holds per-tier aggregates; Remote is nil when no remote is
// configured.
type TierStats struct {
	Local  tiercache.Stats  `json:"local"`
	Remote *tiercache.Stats `json:"remote,omitempty"`
}

// PruneResult counts the entries Prune evicted from each tier.
type PruneResult struct {
	Local  int `json:"local"`
	Remote int `json:"remote"`
}
