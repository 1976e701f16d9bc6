// Package local is the local directory tier of tiercache: entries stored
// under one root, shared safely by every goroutine and every process that
// opens the same root. An entry is kept as its archive (PutArchive: the
// .tar.zst the remote tier stores, written once as it streams), with its
// expanded tree made beside it only when a caller asks for a path (Get),
// or as a tree alone (Put, PutFunc, and every entry of a cache made before
// archives were kept).
//
// # On-disk layout
//
//	<root>/
//	  tiercache-local       marker: this directory is a cache, layout 2
//	  CACHEDIR.TAG          tells backup tools to skip the cache
//	  index/<name>          per-key pointer: a symlink to ../data/<version>
//	                        (on Windows a small file holding that path);
//	                        its mtime is when the remote tier was last told
//	                        of an access to the key (see RemoteAccess)
//	  data/<version>/       one immutable version of an entry, where
//	                        <version> is <name>-<16 hex digits>; its
//	                        mtime is the entry's last access
//	    archive.tar.zst     the entry's archive, the remote object's bytes
//	                        (absent in a version stored as a tree alone)
//	    tree/               the expanded tree (what Get and Put return);
//	                        beside an archive, only once Get asked for it
//	    meta.json           key, description, size, files, created, and
//	                        the archive's size and SHA-256
//	  retired/<version>     empty file: <version> stopped being current at
//	                        this file's mtime
//	  staging/<unique>.lock flock-held by a Put in progress for its whole
//	                        life; created before the directory beside it
//	                        and removed after it
//	  staging/<unique>/     that Put's private directory:
//	    ver/                the version being built (tree/, meta.json, ...)
//	  trash/<version>/      versions past their grace, being deleted
//	  locks/stripe-NN       internal locks; a key uses stripe hash(name)%64
//	  locks/keys/<name>.lock  the per-key lock handed out by Cache.Lock
//	  locks/sweep           held by whoever is sweeping
//	  locks/full-sweep      its mtime is the last full sweep
//	  pulls/<32 hex digits> the key last pulled into a set of paths (a
//	                        hint for the next push's base: see NotePull)
//
// <name> is the key mapped injectively onto a safe file name: a-z, 0-9 and
// '-' as themselves, '.' as itself except first, upper-case letters as '!'
// and the lower-case letter, any other byte as '_' and two hex digits; a
// name that would exceed 200 bytes is cut and followed by '~' and the
// SHA-256 of the key. The key itself is kept in meta.json and compared on
// every Get, so even a hash collision is a miss, never a wrong hit.
//
// # Writes
//
// Put and PutFunc build the new version in a staging directory inside the
// root (same file system, so publishing is a rename), write meta.json, set
// the version directory's mtime, and make it all durable (one syncfs on
// Linux, an fsync per file elsewhere), or on Linux by default record the
// boot ID instead of waiting for the flush (see Options.SyncData and
// NoSync). Then, holding
// the key's stripe lock, they rename the version into data/, fsync data/,
// record the version they replace in retired/, and swap the pointer by
// renaming a fresh pointer over index/<name>, then fsync index/. Concurrent
// Puts of one key serialise on the stripe lock only for that short swap;
// each knows exactly which version it replaced, and the last swap wins,
// except a write with Info.Replaces (a download), which yields to another
// version committed since it began: it is published as already replaced.
//
// Invalidate and Prune also only record the version in retired/ and remove
// the pointer: an eviction costs a few metadata operations, whatever the
// tree's size.
//
// # Crashes
//
// rename(2) is atomic and index/<name> only ever names a version that was
// complete and durable before the pointer moved, so at every instant the
// key has its old version, its new one or none, never a partial tree. What
// a crash (kill -9, power loss) can leave behind, and who removes it:
//
//   - during staging: a staging directory (or only its lock file) whose
//     lock died with its owner; the next sweep removes it;
//   - after publishing into data/, before the swap: an orphan version no
//     pointer names; the full sweep removes it once older than Grace;
//   - after recording the replaced version, before the swap: a retired
//     record naming the current version; the sweep sees it is current
//     and drops the record, not the version;
//   - a temporary pointer in index/ (names starting with '.' are never
//     entries); the full sweep removes it;
//   - while emptying trash/: a half-deleted tree in trash/, which the next
//     sweep finishes.
//
// # Reads
//
// Get and Lookup read the pointer (readlink, or on Windows the small
// file), read the version's small meta.json to check the stored key, and
// record the access by setting the mtime of the version directory
// (nothing writes into it once it is published but the tree Get makes, so
// that mtime is free to mean "last access"). They touch no other entry,
// so a hit costs the same with ten entries or a hundred thousand.
//
// Get on a version kept as an archive alone extracts the archive, with
// archive.Extract's checks and against the recorded SHA-256 and shape,
// into staging, then renames the tree into the version directory: under
// the key's lock (see Lock), so one process makes it however many ask,
// and atomically, so a reader sees the whole tree or none. An archive that
// fails its checks was damaged on disk: Get drops the entry and misses.
// Prune removes such trees first when over its byte limit, but only those
// not used within the grace period, under the key's stripe lock, which
// Lookup also takes to find the tree: a path Get returned stays readable
// for the grace period after the last Get.
//
// # Grace and sweeping
//
// A version stays in data/, at the path Get returned, for Options.Grace
// after it stops being current, so a caller still copying it out does not
// race a concurrent Put, Invalidate or Prune. A sweep then renames it into
// trash/ and deletes it. Sweeps run at Open, after Prune, after a Put (at
// most once a minute per Cache) and on Sweep; only one process sweeps at a
// time (locks/sweep), and the deletions happen there, never in Get. A
// sweep also removes:
//
//   - staging directories whose lock it can take: flock locks die with
//     their process, so those belong to dead processes; a live Put holds
//     its lock from before it writes anything until it is done. This step
//     runs even while another process holds locks/sweep, so the command
//     after a killed one always cleans up its staging;
//   - with the full sweep (Sweep, or at most once per Grace otherwise):
//     orphan versions, which no pointer names and no retired record
//     covers (a crash between publishing a version and swapping the
//     pointer), once older than Grace and rechecked under the key's
//     stripe lock; leftover temporary pointers; and per-key lock files of
//     keys with no entry that nobody holds.
//
// # Locks
//
// All locks are flock(2) locks (LockFileEx on Windows, see
// internal/flock), which the kernel drops when their holder dies, so no
// crash leaves a lock held. They belong to an open file, not a process,
// so they exclude goroutines of one process as well as processes.
//
// # Windows
//
// Creating symlinks needs a privilege there that ordinary processes lack,
// so a pointer is a small file holding the path a Unix pointer's symlink
// names, written whole and renamed over the old one (MoveFileEx replaces
// it in one step). Windows refuses to replace or delete a file another
// process holds open, so pointer operations retry briefly when a reader
// is in the way. Directories are not fsynced (Windows documents no way
// to), files are, one by one, since there is no boot ID. Key names also
// escape what Windows cannot hold in a file name (see nameOf).
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/flock"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/policy"
)

// DefaultGrace is the default Options.Grace. Ten minutes covers copying
// out a tree of several gigabytes on a slow runner disk, while keeping the
// disk held by replaced versions short-lived.
const DefaultGrace = 10 * time.Minute

// MaxDescriptionLen bounds a Put's description, in bytes, so the metadata
// Get reads stays small.
const MaxDescriptionLen = 64 << 10

// Options configures a Cache. The zero value is valid and means defaults.
type Options struct {
	// Grace is how long a version's directory stays readable at the path
	// Get or Put returned after it stops being current (replaced,
	// invalidated or evicted), and how old an orphan version must be
	// before a sweep deletes it. Zero means DefaultGrace; negative is an
	// error. A sweep applies the grace of the Cache running it, so every
	// process sharing a root should use the same value.
	Grace time.Duration

	// NoSync skips every fsync and syncfs. Puts get much faster, but a
	// power loss or kernel crash (not a mere process crash) may then leave
	// a published entry with missing data. For tests, benchmarks and
	// caches on throwaway machines.
	NoSync bool

	// SyncData makes every Put flush its tree to disk (syncfs) before
	// publishing it. By default, where the system has a boot ID (Linux),
	// a Put publishes without waiting for its data and records the boot
	// it was written in; only an OS crash or power loss can lose data
	// the kernel accepted, and either means a new boot, after which such
	// an entry counts as missing (Prune removes it) instead of being
	// trusted. Waiting for the flush costs seconds per large tree, more
	// than the copy itself on some disks. Ignored with NoSync.
	SyncData bool

	// KeepTrash makes sweeps stop short of deleting: what they remove
	// (expired versions, dead staging) is moved into trash/ as usual, a
	// rename, but trash/ is emptied only by EmptyTrash or by a Cache
	// without KeepTrash. Deleting a large tree takes seconds, and on
	// some file systems slows file creation for minutes after; a caller
	// on a job's critical path (the CLI's push and pull) leaves it to a
	// detached process instead.
	KeepTrash bool
}

// Cache is the local tier: a Backend over a directory. It is safe for
// concurrent use by multiple goroutines, and by multiple processes opening
// the same root. Make one with Open; the zero Cache is not usable.
type Cache struct {
	root       string
	indexDir   string
	dataDir    string
	retiredDir string
	stagingDir string
	trashDir   string
	locksDir   string
	keyLocks   string
	grace      time.Duration
	noSync     bool
	// boot is this boot's ID when puts defer their data flush to the
	// kernel (see Options.SyncData), else "".
	boot      string
	keepTrash bool

	// lastSweep is when this Cache last swept after a Put (UnixNano),
	// shared with its views of other scopes (InScope).
	lastSweep *atomic.Int64
	// scope is the scope whose entries this Cache's methods that take a
	// key work on (see InScope).
	scope string
	// owner, when set, is the user and group everything this process
	// creates in the tier is given to (see tierOwner).
	owner *fileOwner
}

// fileOwner is a user and group ID.
type fileOwner struct{ uid, gid int }

// own gives path (a link itself, not its target), below the tier's root,
// to the tier's owner when c.owner is set; see tierOwner. It goes
// through an os.Root on the tier: the owner may rename what root gives
// them and leave a symlink in its place, which must not lead a chown
// out of the tier. Best effort: what stays root's is what stayed
// before, never a reason to fail the operation.
func (c *Cache) own(path string) { c.give(path, false) }

// ownTree is own for path and everything under it.
func (c *Cache) ownTree(path string) { c.give(path, true) }

func (c *Cache) give(path string, tree bool) {
	if c.owner == nil {
		return
	}
	rel, err := filepath.Rel(c.root, path)
	if err != nil || !filepath.IsLocal(rel) {
		return
	}
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return
	}
	defer root.Close()
	if !tree {
		_ = root.Lchown(rel, c.owner.uid, c.owner.gid)
		return
	}
	_ = fs.WalkDir(root.FS(), filepath.ToSlash(rel), func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			_ = root.Lchown(filepath.FromSlash(p), c.owner.uid, c.owner.gid)
		}
		return nil
	})
}

// lock is flock.Lock of a lock file in the tier, given to the tier's
// owner (see own): one of root's, private, the owner cannot open.
func (c *Cache) lock(ctx context.Context, path string) (*flock.Handle, error) {
	h, err := flock.Lock(ctx, path)
	if err == nil {
		c.own(path)
	}
	return h, err
}

// tryLock is flock.TryLock of a lock file in the tier, given to the
// tier's owner.
func (c *Cache) tryLock(path string) (*flock.Handle, bool, error) {
	h, ok, err := flock.TryLock(path)
	if err == nil && ok {
		c.own(path)
	}
	return h, ok, err
}

var _ tiercache.Backend = (*Cache)(nil)

const (
	markerName    = "tiercache-local"
	markerContent = "tiercache local cache, layout 2\n"
	// markerLayout1 marks a cache whose versions all hold trees. Layout 2
	// adds versions kept as archives, which a tiercache that knows only
	// layout 1 would take for broken; so the marker changes on the first
	// Open by this one, and older ones refuse the cache from then on
	// instead of misreading it.
	markerLayout1 = "tiercache local cache, layout 1\n"
	markerTmp     = ".tiercache-local.tmp-"
	cacheDirTag   = "CACHEDIR.TAG"
	tagContent    = "Signature: 8a477f597d28d172789f06886806bc55\n" +
		"# This file is a cache directory tag created by tiercache.\n" +
		"# For information about cache directory tags see https://bford.info/cachedir/\n"

	stripes        = 64
	treeDir        = "tree"
	metaFile       = "meta.json"
	stagingLockExt = ".lock" // a staging directory's lock file is <dir>.lock
	stagingVer     = "ver"
	tmpPrefix      = ".tmp-"
	uniqueLen      = 16
	maxMetaBytes   = 1 << 20
	metaRoom       = 64 << 10
	metaFormat     = 1
)

// layoutDirs are the subdirectories of the root, in creation order.
var layoutDirs = []string{"index", "data", "retired", "staging", "trash", "locks", filepath.Join("locks", "keys"), pullsDir}

// Open opens the cache at root, creating it if needed. root must be
// missing, empty, or a cache created by Open; anything else is refused with
// ErrInvalidArgument, so a mistyped path never turns a directory of
// precious files into a cache. Open sweeps (see the package doc); it
// deletes only the staging of dead processes, never that of a live one.
func Open(root string, opts Options) (*Cache, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: empty cache root", tiercache.ErrInvalidArgument)
	}
	if opts.Grace < 0 {
		return nil, fmt.Errorf("%w: negative grace %v", tiercache.ErrInvalidArgument, opts.Grace)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cache root %s: %w", root, err)
	}
	c := &Cache{
		root:       abs,
		indexDir:   filepath.Join(abs, "index"),
		dataDir:    filepath.Join(abs, "data"),
		retiredDir: filepath.Join(abs, "retired"),
		stagingDir: filepath.Join(abs, "staging"),
		trashDir:   filepath.Join(abs, "trash"),
		locksDir:   filepath.Join(abs, "locks"),
		keyLocks:   filepath.Join(abs, "locks", "keys"),
		grace:      opts.Grace,
		noSync:     opts.NoSync,
		lastSweep:  new(atomic.Int64),
	}
	if !opts.NoSync && !opts.SyncData {
		c.boot = bootID()
	}
	c.keepTrash = opts.KeepTrash
	if c.grace == 0 {
		c.grace = DefaultGrace
	}
	if err := c.initRoot(); err != nil {
		return nil, err
	}
	// A failed sweep must not make the cache unusable; Sweep reports it.
	_ = c.sweep(func() error { return nil }, false)
	return c, nil
}

// initRoot checks that root is ours (or empty) and creates the layout.
func (c *Cache) initRoot() error {
	// Private when new: cached trees hold build outputs, secrets among
	// them. A directory the user made keeps the mode they gave it.
	if err := os.MkdirAll(c.root, 0o700); err != nil {
		if target, lerr := os.Readlink(c.root); lerr == nil {
			// "file exists" alone hides why.
			return fmt.Errorf("create cache root: %s is a symlink to %s, which does not exist or is not a directory: %w", c.root, target, err)
		}
		if fi, serr := os.Stat(c.root); serr == nil && !fi.IsDir() {
			return fmt.Errorf("%w: cache root %s is a file, not a directory", tiercache.ErrInvalidArgument, c.root)
		}
		return fmt.Errorf("create cache root: %w", err)
	}
	if err := checkRootOwner(c.root); err != nil {
		return err
	}
	if fi, err := os.Stat(c.root); err == nil {
		if uid, gid, ok := tierOwner(fi); ok {
			c.owner = &fileOwner{uid, gid}
			// Root may lack the right to give files away (CAP_CHOWN
			// dropped, a user namespace, NFS's root_squash): then
			// what it makes stays its own, as before, rather than
			// fail every operation.
			root, err := os.OpenRoot(c.root)
			if err == nil {
				err = root.Lchown(".", uid, gid)
				root.Close()
			}
			if err != nil {
				c.owner = nil
			}
		}
	}
	marker := filepath.Join(c.root, markerName)
	// In a root open to all, another user could plant it (a FIFO would
	// block the read for good).
	if err := checkOwnerOf(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b, err := os.ReadFile(marker)
	switch {
	case err == nil && string(b) == markerLayout1:
		if err := replaceFile(marker, markerContent); err != nil {
			return err
		}
	case err == nil:
		if string(b) != markerContent {
			return fmt.Errorf("%w: %s: unsupported cache layout %q", tiercache.ErrInvalidArgument, marker, strings.TrimSpace(string(b)))
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := c.checkForeign(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("read cache marker: %w", err)
	}
	for _, d := range layoutDirs {
		p := filepath.Join(c.root, d)
		if err := os.Mkdir(p, 0o755); err == nil {
			c.own(p)
		} else if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cache layout: %w", err)
		}
		// Another user could have made it first in a root open to all.
		if err := checkOwnerOf(p); err != nil {
			return fmt.Errorf("cache layout: %w", err)
		}
	}
	tag := filepath.Join(c.root, cacheDirTag)
	if err := writeFileOnce(tag, tagContent); err != nil {
		return err
	}
	if err := writeFileOnce(marker, markerContent); err != nil {
		return err
	}
	c.own(tag)
	c.own(marker)
	return nil
}

// checkForeign refuses a root that holds anything but what Open itself
// creates (another process may be initialising the same root right now).
func (c *Cache) checkForeign() error {
	entries, err := os.ReadDir(c.root)
	if err != nil {
		return fmt.Errorf("read cache root: %w", err)
	}
	known := map[string]bool{markerName: true, cacheDirTag: true}
	for _, d := range layoutDirs {
		known[d] = true
	}
	for _, e := range entries {
		if !known[e.Name()] && !strings.HasPrefix(e.Name(), markerTmp) {
			return fmt.Errorf("%w: %s is neither empty nor a tiercache local cache (it holds %q)", tiercache.ErrInvalidArgument, c.root, e.Name())
		}
	}
	return nil
}

// writeFileOnce writes a small file atomically unless it exists already.
func writeFileOnce(path, content string) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	return replaceFile(path, content)
}

// replaceFile writes a small file atomically.
func replaceFile(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), markerTmp+unique())
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// InScope returns a view of c whose methods that take a key work on the
// entries of scope (see tiercache.ScopedKey): a key's entry in one scope
// is another entry than in the next, under its own name. The view shares
// c's root, options and sweeps; List, Stats, Prune and Sweep still cover
// every scope, and the entries they return name their scope.
func (c *Cache) InScope(scope string) (*Cache, error) {
	if err := tiercache.ValidateScope(scope); err != nil {
		return nil, err
	}
	v := *c
	v.scope = scope
	return &v, nil
}

// Scope returns the scope c's methods work on ("" for the default).
func (c *Cache) Scope() string { return c.scope }

// nameOf is the file name of key in c's scope.
func (c *Cache) nameOf(key string) string { return nameOf(tiercache.ScopedKey(c.scope, key)) }

// Root returns the absolute path of the cache's root directory.
func (c *Cache) Root() string { return c.root }

// Within reports whether p is the existing directory dir or lies below
// it, and then p's path relative to dir ("." for dir itself). p need not
// exist. Each directory above p is compared with dir as a file, so any
// spelling of dir counts: a symlink to it, ".." segments, another case
// where names fold. It tells whether a tree pushed or pulled overlaps a
// cache's root, which must never be archived or written into.
func Within(p, dir string) (rel string, ok bool) {
	di, err := os.Stat(dir)
	if err != nil || !di.IsDir() {
		return "", false
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", false
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real // the names the walk below p meets
	}
	var names []string
	for a := abs; ; a = filepath.Dir(a) {
		if fi, err := os.Stat(a); err == nil && os.SameFile(fi, di) {
			slices.Reverse(names)
			return filepath.Join(append([]string{"."}, names...)...), true
		}
		if filepath.Dir(a) == a {
			return "", false
		}
		names = append(names, filepath.Base(a))
	}
}

// Grace returns the grace period in effect (see Options.Grace).
func (c *Cache) Grace() time.Duration { return c.grace }

// unique returns 16 random lower-case hex digits.
func unique() string {
	var b [uniqueLen / 2]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents so)
	return hex.EncodeToString(b[:])
}

// meta is the content of a version's meta.json.
type meta struct {
	Format      int       `json:"format"`
	Key         string    `json:"key"`
	Scope       string    `json:"scope,omitempty"`
	Description string    `json:"description,omitempty"`
	Paths       []string  `json:"paths,omitempty"`
	Size        int64     `json:"size"`
	Files       int64     `json:"files"`
	Created     time.Time `json:"created"`
	// UnsyncedBoot is the boot ID of the system that wrote the entry
	// without flushing its data first; empty when it was flushed.
	UnsyncedBoot string `json:"unsynced_boot,omitempty"`
	// Archive describes the version's archive.tar.zst; nil for a
	// version stored as a tree alone.
	Archive *archiveMeta `json:"archive,omitempty"`
	// Signature is the entry's signature as the remote recorded it when
	// the entry was fetched (or the push that stored it made it); a
	// reader that requires one checks it again (see package sign).
	Signature *tiercache.Signature `json:"signature,omitempty"`
}

// lost reports whether the entry was published unflushed in an earlier
// boot: an OS crash or power loss may have dropped its data since.
func lost(m meta) bool { return m.UnsyncedBoot != "" && m.UnsyncedBoot != bootID() }

func readMeta(path string) (meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return meta{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaBytes+1))
	if err != nil {
		return meta{}, err
	}
	var m meta
	if len(b) > maxMetaBytes {
		return meta{}, fmt.Errorf("%w: %s is larger than %d bytes", tiercache.ErrIntegrity, path, maxMetaBytes)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return meta{}, fmt.Errorf("%w: %s: %w", tiercache.ErrIntegrity, path, err)
	}
	if m.Format > metaFormat {
		return meta{}, fmt.Errorf("%w: %s: format %d, of a newer tiercache: %w", tiercache.ErrIntegrity, path, m.Format, errNewerMeta)
	}
	if m.Format != metaFormat || m.Key == "" {
		return meta{}, fmt.Errorf("%w: %s: unsupported format %d or missing key", tiercache.ErrIntegrity, path, m.Format)
	}
	// Counted against prune's limits: a negative one would hide others.
	if m.Size < 0 || m.Files < 0 || (m.Archive != nil && m.Archive.Size < 0) {
		return meta{}, fmt.Errorf("%w: %s: a negative size or file count", tiercache.ErrIntegrity, path)
	}
	if m.Archive != nil {
		if err := checkIndex(archive.IndexInfo(m.Archive.Index), m.Archive.Size); err != nil {
			return meta{}, fmt.Errorf("%w: %s: %w", tiercache.ErrIntegrity, path, err)
		}
	}
	return m, nil
}

// errNewerMeta marks metadata in a format newer than this tiercache's: a
// newer release sharing the directory wrote it, and it is not damaged.
var errNewerMeta = errors.New("newer metadata format")

// versionName returns the key name a version directory belongs to.
func versionName(version string) (string, bool) {
	i := len(version) - uniqueLen - 1
	if i < 1 || version[i] != '-' {
		return "", false
	}
	return version[:i], true
}

// current returns the version index/<name> points at, or "" if none.
func (c *Cache) current(name string) (string, error) {
	target, err := readPointer(filepath.Join(c.indexDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: pointer %s: %w", tiercache.ErrIntegrity, name, err)
	}
	dir, version := filepath.Split(target)
	if n, ok := versionName(version); dir != "../data/" || !ok || n != name {
		return "", fmt.Errorf("%w: pointer %s names %q, not one of its versions", tiercache.ErrIntegrity, name, target)
	}
	return version, nil
}

// resolve finds the current version of key and its metadata. ok is false
// on a miss, including a version that belongs to another key. An error
// wrapping tiercache.ErrIntegrity (a pointer or metadata unusable, or a
// version kept as a tree alone without its tree) comes with the version
// concerned ("" for a pointer), for dropBroken.
func (c *Cache) resolve(key string) (version string, m meta, ok bool, err error) {
	name := c.nameOf(key)
	// A version can only vanish after its pointer moved away from it and
	// the grace passed; if we raced that, the pointer has moved: look again.
	for range 3 {
		version, err = c.current(name)
		if err != nil || version == "" {
			return "", meta{}, false, err
		}
		m, err = readMeta(filepath.Join(c.dataDir, version, metaFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, tiercache.ErrIntegrity) {
			return version, meta{}, false, fmt.Errorf("entry %q: %w", key, err)
		}
		if err != nil {
			return version, meta{}, false, fmt.Errorf("%w: entry %q: %w", tiercache.ErrIntegrity, key, err)
		}
		if m.Key != key || m.Scope != c.scope || lost(m) {
			return "", meta{}, false, nil
		}
		if tree := filepath.Join(c.dataDir, version, treeDir); m.Archive == nil && !hasTree(filepath.Dir(tree)) {
			// Kept as a tree alone, and the tree is gone: swept after
			// the pointer moved (look again), or damaged.
			if cur, cerr := c.current(name); cerr == nil && cur != version {
				continue
			}
			return version, meta{}, false, fmt.Errorf("%w: entry %q: %s is missing", tiercache.ErrIntegrity, key, tree)
		}
		return version, m, true, nil
	}
	return version, meta{}, false, fmt.Errorf("%w: entry %q: version %s has no metadata", tiercache.ErrIntegrity, key, version)
}

// Get returns the path of the tree stored under key (see
// tiercache.Backend). A hit reads two small files and sets one mtime; it
// never looks at other entries. The path stays readable for the grace
// period after the entry is replaced or removed, and, for an entry kept as
// an archive, for the grace period after the last Get that returned it
// (see Prune).
//
// An entry kept as an archive alone has its tree extracted beside the
// archive the first time Get asks for it (once, however many processes
// ask), which then stays until Prune needs the room. An archive that
// fails its recorded SHA-256 or shape is dropped, and Get reports a miss
// with an error wrapping tiercache.ErrIntegrity (see tiercache.Backend):
// the next Get is a plain miss.
func (c *Cache) Get(ctx context.Context, key string) (string, bool, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return "", false, err
	}
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	for range 3 {
		s, ok, err := c.Lookup(ctx, key)
		if !ok || err != nil {
			return "", false, err
		}
		if s.Tree != "" {
			return s.Tree, true, nil
		}
		p, err := c.materialize(ctx, s)
		switch {
		case errors.Is(err, errGone):
			continue // replaced and past its grace meanwhile: look again
		case errors.Is(err, tiercache.ErrIntegrity):
			// A damaged archive is dropped, so the caller builds (or
			// the tiered cache downloads) a fresh copy.
			_ = c.Drop(ctx, s)
			return "", false, err
		case err != nil:
			return "", false, err
		}
		return p, true, nil
	}
	return "", false, nil
}

// RemoteAccess returns when the remote tier was last told of an access to
// key, as far as this local tier knows: the time given to the last
// SetRemoteAccess, or else when the current version was stored (a version
// is stored by a push or a download, which the remote records itself).
// ok is false when key has no pointer. It lets every process on the
// machine share one throttle for the access records a local hit sends.
//
// The time is the mtime of the key's pointer, which nothing else uses: a
// pointer is replaced by a fresh symlink, never rewritten, so each version
// starts from the time it was stored.
func (c *Cache) RemoteAccess(key string) (time.Time, bool) {
	if tiercache.ValidateKey(key) != nil {
		return time.Time{}, false
	}
	fi, err := os.Lstat(filepath.Join(c.indexDir, c.nameOf(key)))
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

// SetRemoteAccess records that the remote tier was told of an access to
// key at t (see RemoteAccess). A key with no entry is left alone.
func (c *Cache) SetRemoteAccess(key string, t time.Time) error {
	if err := tiercache.ValidateKey(key); err != nil {
		return err
	}
	if err := setPointerTime(filepath.Join(c.indexDir, c.nameOf(key)), t); err != nil {
		return fmt.Errorf("local tier: record remote access of %q: %w", key, err)
	}
	return nil
}

// entry builds the Entry of a version from its metadata and mtime.
func (c *Cache) entry(version string, m meta) tiercache.Entry {
	vdir := filepath.Join(c.dataDir, version)
	e := tiercache.Entry{
		Key:         m.Key,
		Scope:       m.Scope,
		Signature:   m.Signature,
		Description: m.Description,
		Paths:       m.Paths,
		Size:        m.Size,
		Files:       m.Files,
		Stored:      m.Size,
		Created:     m.Created,
		LastAccess:  m.Created,
	}
	if m.Archive != nil {
		e.Stored = m.Archive.Size
		if hasTree(vdir) {
			e.Stored += m.Size
		}
	}
	// A file system with coarse timestamps may store the creation time
	// rounded down; an access is never before the creation.
	if fi, err := os.Stat(vdir); err == nil && fi.ModTime().After(e.LastAccess) {
		e.LastAccess = fi.ModTime().UTC()
	}
	return e
}

// Put stores a copy of the tree at sourceDir under key (see
// tiercache.Backend) and returns the path of the copy, made by Copy.
func (c *Cache) Put(ctx context.Context, key, sourceDir, description string) (string, error) {
	if sourceDir == "" {
		return "", fmt.Errorf("%w: empty source directory for key %q", tiercache.ErrInvalidArgument, key)
	}
	if err := c.CheckSource(sourceDir); err != nil {
		return "", fmt.Errorf("put %q: %w", key, err)
	}
	return c.PutFunc(ctx, key, description, func(ctx context.Context, dir string) (tiercache.Shape, error) {
		return Copy(ctx, sourceDir, dir)
	})
}

// CheckSource refuses, as ErrInvalidArgument, a source tree that holds
// the cache's root, which a copy into the tier would copy into itself
// without end, or that lies inside it.
func (c *Cache) CheckSource(sourceDir string) error {
	if _, in := Within(c.root, sourceDir); in {
		return fmt.Errorf("%w: %s holds the local tier %s, which a put would copy into itself", tiercache.ErrInvalidArgument, sourceDir, c.root)
	}
	if _, in := Within(sourceDir, c.root); in {
		return fmt.Errorf("%w: %s lies inside the local tier %s", tiercache.ErrInvalidArgument, sourceDir, c.root)
	}
	return nil
}

// Measure returns the Shape an entry of the tree at dir would record,
// leaving out the sockets and refusing the special files Put refuses,
// without copying anything.
func Measure(ctx context.Context, dir string) (tiercache.Shape, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return tiercache.Shape{}, fmt.Errorf("%w: %w", tiercache.ErrInvalidArgument, err)
	}
	if !fi.IsDir() {
		return tiercache.Shape{}, fmt.Errorf("%w: %s is not a directory", tiercache.ErrInvalidArgument, dir)
	}
	return statTree(ctx, dir)
}

// PutFunc is Put with the tree produced by fill: fill writes the tree into
// dir, an empty directory inside the cache root (so on the same file
// system: fill may rename files into it), and returns its Shape, which is
// recorded as given (Copy and Measure compute it; an extraction knows it).
// The entry is committed atomically after fill returns nil, so fill has
// the last word: it may wait for a check of its own before returning. If
// fill fails or ctx is cancelled, nothing is committed and dir is removed.
func (c *Cache) PutFunc(ctx context.Context, key, description string, fill func(ctx context.Context, dir string) (tiercache.Shape, error)) (string, error) {
	if err := checkPut(key, Info{Description: description}); err != nil {
		return "", err
	}
	if fill == nil {
		return "", fmt.Errorf("%w: nil fill for key %q", tiercache.ErrInvalidArgument, key)
	}
	return c.put(ctx, key, description, func(ctx context.Context, dir string) (tiercache.Shape, error) {
		sh, err := fill(ctx, dir)
		if err == nil && (sh.Size < 0 || sh.Files < 0) {
			err = fmt.Errorf("%w: fill reported %s", tiercache.ErrInvalidArgument, sh)
		}
		return sh, err
	})
}

// CheckDescription refuses a description longer than MaxDescriptionLen,
// the limit of an entry in every tier (the tiered cache checks remote
// entries with it too, since this tier must keep them).
func CheckDescription(key, d string) error {
	if len(d) > MaxDescriptionLen {
		return fmt.Errorf("key %q: its description is %d bytes, over the %d an entry may have", key, len(d), MaxDescriptionLen)
	}
	return nil
}

func checkPut(key string, info Info) error {
	if err := tiercache.ValidateKey(key); err != nil {
		return err
	}
	if err := CheckDescription(key, info.Description); err != nil {
		return fmt.Errorf("%w: %w", tiercache.ErrInvalidArgument, err)
	}
	if err := tiercache.ValidatePaths(info.Paths); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	// JSON escapes some bytes into six: within the limits above, a
	// meta.json may still be too large to read back, and so is refused
	// before anything is written. The room left is for the other fields.
	if b, err := json.Marshal(meta{Description: info.Description, Paths: info.Paths}); err != nil || len(b) > maxMetaBytes-metaRoom {
		return fmt.Errorf("%w: key %q: its description and paths take %d bytes encoded, over the %d an entry's metadata holds", tiercache.ErrInvalidArgument, key, len(b), maxMetaBytes-metaRoom)
	}
	return nil
}

// Info is what a version records besides its content: see
// tiercache.Entry's fields of the same names.
type Info struct {
	Description string
	Paths       []string
	Signature   *tiercache.Signature
	// Seal, if set, signs a version kept as an archive once it is
	// written: it is given what the version records (Entry's Key, Scope,
	// Description, Paths, Size and Files, and the archive's size, digest
	// and index) and returns the signature recorded instead of
	// Signature. A push that signs its upload signs its local copy so.
	Seal func(s Stored) *tiercache.Signature
	// Replaces, if set (by Current), makes the write yield to any other:
	// the version becomes current only if key has no current version
	// or still the one Current returned, checked under the lock every
	// commit of key takes, so across processes. Otherwise, another
	// version having been committed since, it is published as already
	// replaced, as if committed just before it: its paths stay readable
	// for the grace period, and the newer version stays current. A
	// download, which may have fetched a version older than a
	// concurrent push's, sets it. (An eviction meanwhile leaves no
	// version to yield to: the download becomes current.)
	Replaces Version
}

// Version names the version key's pointer named when Current read it,
// or none; the zero Version is unset (see Info.Replaces).
type Version struct {
	name string
	set  bool
}

// Current returns the version key's pointer names now, usable or not
// (from an earlier boot, or another key's under a colliding name), for
// Info.Replaces. A damaged pointer counts as none, as a commit counts
// it.
func (c *Cache) Current(key string) (Version, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return Version{}, err
	}
	cur, _ := c.current(c.nameOf(key))
	return Version{name: cur, set: true}, nil
}

// put stages a version of a tree with fill, then commits it.
func (c *Cache) put(ctx context.Context, key, description string, fill func(ctx context.Context, dir string) (tiercache.Shape, error)) (string, error) {
	version, _, err := c.putVersion(ctx, key, Info{Description: description}, func(ctx context.Context, ver string) (tiercache.Shape, *archiveMeta, error) {
		tree := filepath.Join(ver, treeDir)
		if err := os.Mkdir(tree, 0o755); err != nil {
			return tiercache.Shape{}, nil, err
		}
		sh, err := fill(ctx, tree)
		return sh, nil, err
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(c.dataDir, version, treeDir), nil
}

// putVersion stages a version with fill, which writes the version's
// content into the empty directory ver and returns what meta.json is to
// record, then commits it and returns its version name and metadata.
func (c *Cache) putVersion(ctx context.Context, key string, info Info, fill func(ctx context.Context, ver string) (tiercache.Shape, *archiveMeta, error)) (string, meta, error) {
	if err := ctx.Err(); err != nil {
		return "", meta{}, fmt.Errorf("put %q: %w", key, err)
	}
	st, err := c.newStaging()
	if err != nil {
		return "", meta{}, fmt.Errorf("put %q: %w", key, err)
	}
	defer st.release()
	ver := filepath.Join(st.dir, stagingVer)
	if err := os.Mkdir(ver, 0o755); err != nil {
		return "", meta{}, fmt.Errorf("put %q: %w", key, err)
	}
	stats, am, err := fill(ctx, ver)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return "", meta{}, fmt.Errorf("put %q: %w", key, err)
	}
	m := meta{
		Format:       metaFormat,
		Key:          key,
		Scope:        c.scope,
		Description:  info.Description,
		Paths:        info.Paths,
		Size:         stats.Size,
		Files:        stats.Files,
		Created:      time.Now().UTC(),
		UnsyncedBoot: c.boot,
		Archive:      am,
		Signature:    info.Signature,
	}
	if info.Seal != nil && am != nil {
		m.Signature = info.Seal(Stored{
			Entry:       tiercache.Entry{Key: key, Scope: c.scope, Description: m.Description, Paths: m.Paths, Size: m.Size, Files: m.Files},
			ArchiveSize: am.Size, SHA256: am.SHA256, Index: archive.IndexInfo(am.Index),
		})
	}
	if err := writeVersionFiles(ver, m); err != nil {
		return "", meta{}, fmt.Errorf("put %q: %w", key, err)
	}
	c.ownTree(ver)
	if !c.noSync && c.boot == "" {
		if err := syncTree(ver); err != nil {
			return "", meta{}, fmt.Errorf("put %q: %w", key, err)
		}
	}
	// Last look at ctx: past this point the commit is a handful of
	// metadata operations, and interrupting them would only leave more for
	// the sweeper.
	if err := ctx.Err(); err != nil {
		return "", meta{}, fmt.Errorf("put %q: %w", key, err)
	}
	version, err := c.commit(ctx, c.nameOf(key), ver, info.Replaces)
	if err != nil {
		return "", meta{}, fmt.Errorf("put %q: %w", key, err)
	}
	c.maybeSweep(ctx.Err)
	return version, m, nil
}

// writeVersionFiles writes meta.json of a staged version and sets the
// version directory's mtime, its last access, to its creation. rename(2)
// keeps a directory's mtime, so this survives publishing.
func writeVersionFiles(ver string, m meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ver, metaFile), b, 0o644); err != nil {
		return err
	}
	return os.Chtimes(ver, m.Created, m.Created)
}

// commit publishes the staged version directory ver as the current version
// of name and returns its version name; if replaces is set and no longer
// current, as a replaced one (see Info.Replaces).
func (c *Cache) commit(ctx context.Context, name, ver string, replaces Version) (string, error) {
	lock, err := c.lockStripe(ctx, name)
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	version := name + "-" + unique()
	dst := filepath.Join(c.dataDir, version)
	if err := os.Rename(ver, dst); err != nil {
		return "", fmt.Errorf("publish version: %w", err)
	}
	if replaces.set {
		if cur, _ := c.current(name); cur != "" && cur != replaces.name {
			// Never current, so never fsynced: a crash leaves at worst
			// an orphan, which the full sweep removes.
			if err := c.retire(version); err != nil {
				_ = os.Rename(dst, filepath.Join(c.trashDir, version))
				return "", err
			}
			return version, nil
		}
	}
	if err := c.swap(name, version); err != nil {
		// Unless the pointer moved before the failure (a failed fsync
		// of index/), the version was never current, so nobody can be
		// reading it: straight to trash.
		if cur, cerr := c.current(name); cerr != nil || cur != version {
			_ = os.Rename(dst, filepath.Join(c.trashDir, version))
		}
		return "", err
	}
	return version, nil
}

// swap makes version the current version of name, retiring the one it
// replaces. The caller holds name's stripe lock.
func (c *Cache) swap(name, version string) error {
	if !c.noSync {
		// The version must be durable in data/ before a pointer to it is.
		if err := syncPath(c.dataDir); err != nil {
			return err
		}
	}
	old, err := c.current(name)
	if err != nil && !errors.Is(err, tiercache.ErrIntegrity) {
		return err
	}
	if old != "" {
		// Recorded before the pointer moves: every version that was ever
		// current and is no longer has a record, so the sweep grants it
		// its grace. A record whose version is still current (crash right
		// here) is recognised as stale and dropped.
		if err := c.retire(old); err != nil {
			return err
		}
	}
	tmp := filepath.Join(c.indexDir, tmpPrefix+unique())
	if err := writePointer(tmp, "../data/"+version, !c.noSync); err != nil {
		return fmt.Errorf("swap pointer: %w", err)
	}
	// Its time records remote use, which only its owner may set.
	c.own(tmp)
	if err := movePointer(tmp, filepath.Join(c.indexDir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("swap pointer: %w", err)
	}
	if !c.noSync {
		return syncPath(c.indexDir)
	}
	return nil
}

// retire records that version stops being current now.
func (c *Cache) retire(version string) error {
	rec := filepath.Join(c.retiredDir, version)
	f, err := os.OpenFile(rec, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("retire version: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("retire version: %w", err)
	}
	c.own(rec)
	// An existing record (a crash left a stale one) must restart the
	// grace from now.
	now := time.Now()
	if err := os.Chtimes(rec, now, now); err != nil {
		return fmt.Errorf("retire version: %w", err)
	}
	// No fsync: the record only protects readers of this version in other
	// processes, and after a power loss there are none.
	return nil
}

// stripeOf returns the internal lock file guarding name's pointer. A fixed
// set of stripes keeps lock files from piling up with every key ever
// seen; two keys sharing a stripe only serialise their brief pointer
// updates.
func (c *Cache) stripeOf(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return filepath.Join(c.locksDir, fmt.Sprintf("stripe-%02d", h.Sum32()%stripes))
}

func (c *Cache) lockStripe(ctx context.Context, name string) (*flock.Handle, error) {
	return c.lock(ctx, c.stripeOf(name))
}

// staging is a Put's private directory, locked for its whole life.
type staging struct {
	dir  string
	lock *flock.Handle
}

// newStaging locks a fresh staging name, then creates its directory. The
// lock file exists before the directory and goes after it (see release),
// so a sweeper tells a dead Put's staging from a live one's by the lock
// alone, at any instant, without waiting for it to age.
func (c *Cache) newStaging() (*staging, error) {
	var lastErr error
	for range 4 {
		dir := filepath.Join(c.stagingDir, unique())
		lock, ok, err := c.tryLock(dir + stagingLockExt)
		if err != nil {
			lastErr = fmt.Errorf("lock staging: %w", err)
			continue
		}
		if !ok {
			lastErr = fmt.Errorf("lock staging %s: held by another process", dir)
			continue
		}
		// The directory stays root's while it is filled: given away,
		// its owner could swap what root writes there (see own).
		if err := os.Mkdir(dir, 0o755); err != nil {
			_ = lock.Remove()
			lastErr = fmt.Errorf("create staging: %w", err)
			continue
		}
		return &staging{dir: dir, lock: lock}, nil
	}
	return nil, lastErr
}

// release removes what is left of the staging directory (all of it after a
// failure, an empty directory after a commit), then its lock file.
func (s *staging) release() {
	if err := fsutil.RemoveAll(s.dir); err != nil {
		// Keep the lock file: the next sweep takes the free lock and
		// retries.
		_ = s.lock.Unlock()
		return
	}
	_ = s.lock.Remove()
}

// Lock takes the per-key lock of key, shared by every goroutine and every
// process using this root, and returns the function that releases it. It
// is separate from the locks Put, PutFunc and Invalidate take internally,
// so the holder may call them (and Get) for the same key: the tiered cache
// holds it while hydrating a key so only one process downloads it. It
// waits until the lock is free or ctx is done.
func (c *Cache) Lock(ctx context.Context, key string) (unlock func(), err error) {
	return c.LockNotify(ctx, key, nil)
}

// LockNotify is Lock that calls waiting, if set, when another holder
// makes it wait (so a caller can say why nothing happens).
func (c *Cache) LockNotify(ctx context.Context, key string, waiting func()) (unlock func(), err error) {
	return c.lockKey(ctx, key, ".lock", waiting)
}

// LockPush takes the push lock of key: another per-key lock, shared the
// same way and apart from Lock's, so that pushes queue on it while
// downloads, which take Lock's, never wait for a push. The tiered cache
// holds it from before a push commits its local copy until its upload
// has committed, so that concurrent pushes of one machine commit both
// tiers in one order. waiting is called as with LockNotify.
func (c *Cache) LockPush(ctx context.Context, key string, waiting func()) (unlock func(), err error) {
	// nameOf never writes '+': no key's Lock file has this name.
	return c.lockKey(ctx, key, "+push.lock", waiting)
}

// lockKey takes the per-key lock whose file is key's name and suffix.
func (c *Cache) lockKey(ctx context.Context, key, suffix string, waiting func()) (unlock func(), err error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return nil, err
	}
	path := filepath.Join(c.keyLocks, c.nameOf(key)+suffix)
	h, ok, err := c.tryLock(path)
	if err == nil && !ok {
		if waiting != nil {
			waiting()
		}
		h, err = c.lock(ctx, path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock key %q: %w", key, err)
	}
	return func() { _ = h.Unlock() }, nil
}

// Invalidate removes the entry stored under key (see tiercache.Backend).
// Its tree stays readable at the path Get returned for the grace period.
func (c *Cache) Invalidate(ctx context.Context, key string) error {
	if err := tiercache.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name := c.nameOf(key)
	lock, err := c.lockStripe(ctx, name)
	if err != nil {
		return fmt.Errorf("invalidate %q: %w", key, err)
	}
	defer lock.Unlock()
	version, err := c.current(name)
	if err != nil && !errors.Is(err, tiercache.ErrIntegrity) {
		return fmt.Errorf("invalidate %q: %w", key, err)
	}
	if version != "" {
		m, err := readMeta(filepath.Join(c.dataDir, version, metaFile))
		if err == nil && (m.Key != key || m.Scope != c.scope) {
			return nil // another key's entry under a colliding name
		}
	}
	if err := c.unpoint(name, version); err != nil {
		return fmt.Errorf("invalidate %q: %w", key, err)
	}
	if !c.noSync {
		if err := syncPath(c.indexDir); err != nil {
			return fmt.Errorf("invalidate %q: %w", key, err)
		}
	}
	return nil
}

// InvalidateIf is Invalidate of the version v of key alone (as
// ListVersions or Current found it): the entry is removed only if v is
// still current, checked under the lock every commit of key takes, so
// across processes. It reports whether it removed it: a version
// committed since (a concurrent Put's) is left current, and an entry
// already gone is not removed twice.
func (c *Cache) InvalidateIf(ctx context.Context, key string, v Version) (bool, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return false, err
	}
	if !v.set {
		return false, fmt.Errorf("%w: invalidate %q: no version given", tiercache.ErrInvalidArgument, key)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	name := c.nameOf(key)
	if n, ok := versionName(v.name); !ok || n != name {
		return false, nil // none, or another key's
	}
	if m, err := readMeta(filepath.Join(c.dataDir, v.name, metaFile)); err == nil && (m.Key != key || m.Scope != c.scope) {
		return false, nil // another key's entry under a colliding name
	}
	if err := c.evict(ctx, name, v.name); errors.Is(err, errReplaced) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("invalidate %q: %w", key, err)
	}
	if !c.noSync {
		if err := syncPath(c.indexDir); err != nil {
			return true, fmt.Errorf("invalidate %q: %w", key, err)
		}
	}
	return true, nil
}

// InvalidateUnless is Invalidate unless key's current version keeps the
// archive of SHA-256 sum and size bytes, checked under the lock every
// commit of key takes, so across processes: a tier that must hold one
// archive or nothing (the one a push just left remotely) drops any
// other. A version kept as a tree alone, or whose metadata is unusable,
// is not that archive. It reports whether it removed an entry.
func (c *Cache) InvalidateUnless(ctx context.Context, key, sum string, size int64) (bool, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	name := c.nameOf(key)
	lock, err := c.lockStripe(ctx, name)
	if err != nil {
		return false, fmt.Errorf("invalidate %q: %w", key, err)
	}
	defer lock.Unlock()
	version, err := c.current(name)
	if err != nil && !errors.Is(err, tiercache.ErrIntegrity) {
		return false, fmt.Errorf("invalidate %q: %w", key, err)
	}
	if version == "" && err == nil {
		return false, nil
	}
	if version != "" {
		m, err := readMeta(filepath.Join(c.dataDir, version, metaFile))
		if err == nil && (m.Key != key || m.Scope != c.scope) {
			return false, nil // another key's entry under a colliding name
		}
		if err == nil && m.Archive != nil && strings.EqualFold(m.Archive.SHA256, sum) && m.Archive.Size == size {
			return false, nil
		}
	}
	if err := c.unpoint(name, version); err != nil {
		return false, fmt.Errorf("invalidate %q: %w", key, err)
	}
	if !c.noSync {
		if err := syncPath(c.indexDir); err != nil {
			return true, fmt.Errorf("invalidate %q: %w", key, err)
		}
	}
	return true, nil
}

// unpoint retires version (if any) and removes name's pointer. The caller
// holds name's stripe lock.
func (c *Cache) unpoint(name, version string) error {
	if version != "" {
		if err := c.retire(version); err != nil {
			return err
		}
	}
	err := removePointer(filepath.Join(c.indexDir, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// record is one pointer found by scan.
type record struct {
	name    string
	version string
	entry   tiercache.Entry
	broken  bool         // the pointer or its metadata is unusable
	arch    *archiveMeta // the version's archive; nil if kept as a tree alone
	tree    bool         // the version has a tree (for an archive: one Get made)
}

// scan reads every pointer with its version's metadata and access time.
func (c *Cache) scan(ctx context.Context) ([]record, error) {
	d, err := os.Open(c.indexDir)
	if err != nil {
		return nil, fmt.Errorf("list cache: %w", err)
	}
	defer d.Close()
	var recs []record
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		names, err := d.Readdirnames(1024)
		for _, name := range names {
			if strings.HasPrefix(name, ".") {
				continue // a temporary pointer, never an entry
			}
			version, cerr := c.current(name)
			if cerr == nil && version == "" {
				continue // removed since we listed it
			}
			r := record{name: name, version: version}
			if cerr != nil {
				r.broken = true
				recs = append(recs, r)
				continue
			}
			m, merr := readMeta(filepath.Join(c.dataDir, version, metaFile))
			if merr != nil || lost(m) {
				r.broken = true
			} else {
				r.entry = c.entry(version, m)
				r.arch = m.Archive
				r.tree = r.arch == nil || hasTree(filepath.Join(c.dataDir, version))
			}
			recs = append(recs, r)
		}
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list cache: %w", err)
		}
	}
}

// List returns the stored entries (see tiercache.Backend). Pointers whose
// version is unreadable are left out; Prune removes them.
func (c *Cache) List(ctx context.Context) ([]tiercache.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	recs, err := c.scan(ctx)
	if err != nil {
		return nil, err
	}
	entries := make([]tiercache.Entry, 0, len(recs))
	for _, r := range recs {
		if !r.broken {
			entries = append(entries, r.entry)
		}
	}
	return entries, nil
}

// Listed is an entry as ListVersions found it.
type Listed struct {
	tiercache.Entry
	// Version is the version the entry was found at, for InvalidateIf.
	Version Version
	// ArchiveSize, SHA256 and Index are the version's archive as
	// recorded, as in Stored: zero for a version kept as a tree alone.
	ArchiveSize int64
	SHA256      string
	Index       archive.IndexInfo
}

// ListVersions is List with the version each entry was found at, so a
// caller that chooses entries to evict from a listing evicts those
// versions only (see InvalidateIf), not newer ones committed since.
func (c *Cache) ListVersions(ctx context.Context) ([]Listed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	recs, err := c.scan(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(recs))
	for _, r := range recs {
		if !r.broken {
			l := Listed{Entry: r.entry, Version: Version{name: r.version, set: true}}
			if r.arch != nil {
				l.ArchiveSize, l.SHA256, l.Index = r.arch.Size, r.arch.SHA256, archive.IndexInfo(r.arch.Index)
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// Stats returns aggregates over List.
func (c *Cache) Stats(ctx context.Context) (tiercache.Stats, error) {
	return tiercache.StatsOf(c.List(ctx))
}

// Prune evicts least recently accessed entries until at most maxEntries
// entries and maxBytes bytes remain (see tiercache.Backend). Bytes are
// counted as the entries take them on disk (Entry.Stored: an archive, plus
// the tree Get made beside it). Trees made beside archives are removed
// first, least recently used first, as long as the bytes of the entries
// the other limits keep are over the limit, but none used within the
// grace period; one that cannot be removed (on Windows, while a reader
// has a file open in it) is kept and still counted. An eviction removes
// the pointer and retires the version; its tree is deleted by a later
// sweep once the grace period has passed.
// Broken pointers (see List) are removed too, without being counted. An
// entry replaced by a concurrent Put while Prune runs is not evicted.
func (c *Cache) Prune(ctx context.Context, maxEntries int, maxBytes int64) (int, error) {
	return c.PruneLimits(ctx, policy.Limits{MaxEntries: maxEntries, MaxBytes: maxBytes})
}

// PruneLimits is Prune with every limit policy.Limits has: with MaxAge,
// the entries last accessed (Entry.LastAccess, the version directory's
// mtime) more than MaxAge ago are evicted too, by this machine's clock.
// It reports each eviction to limits.OnEvict, with the bytes the entry
// took on disk; not the broken pointers it removes.
func (c *Cache) PruneLimits(ctx context.Context, limits policy.Limits) (int, error) {
	if err := limits.Validate(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	recs, err := c.scan(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	changed := false
	for _, r := range recs {
		if r.broken {
			if err := c.evict(ctx, r.name, r.version); err != nil && !errors.Is(err, errReplaced) {
				return 0, fmt.Errorf("prune: remove broken pointer %s: %w", r.name, err)
			}
			changed = true
			continue
		}
	}
	now := time.Now()
	if limits.MaxBytes > 0 {
		// Trees made beside archives go first: the archive restores
		// them, so dropping one loses nothing a pull needs. But only
		// trees of entries the other limits keep, and only as long as
		// those entries are over the byte limit: the others go whole
		// anyway (they are the first victims below too).
		items, _ := itemsOf(recs)
		doomed, err := policy.Victims(items, policy.Limits{MaxEntries: limits.MaxEntries, MaxAge: limits.MaxAge}, now)
		if err != nil {
			return 0, err
		}
		skip := make(map[string]bool, len(doomed))
		for _, v := range doomed {
			skip[v.Key] = true
		}
		if err := c.dropTrees(ctx, recs, limits.MaxBytes, skip); err != nil {
			return 0, fmt.Errorf("prune: %w", err)
		}
	}
	items, byKey := itemsOf(recs)
	victims, err := policy.Victims(items, limits, now)
	if err != nil {
		return 0, err
	}
	n := 0
	defer func() {
		if changed && !c.noSync {
			_ = syncPath(c.indexDir)
		}
		_ = c.sweep(ctx.Err, false)
	}()
	// An entry that cannot be evicted (its lock file made unusable by
	// another user) must not keep every later prune from freeing space:
	// the others still go, and the failures are reported at the end.
	var errs []error
	for _, v := range victims {
		if err := ctx.Err(); err != nil {
			return n, joinSemicolons(append(errs, fmt.Errorf("prune: %w", err)))
		}
		r := byKey[v.Key]
		if err := c.evict(ctx, r.name, r.version); errors.Is(err, errReplaced) {
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("evict %q: %w", v.Key, err))
			continue
		}
		changed = true
		n++
		limits.Report(v)
	}
	return n, joinSemicolons(errs)
}

// joinSemicolons is errors.Join on one line, for messages printed as one.
func joinSemicolons(errs []error) error {
	var err error
	for _, e := range errs {
		if err == nil {
			err = e
		} else {
			err = fmt.Errorf("%w; %w", err, e)
		}
	}
	return err
}

// itemsOf returns what victim selection needs of the usable records, and
// the records by the Item's Key: the stored key, since one key may be
// stored in several scopes.
func itemsOf(recs []record) ([]policy.Item, map[string]record) {
	var items []policy.Item
	byKey := make(map[string]record, len(recs))
	for _, r := range recs {
		if r.broken {
			continue
		}
		k := tiercache.ScopedKey(r.entry.Scope, r.entry.Key)
		items = append(items, policy.Item{Key: k, Size: r.entry.Stored, LastAccess: r.entry.LastAccess})
		byKey[k] = r
	}
	return items, byKey
}

// errReplaced reports an eviction that found a newer version current.
var errReplaced = errors.New("replaced concurrently")

// evict removes name's pointer if it still names version.
func (c *Cache) evict(ctx context.Context, name, version string) error {
	lock, err := c.lockStripe(ctx, name)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	cur, err := c.current(name)
	if err != nil && !errors.Is(err, tiercache.ErrIntegrity) {
		return err
	}
	if cur != version {
		return errReplaced
	}
	return c.unpoint(name, version)
}

// EntryAt returns the metadata of the version whose tree is at path, as
// returned by Get, Put or PutFunc, whether or not that version is still
// current. A concurrent writer of the same key cannot confuse it: it
// describes exactly the tree at path.
func (c *Cache) EntryAt(path string) (tiercache.Entry, error) {
	verDir, tree := filepath.Split(filepath.Clean(path))
	verDir = filepath.Clean(verDir)
	dataDir, version := filepath.Split(verDir)
	if tree != treeDir || filepath.Clean(dataDir) != c.dataDir {
		return tiercache.Entry{}, fmt.Errorf("%w: %s is not a tree of the cache at %s", tiercache.ErrInvalidArgument, path, c.root)
	}
	if _, ok := versionName(version); !ok {
		return tiercache.Entry{}, fmt.Errorf("%w: %s is not a tree of the cache at %s", tiercache.ErrInvalidArgument, path, c.root)
	}
	m, err := readMeta(filepath.Join(verDir, metaFile))
	if err != nil {
		return tiercache.Entry{}, fmt.Errorf("%w: version %s: %w", tiercache.ErrIntegrity, version, err)
	}
	return c.entry(version, m), nil
}
