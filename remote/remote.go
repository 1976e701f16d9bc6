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
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
)

// Meta is the metadata kept with a remote entry.
type Meta struct {
	// Key is the entry's key: its stored key (see tiercache.ScopedKey),
	// except in the Metas of a scope's view (InScope), where it is the
	// plain key and Scope the view's scope.
	Key string `json:"key"`
	// Scope is set by InScope's views only; a store keeps the scope in
	// Key.
	Scope string `json:"-"`
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
	// Index locates the archive's index frame, as the Indexer that
	// uploaded it claimed; zero when the archive has none (or was
	// stored before indexes were recorded).
	Index IndexInfo `json:"index,omitzero"`
	// Signature is the entry's signature, as the Signed reader that
	// uploaded it claimed; nil if none (see package sign).
	Signature *tiercache.Signature `json:"signature,omitempty"`
	// Created is when the entry was committed.
	Created time.Time `json:"created"`
	// LastAccess is the last recorded access (Created if none), as coarse
	// as its callers' Touch calls (the tiered cache sends at most one per
	// key and interval).
	LastAccess time.Time `json:"last_access"`
}

// SameVersion reports whether m and o describe the same committed
// version of an entry: the same archive (SHA256, ArchiveSize) committed
// at the same time (Created). Keys, access times and the rest are not
// compared.
func (m Meta) SameVersion(o Meta) bool {
	return m.SHA256 == o.SHA256 && m.ArchiveSize == o.ArchiveSize && m.Created.Equal(o.Created)
}

// KeyTime is an entry's key and the commit time of its current version,
// as Store.Keys lists them.
type KeyTime struct {
	// Key is the entry's key, as in Meta.Key: its stored key, or the
	// plain key in a scope's view (InScope).
	Key string
	// Committed is when the version was committed, by the store's clock
	// (on S3, the server's: its manifest's LastModified, to the second
	// on some servers), not the writer's, which Meta.Created records
	// (the S3 store replaces it by the server's beyond a skew of two
	// minutes): the two may differ by the clocks' skew. Every machine reads the
	// same Committed, so ranking by it picks the same entry everywhere.
	Committed time.Time
}

// Store is a remote tier. Its keys are stored keys (see
// tiercache.ScopedKey and ValidateStoredKey): a key of the default scope,
// or a scope, a NUL byte and a key; InScope gives a view of one scope in
// plain keys. Implementations are safe for concurrent use, and
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
	// stream's resources and must always be called. An entry found
	// damaged before any data is read (its data missing, or of another
	// size than its Meta records) returns an error wrapping
	// tiercache.ErrIntegrity with its Meta, so that the caller may remove
	// that version (DeleteVersion), and a nil stream.
	Open(ctx context.Context, key string) (io.ReadCloser, Meta, error)

	// Stat returns the Meta of the entry under key, or an error wrapping
	// tiercache.ErrNotFound.
	Stat(ctx context.Context, key string) (Meta, error)

	// Put uploads the archive read from r until EOF and commits it under
	// key with meta's Key, Description, Paths, Size and Files, replacing any
	// previous version atomically. The store computes ArchiveSize and
	// SHA256 itself from the bytes it uploads (SHA256 comes from r
	// instead when r is a Digester), records Index when r is an Indexer
	// (meta.Index is ignored), and returns the committed Meta. If r
	// returns an error, or claims a bad digest or index, the upload is
	// aborted and nothing is committed.
	Put(ctx context.Context, meta Meta, r io.Reader) (Meta, error)

	// Delete removes the entry under key. Deleting a missing key is a
	// no-op.
	Delete(ctx context.Context, key string) error

	// DeleteVersion removes the entry under key if it still holds the
	// version v describes (see Meta.SameVersion; v.Key is ignored), as
	// one step: a Put committing another version meanwhile keeps it.
	// gone reports whether key no longer holds v: true once deleted or
	// if key holds nothing, false (with a nil error) if it holds
	// another version, which stays. It may be true with an error: v is
	// gone, but not all of its storage was released. (On S3 the one
	// step takes a server that honours If-Match on DeleteObject; see
	// package remote/s3.)
	DeleteVersion(ctx context.Context, key string, v Meta) (gone bool, err error)

	// List returns the Meta of every entry whose key starts with prefix
	// ("" lists all), in no particular order.
	List(ctx context.Context, prefix string) ([]Meta, error)

	// Keys returns the key of every entry whose key starts with prefix
	// ("" lists all), in no particular order, each with when its current
	// version was committed by the store's own clock (see KeyTime): what
	// ranking entries by age takes, without reading their Metas, so it
	// costs a fraction of List (on S3, one listing instead of a GET per
	// entry). An entry it lists may still fail to Open: deleted since,
	// or damaged, which only reading it tells.
	Keys(ctx context.Context, prefix string) ([]KeyTime, error)

	// Touch records an access to key for LRU pruning, without rewriting
	// the archive. Every call writes: how often to record is the
	// caller's choice.
	Touch(ctx context.Context, key string) error

	// Prune evicts entries, least recently accessed first, until the
	// store satisfies l, and collects orphaned data left by interrupted
	// puts. It returns how many entries it evicted. Sizes count tree
	// bytes (Meta.Size), as List and Stats report them (the local tier
	// counts its bytes on disk instead: its budget is its disk). With
	// l.MaxAge, the entries whose LastAccess is more than MaxAge ago go
	// too, by the clock that recorded LastAccess. Each evicted entry is
	// reported to l.OnEvict (see policy.Limits) with its stored key and
	// tree bytes, once it is gone (once readers see a miss); the
	// orphaned data it collects is not.
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

// IndexInfo locates the index frame that ends an archive: it mirrors
// archive.IndexInfo field for field, so that the two convert into each
// other (archive.IndexInfo(m.Index)). A store only checks where the
// frame lies and stores the record; it never reads the frame, so this
// package does not import archive, and stores stay free of the archive
// format and its decoder. (The root package keeps to the contract of
// every tier, which an archive's layout is not part of.)
type IndexInfo struct {
	// Offset and Length locate the frame in the archive; Length 0
	// means no index.
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	// SHA256 is the lowercase hex SHA-256 of the frame's bytes.
	SHA256 string `json:"sha256"`
}

// Check returns an error wrapping tiercache.ErrInvalidArgument unless i
// is no index (the zero value) or one that could end an archive of
// archiveSize bytes: Length > 0, inside the archive and ending exactly at
// its end, with a well-formed digest. It does not read the frame.
func (i IndexInfo) Check(archiveSize int64) error {
	switch {
	case i == IndexInfo{}:
		return nil
	case i.Length <= 0 || i.Offset < 0 || i.Offset > archiveSize || archiveSize-i.Offset != i.Length:
		return fmt.Errorf("%w: index at %d+%d does not end an archive of %d bytes", tiercache.ErrInvalidArgument, i.Offset, i.Length, archiveSize)
	case !isLowerHex64(i.SHA256):
		return fmt.Errorf("%w: index SHA-256 %q is not 64 lowercase hex digits", tiercache.ErrInvalidArgument, i.SHA256)
	}
	return nil
}

// Indexer is a reader for Store.Put that knows, once it has returned
// io.EOF, where the index of the archive it yielded lies: what the
// archive's writer reported (archive.Result.Index), known only when the
// stream ends. The store checks it against the archive's size (see
// IndexInfo.Check) and records it in Meta.Index; a bad one fails the Put
// with nothing committed. Like a Digester's digest it is trusted
// otherwise: a reader of the entry verifies the frame with
// archive.ReadIndex before using it.
type Indexer interface {
	io.Reader
	Index() IndexInfo
}

// ReaderIndex returns the index r claims at its end, if r is an
// Indexer, checked against the size of the archive r yielded: zero if r
// is not an Indexer or claims none, and an error wrapping
// tiercache.ErrInvalidArgument if the claim fails IndexInfo.Check.
func ReaderIndex(r io.Reader, archiveSize int64) (IndexInfo, error) {
	x, ok := r.(Indexer)
	if !ok {
		return IndexInfo{}, nil
	}
	i := x.Index()
	if err := i.Check(archiveSize); err != nil {
		return IndexInfo{}, fmt.Errorf("the reader's index: %w", err)
	}
	return i, nil
}

func isLowerHex64(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
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
	if !isLowerHex64(sum) {
		return "", true, fmt.Errorf("%w: the reader's SHA-256 %q is not 64 lowercase hex digits", tiercache.ErrInvalidArgument, sum)
	}
	return sum, true, nil
}

// Signed is a reader for Store.Put that signs the entry it uploads: once
// it has returned io.EOF, Signature returns the signature the store
// records in Meta.Signature as is. Like a Digester's digest it is
// trusted: a wrong one makes every reader that checks signatures refuse
// the entry, never accept a wrong one.
type Signed interface {
	io.Reader
	Signature() *tiercache.Signature
}

// ReaderSignature returns the signature r claims at its end if r is
// Signed, else nil.
func ReaderSignature(r io.Reader) *tiercache.Signature {
	if s, ok := r.(Signed); ok {
		return s.Signature()
	}
	return nil
}

// Base is a stored version of an entry whose archive a Put may repeat
// byte ranges of: a BaseStore copies them server-side instead of
// uploading them again (see Reuser). The version's archive never changes
// under Ref, whatever later puts of its key do; it may disappear (the key
// deleted or pruned, or the replaced version collected), and then a copy
// from it fails and the bytes are uploaded instead.
type Base struct {
	// Meta is the version's metadata, its Index included.
	Meta Meta
	// Ref names the version's archive in the store that returned it
	// (the data object, for S3); opaque to callers.
	Ref string
}

// ErrNoCopy reports a BaseStore that cannot copy ranges server-side.
var ErrNoCopy = errors.New("the store copies no ranges server-side")

// RangeReader is a Store that reads byte ranges of one version of an
// entry, pinned however the key changes meanwhile: a base's index, or
// the frames of an archive that a pull does not find in an earlier
// version kept locally.
type RangeReader interface {
	Store
	// OpenVersion returns the current version of key, or an error
	// wrapping tiercache.ErrNotFound.
	OpenVersion(ctx context.Context, key string) (Base, error)
	// ReadBase returns the n bytes of b's archive starting at off (one
	// ranged read). A version no longer stored fails with an error
	// wrapping tiercache.ErrNotFound; a range outside the archive with
	// one wrapping tiercache.ErrInvalidArgument.
	ReadBase(ctx context.Context, b Base, off, n int64) ([]byte, error)
}

// BaseStore is a Store that can serve as a base for puts that repeat
// parts of an older archive: it reads a version's byte ranges, and its
// Put copies the ranges a Reuser reports server-side (S3's
// UploadPartCopy), falling back to uploading them where the server
// cannot.
type BaseStore interface {
	RangeReader
	// OpenBase is OpenVersion for a base. A store that knows it cannot
	// copy (so configured, or told so by its server) returns an error
	// wrapping ErrNoCopy instead, before any request: a base would only
	// cost reads.
	OpenBase(ctx context.Context, key string) (Base, error)
}

// Reuser is a reader for Store.Put whose stream repeats byte ranges of
// one Base's archive. A BaseStore copies those ranges server-side where
// the runs are long enough to be parts of their own, and uploads the
// rest; it still reads every byte from the Reuser (and hashes it, unless
// the reader is a Digester), so the committed Meta describes exactly the
// bytes read, copied or not. Any other store reads and uploads it as any
// reader.
type Reuser interface {
	io.Reader
	// Base is the version whose ranges the stream repeats.
	Base() Base
	// Reused reports whether the stream's byte at off starts or lies in
	// a run repeating Base's archive: the stream's [off, off+n) equals
	// the archive's [baseOff, baseOff+n). n is 0 when it does not. A
	// reader knows a run before it yields the run's first byte, so the
	// answer is final for every byte it has yielded; a run may grow
	// (n increase) as the reader yields more.
	Reused(off int64) (baseOff, n int64)
	// Copied is called by the store after each range it copied
	// server-side: the stream's [off, off+n), none of whose bytes were
	// sent.
	Copied(off, n int64)
	// CopyFailed is called by the store, at most once per Put, when it
	// stops copying and uploads the remaining bytes instead: the server
	// does not implement copies, refused one or answered one badly, or
	// the base is gone. err says which.
	CopyFailed(err error)
}
