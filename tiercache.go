// Package tiercache is the shared vocabulary of the tiercache cache: the
// Backend contract every tier implements, the Entry and Stats types, the key
// rules and the sentinel errors callers test with errors.Is.
//
// A cache entry is a directory tree stored under an opaque string key. The
// lifecycle a CI job follows is: Get; on a miss build the tree, then Put;
// Prune now and then to stay within limits.
package tiercache

import (
	"context"
	"fmt"
	"time"
)

// Backend is a cache of directory trees keyed by opaque strings.
//
// Every method takes a context first. Cancelling it makes the call return
// ctx.Err() (possibly wrapped) as soon as the running step allows; a
// cancelled call never leaves a partial entry behind: the cache holds the
// old entry, the new entry, or none, exactly as if the call had not started
// or had finished.
//
// Implementations are safe for concurrent use by multiple goroutines, and
// the ones that share state on disk (local, tiered) are safe across
// processes too. For one key, concurrent writers leave exactly one complete
// version, and a reader sees a complete old version, a complete new
// version, or a miss; never a torn tree.
type Backend interface {
	// Get returns the path of a directory holding the tree stored under
	// key. A miss is not an error: it returns ("", false, nil). A hit
	// records the entry's last access for LRU pruning.
	//
	// The returned directory must be treated as read-only by the caller.
	// It stays readable for at least a grace period after the entry is
	// replaced or invalidated (the implementation's documentation says how
	// long), so a caller copying it out does not race a concurrent writer.
	//
	// An invalid key returns an error wrapping ErrInvalidKey. A stored
	// entry that fails verification returns an error wrapping ErrIntegrity
	// and is never presented as a hit.
	Get(ctx context.Context, key string) (path string, ok bool, err error)

	// Put stores a copy of the tree at sourceDir under key, replacing any
	// entry already stored there, and returns the path of the cached copy,
	// which differs from sourceDir. sourceDir is not modified. The
	// description is free text kept with the entry.
	//
	// The replacement is atomic: until Put returns successfully, readers
	// see the previous entry (or a miss); afterwards, the new one. On
	// error or cancellation nothing of the new tree remains visible.
	Put(ctx context.Context, key, sourceDir, description string) (path string, err error)

	// Invalidate removes the entry stored under key. Removing a key that
	// is not stored is a no-op and returns nil.
	Invalidate(ctx context.Context, key string) error

	// Prune evicts entries, least recently accessed first, until the cache
	// holds at most maxEntries entries and at most maxBytes bytes: the
	// entries' Stored where the backend reports it (what they take on
	// its disk), else their Size. A zero limit means unlimited; a negative one is an error
	// wrapping ErrInvalidArgument. It returns how many entries it evicted.
	// If ctx is cancelled midway, the entries already evicted stay
	// evicted and the count so far is returned with the error.
	Prune(ctx context.Context, maxEntries int, maxBytes int64) (evicted int, err error)

	// List returns the stored entries with their metadata, in no
	// particular order.
	List(ctx context.Context) ([]Entry, error)

	// Stats returns aggregates over the stored entries. Implementations
	// without a cheaper way may return StatsOf(b.List(ctx)).
	Stats(ctx context.Context) (Stats, error)
}

// Entry describes one stored tree.
type Entry struct {
	// Key is the key the entry is stored under.
	Key string `json:"key"`
	// Scope is the scope the entry belongs to (see ValidateScope); ""
	// for the default scope, and then absent from the JSON form.
	Scope string `json:"scope,omitempty"`
	// Description is the free text given at Put. It is always in the
	// JSON form, empty or not, so scripts can rely on the field.
	Description string `json:"description"`
	// Size is the total size in bytes of the regular files in the tree.
	Size int64 `json:"size"`
	// Files is the number of regular files, directories, symlinks and
	// hardlinks in the tree (every archive member).
	Files int64 `json:"files"`
	// Paths, when set, are the paths the entry was pushed from, as they
	// were given: a push of several paths, or of a single file, stores
	// path i as the archive member named i (see archive.Source), and a
	// pull restores them by position, its i-th path getting path i. Empty
	// for a tree pushed from one directory, whose archive root is that
	// directory.
	Paths []string `json:"paths,omitempty"`
	// Stored is how many bytes the entry takes in its tier, when the
	// tier knows: the archive, plus the expanded tree where the tier
	// keeps one. Zero when unknown.
	Stored int64 `json:"stored,omitempty"`
	// Created is when the entry was stored.
	Created time.Time `json:"created"`
	// LastAccess is when the entry was last returned by Get (or Created,
	// if never). It may be recorded with a coarse resolution.
	LastAccess time.Time `json:"last_access"`
	// Tier names the tier holding the entry, when the Backend reports
	// several tiers; empty otherwise.
	Tier Tier `json:"tier,omitempty"`
	// Signature is the entry's signature, nil if it was stored unsigned
	// (or by a tier that does not keep one). It is as recorded, not
	// verified: see package sign.
	Signature *Signature `json:"signature,omitempty"`
}

// Tier names a tier of a cache that has several.
type Tier string

// The tiers of a tiered cache.
const (
	TierLocal  Tier = "local"
	TierRemote Tier = "remote"
)

// Shape is what an entry records about its tree, and what every writer
// or reader of a tree measures: a tree that changed while it was read
// shows as a different Shape.
type Shape struct {
	// Size is the total size in bytes of the regular files, each inode
	// counted once (a hardlink adds no bytes).
	Size int64 `json:"size"`
	// Files counts every member below the root: regular files,
	// directories, symlinks and hardlinks.
	Files int64 `json:"files"`
}

// String renders s as "N files of M bytes", as messages say it.
func (s Shape) String() string { return fmt.Sprintf("%d files of %d bytes", s.Files, s.Size) }

// Stats aggregates the entries of one tier.
type Stats struct {
	// Entries is the number of stored entries.
	Entries int `json:"entries"`
	// Bytes is the sum of the entries' Size.
	Bytes int64 `json:"bytes"`
	// Files is the sum of the entries' Files.
	Files int64 `json:"files"`
	// Stored is the sum of the entries' Stored.
	Stored int64 `json:"stored,omitempty"`
	// Oldest and Newest are the earliest and latest Created times; zero
	// when there are no entries.
	Oldest time.Time `json:"oldest,omitzero"`
	Newest time.Time `json:"newest,omitzero"`
	// OldestAccess is the earliest LastAccess: when the least recently
	// used entry was last used, which an age limit on pruning goes by.
	// Zero when there are no entries.
	OldestAccess time.Time `json:"oldest_access,omitzero"`
}

// StatsOf derives Stats from a List result, the way the seed interface's
// provided stats() does. It passes err through, so a Backend can implement
// Stats as `return tiercache.StatsOf(b.List(ctx))`.
func StatsOf(entries []Entry, err error) (Stats, error) {
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	for _, e := range entries {
		s.Entries++
		s.Bytes += e.Size
		s.Files += e.Files
		s.Stored += e.Stored
		if s.Oldest.IsZero() || e.Created.Before(s.Oldest) {
			s.Oldest = e.Created
		}
		if e.Created.After(s.Newest) {
			s.Newest = e.Created
		}
		if s.OldestAccess.IsZero() || e.LastAccess.Before(s.OldestAccess) {
			s.OldestAccess = e.LastAccess
		}
	}
	return s, nil
}
