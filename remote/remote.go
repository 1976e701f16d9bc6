// Package remote defines what the tiered cache needs from a shared remote
// store: streaming an entry's archive in and out, its metadata, deletion,
// prefix listing for restore keys, access recording and LRU pruning.
//
// An entry in a remote store is one archive (a zstd-compressed tar stream,
// as written by package archive) plus its Meta. Implementations live in
// subpackages (remote/s3, remote/memstore); ReadOnly wraps any of them
// for untrusted jobs.
package remote

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
)

// Meta is the metadata kept with a remote entry.
type Meta struct {
	// Key is the entry's key.
	Key string `json:"key"`
	// Description is the free text given at put.
	Description string `json:"description,omitempty"`
	// Paths are the paths the entry was pushed from (see
	// tiercache.Entry.Paths); empty for one directory's tree.
	Paths []string `json:"paths,omitempty"`
	// Size is the total size of the regular files in the tree, in bytes.
	Size int64 `json:"size"`
	// Files is the number of archive members.
	Files int64 `json:"files"`
	// ArchiveSize is the size in bytes of the stored archive.
	ArchiveSize int64 `json:"archive_size"`
	// SHA256 is the lowercase hex SHA-256 of the stored archive.
	SHA256 string `json:"sha256"`
	// Created is when the entry was committed.
	Created time.Time `json:"created"`
	// LastAccess is the last recorded access (Created if none), as coarse
	// as its callers' Touch calls (the tiered cache sends at most one per
	// key and interval).
	LastAccess time.Time `json:"last_access"`
}

// Store is a remote tier. Implementations are safe for concurrent use, and
// entries are atomic: a reader sees a complete old version, a complete new
// version or nothing, whatever concurrent writers do or however they die.
//
// Every method honours ctx; a cancelled Put leaves no entry and no
// uploaded parts behind (best effort for the abort itself, which runs on a
// context detached from the cancelled one but bounded in time).
type Store interface {
	// Open returns a stream of the archive stored under key and its Meta.
	// A missing key returns an error wrapping tiercache.ErrNotFound,
	// before any data is read. The stream yields exactly the archive's
	// bytes; the caller verifies Meta.ArchiveSize and Meta.SHA256 against
	// what it reads before trusting the result. Close releases the
	// stream's resources and must always be called.
	Open(ctx context.Context, key string) (io.ReadCloser, Meta, error)

	// Stat returns the Meta of the entry under key, or an error wrapping
	// tiercache.ErrNotFound.
	Stat(ctx context.Context, key string) (Meta, error)

	// Put uploads the archive read from r until EOF and commits it under
	// key with meta's Key, Description, Paths, Size and Files, replacing any
	// previous version atomically. The store computes ArchiveSize and
	// SHA256 itself from the bytes it uploads (SHA256 comes from r
	// instead when r is a Digester) and returns the committed Meta. If r
	// returns an error, the upload is aborted and nothing is committed.
	Put(ctx context.Context, meta Meta, r io.Reader) (Meta, error)

	// Delete removes the entry under key. Deleting a missing key is a
	// no-op.
	Delete(ctx context.Context, key string) error

	// List returns the Meta of every entry whose key starts with prefix
	// ("" lists all), in no particular order.
	List(ctx context.Context, prefix string) ([]Meta, error)

	// Touch records an access to key for LRU pruning, without rewriting
	// the archive. Every call writes: how often to record is the
	// caller's choice.
	Touch(ctx context.Context, key string) error

	// Prune evicts entries, least recently accessed first, until the
	// store satisfies l, and collects orphaned data left by interrupted
	// puts. It returns how many entries it evicted. Sizes count tree
	// bytes (Meta.Size), as every tier does, so one limit means the same
	// in both tiers and matches what List and Stats report. With
	// l.MaxAge, the entries whose LastAccess is more than MaxAge ago go
	// too, by the clock that recorded LastAccess.
	Prune(ctx context.Context, l policy.Limits) (int, error)
}

// Digester is a reader for Store.Put that hashes what it yields itself:
// once it has returned io.EOF, SHA256 returns the lowercase hex SHA-256
// of every byte it yielded, which the store records instead of hashing
// the bytes a second time (a push that keeps a local copy hashes them
// for it anyway). A store refuses an empty or malformed digest, failing
// the Put with nothing committed. The digest is trusted: a wrong one
// makes every read of the entry fail its verification, never pass a
// wrong archive.
type Digester interface {
	io.Reader
	SHA256() string
}

// ReaderDigest returns the digest r claims at its end, if r is a
// Digester: ok is false if it is not, and err is set if it claims no
// well-formed digest.
func ReaderDigest(r io.Reader) (sum string, ok bool, err error) {
	d, ok := r.(Digester)
	if !ok {
		return "", false, nil
	}
	sum = d.SHA256()
	if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return "", true, fmt.Errorf("%w: the reader's SHA-256 %q is not 64 lowercase hex digits", tiercache.ErrInvalidArgument, sum)
	}
	return sum, true, nil
}
