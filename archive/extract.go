package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// Defaults for the zero fields of ExtractOptions.
const (
	DefaultMaxBytes         int64  = 64 << 30
	DefaultMaxEntries       int64  = 10_000_000
	DefaultMaxDecoderMemory uint64 = 256 << 20
)

// Metadata allowance: besides file contents, the decompressed stream may
// hold this many bytes per member (headers, PAX records with names up to
// MaxNameLength for both name and link target) plus a fixed slack for the
// member being read and the end-of-archive padding. It bounds what a
// stream of meta headers (which the tar reader consumes without returning
// a member) can make Extract read.
const (
	metaPerEntry = 16 << 10
	metaSlack    = 4 << 20
)

// maxNameBytes caps the total length of the members' names and link
// targets, and so what extraction keeps of them: a node per name
// (nameTree, which holds last components, not full paths, so a member
// costs its node, bounded by MaxEntries, and at most its name's length)
// and each symlink's name and target. Write refuses a tree over it. A
// variable for tests.
//
// It also caps the directories no member describes, which Write never
// makes, at maxNameBytes/implicitDirBytes: each costs a node, and a small
// archive of paths thousands of components deep, each below a new top
// directory, would otherwise ask for gigabytes of nodes. So names cost a
// small multiple of maxNameBytes at most besides the members' nodes. Real
// trees stay far below both (a million members of 500 bytes).
var maxNameBytes int64 = 512 << 20

// implicitDirBytes is about what a directory no member describes costs
// in memory, its node in a nameTree (see maxNameBytes).
const implicitDirBytes = 128

// nameTree records the names an extraction created as a tree: a name is
// its parent's node and its last component, so memory grows with the
// distinct components of the archive's paths, not with their full length
// (a map of full names kept every member's whole name, 4 KiB each for an
// archive of many long names below one long parent), and a lookup hashes
// components, not every prefix of a path thousands of components deep.
// Nodes are numbered in creation order, a parent before its children;
// node 0 is the destination.
type nameTree struct {
	ids     map[nameKey]int
	kinds   []kind // by node
	parents []int
	bases   []string // last components
}

// nameKey is a name in a nameTree: its parent's node, its last component.
type nameKey struct {
	parent int
	base   string
}

func newNameTree() *nameTree {
	return &nameTree{ids: map[nameKey]int{}, kinds: []kind{kindDir}, parents: []int{0}, bases: []string{""}}
}

// child returns the node of base in the directory parent.
func (t *nameTree) child(parent int, base string) (int, bool) {
	id, ok := t.ids[nameKey{parent, base}]
	return id, ok
}

// add records base, not yet a child of parent, as a k, and returns its
// node.
func (t *nameTree) add(parent int, base string, k kind) int {
	id := len(t.kinds)
	// A copy: base is often a slice of the member's whole name.
	base = strings.Clone(base)
	t.ids[nameKey{parent, base}] = id
	t.kinds = append(t.kinds, k)
	t.parents = append(t.parents, parent)
	t.bases = append(t.bases, base)
	return id
}

// lookup returns the node of name (cleaned, slash-separated, not ".").
func (t *nameTree) lookup(name string) (int, bool) {
	id := 0
	for c := range strings.SplitSeq(name, "/") {
		var ok bool
		if id, ok = t.child(id, c); !ok {
			return 0, false
		}
	}
	return id, true
}

// depth returns how many components the name of node id has.
func (t *nameTree) depth(id int) int {
	d := 0
	for ; id != 0; id = t.parents[id] {
		d++
	}
	return d
}

// path returns the name of node id, not 0.
func (t *nameTree) path(id int) string {
	n := -1
	for i := id; i != 0; i = t.parents[i] {
		n += len(t.bases[i]) + 1
	}
	b := make([]byte, n)
	for i := id; i != 0; i = t.parents[i] {
		n -= len(t.bases[i])
		copy(b[n:], t.bases[i])
		if n > 0 {
			n--
			b[n] = '/'
		}
	}
	return string(b)
}

// foldedNames finds the names of a nameTree that differ from a given one
// at most in letter case (strings.ToUpper), for a destination that folds
// names.
type foldedNames struct {
	ids map[nameKey]int // folded parent, upper-cased component -> folded node
	rep []int           // folded node -> the first node of the tree folding to it
}

// folded indexes t's names upper-cased.
func (t *nameTree) folded() *foldedNames {
	f := &foldedNames{ids: make(map[nameKey]int, len(t.kinds)), rep: make([]int, 1, len(t.kinds))}
	of := make([]int, len(t.kinds)) // node -> folded node; parents come first
	for id := 1; id < len(t.kinds); id++ {
		key := nameKey{of[t.parents[id]], strings.ToUpper(t.bases[id])}
		fid, ok := f.ids[key]
		if !ok {
			fid = len(f.rep)
			f.ids[key] = fid
			f.rep = append(f.rep, id)
		}
		of[id] = fid
	}
	return f
}

// lookup returns a node whose name upper-cased is name's.
func (f *foldedNames) lookup(name string) (int, bool) {
	fid := 0
	for c := range strings.SplitSeq(name, "/") {
		var ok bool
		if fid, ok = f.ids[nameKey{fid, strings.ToUpper(c)}]; !ok {
			return 0, false
		}
	}
	return f.rep[fid], true
}

// ExtractOptions bounds what Extract accepts. Zero fields take the
// documented defaults.
type ExtractOptions struct {
	// MaxBytes caps the total size of the regular files, both as the
	// headers declare it (checked before a file is created) and as
	// actually read. Default DefaultMaxBytes (64 GiB).
	MaxBytes int64
	// MaxEntries caps the number of archive members. It also bounds
	// Extract's memory, which keeps one small record per member. Default
	// DefaultMaxEntries (10 million).
	MaxEntries int64
	// MaxDecoderMemory caps the zstd window, and so the decoder's memory
	// (which is a small multiple of it). Default DefaultMaxDecoderMemory
	// (256 MiB); the zstd CLI's default levels use at most 8 MiB.
	MaxDecoderMemory uint64
	// StrictSymlinks refuses symlinks whose target is absolute or resolves
	// (through the archive's own symlinks) outside the destination; on
	// macOS and Windows, also one that may do so through a symlink named
	// in another case or Unicode form (see the package documentation).
	StrictSymlinks bool
	// SkipSymlinks skips, rather than failing on, a symlink the system
	// will not create: on Windows without the privilege (or Developer
	// Mode), or on a file system that holds none. Result counts them.
	// Nothing is ever created at or below a skipped symlink's name (on
	// macOS and Windows, in any case either).
	SkipSymlinks bool
	// Writers is how many goroutines create small files while the stream
	// is decoded. Default DefaultWriters; 1 writes every file in turn.
	Writers int
	// Decoders is how many zstd frames are decoded at once, ahead of the
	// tar reader, for an archive cut into frames as Write cuts them.
	// Default min(GOMAXPROCS, 8); 1 decodes the stream in one sequence.
	// Either way every member passes the same checks, in stream order.
	Decoders int
	// Paths, when above zero, says the archive holds that many paths
	// (see Source.Paths): every member must be one of "0" to Paths-1,
	// each a directory or a regular file, or below one of those
	// directories, else it is refused with tiercache.ErrUnsafeArchive;
	// and each must be there, else Extract fails with
	// tiercache.ErrIntegrity. So whatever the archive holds, the caller
	// finds exactly the paths it expects, none of them a symlink.
	Paths int
}

// Within returns o with MaxBytes and MaxEntries lowered to what an entry
// records (size bytes in files members): extracting no more than that
// stops a damaged or hostile archive at the first byte past it instead of
// after it has filled the disk. A zero limit (the default) is replaced by
// the recorded amount; never below 1, since 0 would mean the default.
func (o ExtractOptions) Within(size, files int64) ExtractOptions {
	capTo := func(configured, recorded int64) int64 {
		recorded = max(recorded, 1)
		if configured == 0 || configured > recorded {
			return recorded
		}
		return configured
	}
	o.MaxBytes = capTo(o.MaxBytes, size)
	o.MaxEntries = capTo(o.MaxEntries, files)
	return o
}

// Validate reports a setting of o that Extract refuses, as an error
// wrapping tiercache.ErrInvalidArgument.
func (o ExtractOptions) Validate() error {
	_, err := o.withDefaults()
	return err
}

func (o ExtractOptions) withDefaults() (ExtractOptions, error) {
	if o.MaxBytes < 0 || o.MaxEntries < 0 {
		return o, fmt.Errorf("archive: negative extraction limit (MaxBytes %d, MaxEntries %d): %w", o.MaxBytes, o.MaxEntries, tiercache.ErrInvalidArgument)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxDecoderMemory == 0 {
		o.MaxDecoderMemory = DefaultMaxDecoderMemory
	}
	if o.MaxDecoderMemory < zstd.MinWindowSize {
		return o, fmt.Errorf("archive: MaxDecoderMemory %d below the zstd minimum window of %d bytes: %w", o.MaxDecoderMemory, zstd.MinWindowSize, tiercache.ErrInvalidArgument)
	}
	if o.Paths < 0 {
		return o, fmt.Errorf("archive: negative Paths %d: %w", o.Paths, tiercache.ErrInvalidArgument)
	}
	if o.Writers < 0 {
		return o, fmt.Errorf("archive: negative Writers %d: %w", o.Writers, tiercache.ErrInvalidArgument)
	}
	if o.Writers == 0 {
		o.Writers = DefaultWriters
	}
	if o.Decoders < 0 {
		return o, fmt.Errorf("archive: negative Decoders %d: %w", o.Decoders, tiercache.ErrInvalidArgument)
	}
	if o.Decoders == 0 {
		o.Decoders = defaultDecoders()
	}
	return o, nil
}

// Extract reads a zstd-compressed tar archive from r and recreates its tree
// under dir, which must be an existing, empty directory. It returns the
// size and SHA-256 of every byte read from r (the whole input: Extract
// reads to EOF), the member count and the regular-file bytes.
//
// The input is treated as hostile; see the package documentation for the
// checks and their errors (tiercache.ErrUnsafeArchive,
// tiercache.ErrLimitExceeded, tiercache.ErrIntegrity, each naming the
// member concerned where there is one). A failure to read r itself is
// returned wrapped as it is, so callers can retry transient faults. An
// invalid option or an unusable dir wraps tiercache.ErrInvalidArgument.
//
// Besides MaxBytes of file data, the decompressed stream may spend 16 KiB
// per member plus 4 MiB in all on headers and padding; beyond that Extract
// fails with tiercache.ErrLimitExceeded, which stops bombs made of
// metadata the tar reader would otherwise swallow silently.
//
// ctx is checked between members and during large copies. The zstd
// decoder reads r from its own goroutine, and Extract returns only once a
// read it started has returned, so r should honour cancellation itself (as
// an HTTP body tied to ctx does).
//
// On any error dir may hold part of the tree, possibly with read-only
// directories; nothing outside dir is ever written.
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	root, err := openEmptyDir(dir)
	if err != nil {
		return Result{}, err
	}
	defer root.Close()
	return decode(ctx, r, opts, root, dir)
}

// Inspect reads an archive from r as Extract does, with the same checks,
// limits and errors, but writes nothing: it returns what Extract would
// (the input's size and SHA-256, reading it to EOF; the member count and
// the regular-file bytes). Only what needs a file system is not checked:
// a name that collides on disk with another.
func Inspect(ctx context.Context, r io.Reader, opts ExtractOptions) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	return decode(ctx, r, opts, nil, "")
}

// decode runs an extraction into root, opened on dir, or with root nil
// an inspection.
func decode(ctx context.Context, r io.Reader, opts ExtractOptions, root *os.Root, dir string) (Result, error) {
	hr := &hashReader{r: r, h: sha256.New()}
	var dec io.Reader
	if opts.Decoders > 1 {
		pr, err := newParallelReader(ctx, hr, opts.MaxDecoderMemory, opts.Decoders)
		if err != nil {
			return Result{}, fmt.Errorf("archive: zstd decoder: %w: %w", tiercache.ErrInvalidArgument, err)
		}
		// Closing stops its goroutines, on every path.
		defer pr.Close()
		dec = pr
	} else {
		zr, err := zstd.NewReader(hr,
			zstd.WithDecoderMaxMemory(opts.MaxDecoderMemory),
			zstd.WithDecoderMaxWindow(opts.MaxDecoderMemory),
		)
		if err != nil {
			return Result{}, fmt.Errorf("archive: zstd decoder: %w: %w", tiercache.ErrInvalidArgument, err)
		}
		defer zr.Close()
		dec = zr
	}

	m := &meter{r: dec, limit: metaSlack}
	x := &extractor{
		ctx:   ctx,
		opts:  opts,
		root:  root,
		hr:    hr,
		m:     m,
		tr:    tar.NewReader(m),
		names: newNameTree(),
		dirs:  map[int]dirMeta{},
		links: map[string]string{},
		buf:   make([]byte, copyChunk),
		umask: fsutil.Umask(),
	}
	if root != nil {
		x.top = newDirHandle(".", dir, root)
		x.top.acquire() // Extract's own reference: root is closed by Extract
		defer x.closeDirs()
	}
	if root != nil && opts.Writers > 1 {
		x.pool = newWriterPool(opts.Writers, x.umask, x.createErr)
		// Deferred last, so it runs first: writers finish before any
		// handle they use is closed and before Extract returns.
		defer x.pool.stop()
	}
	if err := x.run(); err != nil {
		if x.pool != nil {
			// Queued files were vetted: finish them, so that, as with
			// one writer, exactly the members before the failure are in.
			_ = x.pool.flush()
		}
		return Result{}, err
	}
	n, sum := hr.result()
	return Result{ArchiveSize: n, SHA256: sum, Shape: tiercache.Shape{Size: x.bytes, Files: x.entries}, Root: x.rootMeta, SkippedSymlinks: x.skipped, FirstSkipped: x.firstSkipped}, nil
}

// openEmptyDir opens dir as a Root after checking it is an empty directory.
func openEmptyDir(dir string) (*os.Root, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: destination %s: %w: %w", dir, tiercache.ErrInvalidArgument, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("archive: destination %s is not a directory: %w", dir, tiercache.ErrInvalidArgument)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: destination %s: %w", dir, err)
	}
	d, err := root.Open(".")
	if err == nil {
		var names []string
		names, err = d.Readdirnames(1)
		d.Close()
		if err == nil && len(names) > 0 {
			root.Close()
			return nil, fmt.Errorf("archive: destination %s is not empty: %w", dir, tiercache.ErrInvalidArgument)
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("archive: destination %s: %w", dir, err)
	}
	return root, nil
}

// kind is what an extracted name is.
type kind uint8

const (
	kindImplicitDir kind = iota // created as a parent, no member of its own (yet)
	kindDir
	kindFile // regular file, possibly hardlinked
	kindSymlink
)

func (k kind) String() string {
	switch k {
	case kindImplicitDir, kindDir:
		return "directory"
	case kindFile:
		return "regular file"
	default:
		return "symlink"
	}
}

// dirMeta is what is applied to a directory member once its contents
// are in. A directory created as a parent only has none: it gets
// implicitDirMode at once and keeps its mtime.
type dirMeta struct {
	mode  fs.FileMode
	mtime time.Time
}

// extractor holds the state of one Extract or Inspect. It is not safe
// for concurrent use.
type extractor struct {
	ctx  context.Context
	opts ExtractOptions
	root *os.Root // nil for Inspect: every check runs, nothing is written
	hr   *hashReader
	m    *meter
	tr   *tar.Reader

	// names records every name created so far. Only names whose parents
	// are all directories created by this extraction get in, so a parent
	// found here as a directory is a real one, never a symlink.
	names *nameTree
	// dirs holds the directory members' metadata by node of names:
	// their names are rebuilt at the end rather than kept.
	dirs     map[int]dirMeta
	umask    int               // the process's (fsutil.Umask), for creating files
	links    map[string]string // symlink name -> target, for StrictSymlinks
	rootSeen bool
	// lastDir is the parent directory most recently verified, and
	// lastNodes the nodes of its components, from the top.
	lastDir   string
	lastNodes []int
	paths     []bool // for ExtractOptions.Paths: which paths have members

	skipped      int64  // symlinks skipped (SkipSymlinks)
	firstSkipped string // the first of them
	// skippedAs maps the skipped symlinks' names, upper-cased, to the
	// names, where foldingNames: nothing on disk stops a later member
	// from taking such a name in another case.
	skippedAs map[string]string

	// pending holds the symlinks whose creation waits for the end of the
	// stream (deferSymlinks); pendingAs maps their names, upper-cased,
	// to the names, where foldingNames, as skippedAs does.
	pending   []pendingLink
	pendingAs map[string]string

	// rootMeta is the "./" member's metadata, if the archive has one.
	rootMeta *RootMeta

	// dirRoots caches Roots opened on directories this extraction
	// created, most recently used last: os.Root resolves a name one
	// component at a time (an openat and a close each), so creating a
	// file relative to its parent's Root costs one system call instead of
	// two per directory level. Members of a directory come together in a
	// tar stream, so a few handles suffice.
	dirRoots []*dirHandle
	top      *dirHandle  // the destination itself; never closed by release
	pool     *writerPool // nil when Writers is 1

	entries      int64
	nameBytes    int64 // the members' names and link targets (maxNameBytes)
	implicitDirs int64 // directories created as parents only (maxNameBytes)
	bytes        int64
	contentBytes int64 // decompressed bytes the members' data may occupy
	nextHeader   int64 // stream offset where the next header must start
	last         string
	buf          []byte
}

func (x *extractor) run() error {
	for {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("archive: extract: %w", err)
		}
		hdr, err := x.tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return x.streamErr(err)
		}
		x.last = hdr.Name
		x.entries++
		if x.entries > x.opts.MaxEntries {
			return limitEntry(hdr.Name, "more than %d members", x.opts.MaxEntries)
		}
		if x.nameBytes += int64(len(hdr.Name) + len(hdr.Linkname)); x.nameBytes > maxNameBytes {
			return limitEntry(hdr.Name, "the members' names and link targets total more than %d bytes, which extraction keeps in memory", maxNameBytes)
		}
		var dataSize int64 // what the tar reader will treat as this member's data
		switch hdr.Typeflag {
		case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		default:
			dataSize = hdr.Size
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > x.opts.MaxBytes-x.bytes {
			return limitEntry(hdr.Name, "declared size %d exceeds the remaining %d of the %d-byte limit", hdr.Size, x.opts.MaxBytes-x.bytes, x.opts.MaxBytes)
		}
		padded := (dataSize + 511) &^ 511
		x.nextHeader = x.m.n + padded
		if hdr.Typeflag == tar.TypeReg {
			x.contentBytes += padded
		}
		x.m.limit = x.contentBytes + x.entries*metaPerEntry + metaSlack
		if err := x.member(hdr); err != nil {
			return err
		}
		if x.pool != nil {
			if err := x.pool.err(); err != nil {
				return err
			}
		}
	}
	if err := x.finishStream(); err != nil {
		return err
	}
	for i := range x.opts.Paths {
		if x.paths == nil || !x.paths[i] {
			return fmt.Errorf("archive: the archive holds nothing for path %d of the entry's %d: %w", i, x.opts.Paths, tiercache.ErrIntegrity)
		}
	}
	if x.pool != nil {
		// Every file in place before directories turn read-only.
		if err := x.pool.flush(); err != nil {
			return err
		}
	}
	if x.opts.StrictSymlinks {
		names := make([]string, 0, len(x.links))
		for name := range x.links {
			names = append(names, name)
		}
		slices.Sort(names)
		var aliases *linkAliases
		if foldingNames {
			aliases = newLinkAliases(x.links)
		}
		for _, name := range names {
			if !resolvesOutside(name, x.links, aliases) {
				continue
			}
			if aliases != nil && !resolvesOutside(name, x.links, nil) {
				return unsafeEntry(name, "symlink target %q may resolve outside the destination, whose file system may take a name in another case or Unicode form for a symlink's (StrictSymlinks)", x.links[name])
			}
			return unsafeEntry(name, "symlink target %q resolves outside the destination (StrictSymlinks)", x.links[name])
		}
	}
	// Symlinks before directory metadata, which may make their parents
	// read-only.
	if err := x.createPending(); err != nil {
		return err
	}
	return x.applyDirMeta()
}

// finishStream runs after the tar reader reported the end: it checks that
// the end-of-archive marker was really there, then reads the rest of the
// input so the digest covers all of it.
func (x *extractor) finishStream() error {
	// The tar reader takes a clean EOF at a header boundary, or after a
	// single zero block, for the end; only two zero blocks are the marker.
	if x.m.n < x.nextHeader+1024 {
		return fmt.Errorf("archive: tar stream ends without its end-of-archive marker after member %q (truncated): %w", displayName(x.last), tiercache.ErrIntegrity)
	}
	for {
		n, err := x.m.Read(x.buf)
		for _, b := range x.buf[:n] {
			if b != 0 {
				return fmt.Errorf("archive: non-zero data after the tar end-of-archive marker: %w", tiercache.ErrIntegrity)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.streamErr(err)
		}
	}
	// The decoder stops at the end of the input; this reads whatever it
	// did not need (normally nothing).
	if _, err := io.Copy(io.Discard, x.hr); err != nil {
		return fmt.Errorf("archive: read: %w", err)
	}
	return nil
}

// streamErr classifies an error from reading the archive stream.
func (x *extractor) streamErr(err error) error {
	if errorsIsAny(err, tiercache.ErrLimitExceeded, tiercache.ErrIntegrity, context.Canceled, context.DeadlineExceeded) {
		return err
	}
	if rerr := x.hr.readErr(); rerr != nil {
		// The input itself failed (a network reset, say): not the
		// archive's fault, and possibly worth a retry.
		return fmt.Errorf("archive: read: %w", rerr)
	}
	where := "at the start"
	if x.last != "" {
		where = fmt.Sprintf("after member %q", displayName(x.last))
	}
	if errorsIsAny(err, zstd.ErrWindowSizeExceeded, zstd.ErrDecoderSizeExceeded) {
		return fmt.Errorf("archive: zstd window exceeds the %d-byte decoder limit: %w: %w", x.opts.MaxDecoderMemory, tiercache.ErrLimitExceeded, err)
	}
	if errors.Is(err, tar.ErrFieldTooLong) {
		return fmt.Errorf("archive: oversized tar metadata %s: %w: %w", where, tiercache.ErrLimitExceeded, err)
	}
	return fmt.Errorf("archive: corrupt or truncated archive %s: %w: %w", where, tiercache.ErrIntegrity, err)
}

// isSparse reports GNU sparse members, old-style or PAX.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// maxDirRoots bounds the directory handles kept open by the cache.
const maxDirRoots = 16

// parentRoot returns a handle on the parent directory of name (without a
// new reference) and name's last component. Only call it once
// parents(name) has succeeded: the parent is then a directory this
// extraction created, never a symlink.
func (x *extractor) parentRoot(name string) (*dirHandle, string, error) {
	dir, base := path.Split(name)
	if dir == "" {
		return x.top, base, nil
	}
	h, err := x.dirRoot(strings.TrimSuffix(dir, "/"))
	return h, base, err
}

// openSubRoot opens the directory base in parent as a Root; tests count
// its calls.
var openSubRoot = func(parent *os.Root, base string) (*os.Root, error) { return parent.OpenRoot(base) }

func (x *extractor) dirRoot(dir string) (*dirHandle, error) {
	for i := len(x.dirRoots) - 1; i >= 0; i-- {
		if h := x.dirRoots[i]; h.name == dir {
			if i != len(x.dirRoots)-1 {
				x.dirRoots = append(append(x.dirRoots[:i:i], x.dirRoots[i+1:]...), h)
			}
			return h, nil
		}
	}
	// Opened through the parent's handle: one component to resolve.
	parent, base, err := x.parentRoot(dir)
	if err != nil {
		return nil, err
	}
	r, err := openSubRoot(parent.root, base)
	if err != nil {
		return nil, err
	}
	if len(x.dirRoots) == maxDirRoots {
		x.dirRoots[0].release() // closed now, or by the last job using it
		x.dirRoots = append(x.dirRoots[:0], x.dirRoots[1:]...)
	}
	h := newDirHandle(dir, filepath.Join(parent.path, base), r)
	x.dirRoots = append(x.dirRoots, h)
	return h, nil
}

func (x *extractor) closeDirs() {
	for _, h := range x.dirRoots {
		h.release()
	}
	x.dirRoots = nil
	if x.top != nil {
		// Extract's own reference never drops, and Extract closes
		// only root: the descriptor files were created through goes
		// here, once the writers have stopped.
		x.top.dirDesc.close()
	}
}

// member extracts one archive member.
func (x *extractor) member(hdr *tar.Header) error {
	if isSparse(hdr) {
		return unsafeEntry(hdr.Name, "sparse file")
	}
	if x.opts.Paths > 0 {
		if err := x.underPath(hdr); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return x.file(hdr)
	case tar.TypeDir:
		return x.dir(hdr)
	case tar.TypeSymlink:
		return x.symlink(hdr)
	case tar.TypeLink:
		return x.hardlink(hdr)
	case tar.TypeChar, tar.TypeBlock:
		return unsafeEntry(hdr.Name, "device node")
	case tar.TypeFifo:
		return unsafeEntry(hdr.Name, "FIFO")
	case tar.TypeXGlobalHeader:
		return unsafeEntry(hdr.Name, "PAX global header (its records would silently apply to later members)")
	default:
		return unsafeEntry(hdr.Name, "unsupported member type %q", hdr.Typeflag)
	}
}

// underPath checks, for ExtractOptions.Paths, that hdr names one of the
// paths (a directory or a regular file) or a member below one.
func (x *extractor) underPath(hdr *tar.Header) error {
	name, err := x.checkName(hdr.Name, hdr.Typeflag == tar.TypeDir)
	if err != nil || name == "." {
		return err // checked again, and reported, by the member's own code
	}
	top, below, _ := strings.Cut(name, "/")
	i, err := strconv.Atoi(top)
	if err != nil || i < 0 || i >= x.opts.Paths || strconv.Itoa(i) != top {
		return unsafeEntry(hdr.Name, "not below one of the entry's %d paths (members 0 to %d)", x.opts.Paths, x.opts.Paths-1)
	}
	if below == "" && hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeReg {
		return unsafeEntry(hdr.Name, "path %d must be a directory or a regular file", i)
	}
	if x.paths == nil {
		x.paths = make([]bool, x.opts.Paths)
	}
	x.paths[i] = true
	return nil
}

// perm keeps the permission bits of a tar mode: setuid, setgid and sticky
// are dropped.
func perm(mode int64) fs.FileMode { return fs.FileMode(mode) & fs.ModePerm }

// parents makes sure every ancestor of name is a directory created by this
// extraction, creating missing ones, and returns the node of name's
// parent. A symlink or file in the way is refused: that is what stops
// writes through symlinks, chains included.
func (x *extractor) parents(raw, name string) (int, error) {
	dir := path.Dir(name)
	switch {
	case dir == ".":
		return 0, nil
	case dir == x.lastDir:
		return x.lastNodes[len(x.lastNodes)-1], nil
	}
	// Start below the components dir shares with the directory verified
	// last: members of a directory come together, and neighbours in a
	// deep tree share most of their path.
	last, shared, i := x.lastDir, 0, 0
	j := 0
	for j < len(dir) && j < len(last) && dir[j] == last[j] {
		if dir[j] == '/' {
			shared, i = shared+1, j+1
		}
		j++
	}
	if (j == len(dir) || dir[j] == '/') && (j == len(last) || last[j] == '/') {
		shared, i = shared+1, j+1
	}
	x.lastDir, x.lastNodes = "", x.lastNodes[:shared]
	cur := 0
	if shared > 0 {
		cur = x.lastNodes[shared-1]
	}
	for i < len(dir) {
		end := len(dir)
		if j := strings.IndexByte(dir[i:], '/'); j >= 0 {
			end = i + j
		}
		p, c := dir[:end], dir[i:end]
		id, ok := x.names.child(cur, c)
		switch {
		case !ok:
			if s, ok := x.skippedAlias(p); ok {
				return 0, unsafeEntry(raw, "parent %q is the skipped symlink %q in another case; nothing is created below a skipped symlink", p, s)
			}
			if s, ok := x.pendingAlias(p); ok {
				return 0, unsafeEntry(raw, "parent %q is the symlink %q in another case; extraction never writes through one", p, s)
			}
			if x.implicitDirs++; x.implicitDirs > maxNameBytes/implicitDirBytes {
				return 0, limitEntry(raw, "more than %d directories that no member describes, which extraction keeps in memory", maxNameBytes/implicitDirBytes)
			}
			if err := x.mkdir(p, implicitDirMode); err != nil {
				return 0, x.createErr(raw, p, err)
			}
			id = x.names.add(cur, c, kindImplicitDir)
		case x.names.kinds[id] == kindSymlink:
			return 0, unsafeEntry(raw, "parent %q is a symlink; extraction never writes through one", p)
		case x.names.kinds[id] == kindFile:
			return 0, unsafeEntry(raw, "parent %q is a regular file", p)
		}
		x.lastNodes = append(x.lastNodes, id)
		cur = id
		i = end + 1
	}
	x.lastDir = dir
	return cur, nil
}

// createErr turns an error creating name into the right kind: an existing
// file there (which only a name colliding on disk, say on a
// case-insensitive file system, can cause) is unsafe; a name or symlink
// target the system takes as too long, which only the archive can cause
// (every name is created component by component), exceeds a limit (the
// system's, which may be below MaxNameLength: Linux takes symlink
// targets of 4095 bytes at most, macOS of 1023); anything else is a
// plain file-system error.
func (x *extractor) createErr(raw, name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return systemEntry(raw, "%q collides with an existing file, presumably an earlier member's name in another case or Unicode form, which this file system takes for the same", name)
	case errors.Is(err, syscall.ENAMETOOLONG):
		return limitEntry(raw, "this system refuses its name or symlink target as too long")
	}
	return extractErr(raw, err)
}

// claim checks that name, in the directory whose node is parent, is not
// taken yet.
func (x *extractor) claim(raw, name string, parent int) error {
	if id, ok := x.names.child(parent, path.Base(name)); ok {
		return unsafeEntry(raw, "duplicate name: %q was already extracted as a %s", name, x.names.kinds[id])
	}
	if s, ok := x.skippedAlias(name); ok {
		return unsafeEntry(raw, "duplicate name: %q is the skipped symlink %q in another case", name, s)
	}
	if s, ok := x.pendingAlias(name); ok {
		return unsafeEntry(raw, "duplicate name: %q is the symlink %q in another case", name, s)
	}
	return nil
}

// pendingAlias returns the symlink not created yet (deferSymlinks) that
// name, not itself one, may stand for on a destination that folds case:
// nothing on disk stops a later member from taking its name in another
// case, and creating the symlink would then fail after that member had
// written below it. As for skippedAlias, Unicode forms are not compared:
// NTFS folds case only.
func (x *extractor) pendingAlias(name string) (string, bool) {
	if len(x.pendingAs) == 0 {
		return "", false
	}
	s, ok := x.pendingAs[strings.ToUpper(name)]
	return s, ok
}

// skippedAlias returns the skipped symlink that name, not itself one,
// may stand for on a destination that folds case. Unicode forms are not
// compared: where symlinks are skipped (NTFS without the privilege, FAT,
// exFAT) file systems fold case only.
func (x *extractor) skippedAlias(name string) (string, bool) {
	if len(x.skippedAs) == 0 {
		return "", false
	}
	s, ok := x.skippedAs[strings.ToUpper(name)]
	return s, ok
}

func (x *extractor) file(hdr *tar.Header) error {
	name, err := x.checkName(hdr.Name, false)
	if err != nil {
		return err
	}
	pn, err := x.parents(hdr.Name, name)
	if err != nil {
		return err
	}
	if err := x.claim(hdr.Name, name, pn); err != nil {
		return err
	}
	if x.root == nil {
		x.names.add(pn, path.Base(name), kindFile)
		return x.copy(io.Discard, hdr)
	}
	parent, base, err := x.parentRoot(name)
	if err != nil {
		return extractErr(hdr.Name, err)
	}
	if x.pool != nil && hdr.Size <= pooledFileMax {
		buf, err := x.readSmall(hdr)
		if err != nil {
			return err
		}
		parent.acquire() // released by the writer
		x.pool.submit(&fileJob{dir: parent, base: base, raw: hdr.Name, name: name, buf: buf, mode: perm(hdr.Mode), mtime: hdr.ModTime})
		x.names.add(pn, base, kindFile)
		return nil
	}
	if x.pool != nil {
		// A large file: a writer creates it and writes its chunks while
		// the reader reads them, then goes on to the next member.
		j := &fileJob{dir: parent, base: base, raw: hdr.Name, name: name, mode: perm(hdr.Mode), mtime: hdr.ModTime, chunks: make(chan *[]byte, chunkQueue)}
		parent.acquire() // released by the writer
		x.pool.submit(j)
		x.names.add(pn, base, kindFile)
		err := x.sendChunks(j.chunks, hdr)
		if err != nil {
			j.aborted.Store(true) // before the close, which the writer waits for
		}
		close(j.chunks)
		return err
	}
	cerr, err := createMember(parent, base, hdr.Name, perm(hdr.Mode), x.umask, hdr.ModTime, func(w io.Writer) error {
		return x.copy(w, hdr)
	})
	if cerr != nil {
		return x.createErr(hdr.Name, name, cerr)
	}
	x.names.add(pn, base, kindFile)
	return err
}

// readSmall reads the current member's data (at most pooledFileMax
// bytes, as declared) whole into a pooled buffer, with the same limit
// accounting as copy. The caller owns the buffer (see putBuf).
func (x *extractor) readSmall(hdr *tar.Header) (*[]byte, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, extractErr(hdr.Name, err)
	}
	buf := getBuf(int(hdr.Size))
	n, err := io.ReadFull(x.tr, *buf)
	x.bytes += int64(n)
	if x.bytes > x.opts.MaxBytes {
		putBuf(buf)
		return nil, limitEntry(hdr.Name, "regular files exceed %d bytes", x.opts.MaxBytes)
	}
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// As in copy: a member cut short is reported by the next read
		// of the stream, which fails.
		*buf = (*buf)[:n]
	case err != nil:
		putBuf(buf)
		return nil, x.streamErr(err)
	}
	return buf, nil
}

// sendChunks reads the current member's data into chunks for a writer,
// with the same checks and accounting as copy, each chunk taking one of
// the pool's tokens (which the writer gives back) so that memory stays
// bounded.
func (x *extractor) sendChunks(chunks chan<- *[]byte, hdr *tar.Header) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return extractErr(hdr.Name, err)
		}
		select {
		case x.pool.tokens <- struct{}{}:
		case <-x.ctx.Done():
			return extractErr(hdr.Name, x.ctx.Err())
		}
		buf := getBuf(pooledFileMax)
		n, rerr := io.ReadFull(x.tr, *buf)
		x.bytes += int64(n)
		if n == 0 || x.bytes > x.opts.MaxBytes {
			x.pool.done(buf)
		} else {
			*buf = (*buf)[:n]
			chunks <- buf
		}
		switch {
		case x.bytes > x.opts.MaxBytes:
			return limitEntry(hdr.Name, "regular files exceed %d bytes", x.opts.MaxBytes)
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return nil // as in copy: a member cut short fails the next read
		case rerr != nil:
			return x.streamErr(rerr)
		}
	}
}

// implicitDirMode is the mode of a directory that no member describes,
// created as a parent of one.
const implicitDirMode fs.FileMode = 0o755

// mkdir creates the directory name (whose parents exist) with mode: 0700,
// owner-only writable, for a member's directory, whose real mode comes
// at the end; implicitDirMode, final, for a parent no member describes.
// Such a parent is done with at once: setting its mode at the end would
// reach it through its parents again, and an archive of a few deep
// branches has thousands of them for each member.
func (x *extractor) mkdir(name string, mode fs.FileMode) error {
	if x.root == nil {
		return nil
	}
	parent, base, err := x.parentRoot(name)
	if err != nil {
		return err
	}
	if err := parent.root.Mkdir(base, mode); err != nil {
		return err
	}
	if mode != 0o700 && (x.umask < 0 || fs.FileMode(x.umask)&mode != 0) {
		return parent.root.Chmod(base, mode) // the umask took bits
	}
	return nil
}

// copy streams the current member's data into f, checking ctx and the byte
// limit as it goes.
func (x *extractor) copy(f io.Writer, hdr *tar.Header) error {
	for {
		if err := x.ctx.Err(); err != nil {
			return extractErr(hdr.Name, err)
		}
		n, rerr := io.ReadFull(x.tr, x.buf)
		x.bytes += int64(n)
		if x.bytes > x.opts.MaxBytes {
			return limitEntry(hdr.Name, "regular files exceed %d bytes", x.opts.MaxBytes)
		}
		if n > 0 {
			if _, err := f.Write(x.buf[:n]); err != nil {
				return extractErr(hdr.Name, err)
			}
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return nil // io.ReadFull's way of saying the member's data ended
		case rerr != nil:
			return x.streamErr(rerr)
		}
	}
}

func (x *extractor) dir(hdr *tar.Header) error {
	name, err := x.checkName(hdr.Name, true)
	if err != nil {
		return err
	}
	if name == "." {
		// The destination itself (GNU tar's "./"): its metadata belongs
		// to the caller, so only duplicates matter.
		if x.rootSeen {
			return unsafeEntry(hdr.Name, "duplicate name: the destination directory appears twice")
		}
		x.rootSeen = true
		x.rootMeta = &RootMeta{Mode: perm(hdr.Mode), ModTime: hdr.ModTime}
		return nil
	}
	pn, err := x.parents(hdr.Name, name)
	if err != nil {
		return err
	}
	meta := dirMeta{mode: perm(hdr.Mode), mtime: hdr.ModTime}
	if id, ok := x.names.child(pn, path.Base(name)); ok && x.names.kinds[id] == kindImplicitDir {
		// Created earlier as a parent of another member (archives need not
		// list a directory before its contents): it gets its metadata now.
		x.names.kinds[id] = kindDir
		x.dirs[id] = meta
		return nil
	}
	if err := x.claim(hdr.Name, name, pn); err != nil {
		return err
	}
	if err := x.mkdir(name, 0o700); err != nil {
		return x.createErr(hdr.Name, name, err)
	}
	x.dirs[x.names.add(pn, path.Base(name), kindDir)] = meta
	return nil
}

// symlinkAt creates a symlink, of the directory kind if dir where the
// system records a kind (Windows, whose own replaces this one; elsewhere
// dir is ignored); tests replace it to play a system that refuses
// symlinks.
var symlinkAt = func(root *os.Root, target, name string, _ bool) error { return root.Symlink(target, name) }

// deferSymlinks says whether symlinks are created only once every other
// member is in, so that each gets the kind its target has then: Windows
// fixes a symlink's kind, file or directory, at creation, and a file
// symlink to a directory cannot be traversed. Tests set it.
var deferSymlinks = runtime.GOOS == "windows"

// pendingLink is a symlink member whose creation waits (deferSymlinks).
type pendingLink struct {
	raw, name string
	target    string // as stored
	slashed   string // as the system reads it, slash-separated
	mtime     time.Time
}

func (x *extractor) symlink(hdr *tar.Header) error {
	name, err := x.checkName(hdr.Name, false)
	if err != nil {
		return err
	}
	target := hdr.Linkname
	// What the target means here: on Windows a backslash separates too,
	// so the checks below see it as a slash.
	slashed := target
	if runtime.GOOS == "windows" {
		slashed = strings.ReplaceAll(target, `\`, "/")
	}
	switch {
	case target == "":
		return unsafeEntry(hdr.Name, "symlink with an empty target")
	case len(target) > MaxNameLength:
		return limitEntry(hdr.Name, "symlink target longer than %d bytes", MaxNameLength)
	case strings.IndexByte(target, 0) >= 0:
		return unsafeEntry(hdr.Name, "NUL byte in symlink target")
	case x.opts.StrictSymlinks && escapesLexically(name, slashed):
		return unsafeEntry(hdr.Name, "symlink target %q points outside the destination (StrictSymlinks)", target)
	}
	pn, err := x.parents(hdr.Name, name)
	if err != nil {
		return err
	}
	if err := x.claim(hdr.Name, name, pn); err != nil {
		return err
	}
	x.names.add(pn, path.Base(name), kindSymlink)
	if x.opts.StrictSymlinks {
		x.links[name] = slashed
	}
	if x.root == nil {
		return nil
	}
	if deferSymlinks {
		// Its name is taken (seen, and pendingAs in any case), so no
		// later member can be created at or below it meanwhile.
		x.pending = append(x.pending, pendingLink{raw: hdr.Name, name: name, target: target, slashed: slashed, mtime: hdr.ModTime})
		if foldingNames {
			if x.pendingAs == nil {
				x.pendingAs = map[string]string{}
			}
			x.pendingAs[strings.ToUpper(name)] = name
		}
		return nil
	}
	return x.createSymlink(hdr.Name, name, target, hdr.ModTime, false)
}

// createPending creates the symlinks deferSymlinks held back, in stream
// order, each of the kind linkIsDir decides from the finished tree.
func (x *extractor) createPending() error {
	if len(x.pending) == 0 {
		return nil
	}
	targets := make(map[string]string, len(x.pending))
	for _, l := range x.pending {
		targets[l.name] = l.slashed
	}
	var folded *foldedNames // built on the first miss
	lookup := func(p string) (kind, string, bool) {
		id, ok := x.names.lookup(p)
		if !ok && foldingNames {
			// The destination takes a target spelled in another case
			// for the name it has.
			if folded == nil {
				folded = x.names.folded()
			}
			if id, ok = folded.lookup(p); ok {
				p = x.names.path(id)
			}
		}
		if !ok {
			return kindImplicitDir, targets[p], false
		}
		return x.names.kinds[id], targets[p], true
	}
	for _, l := range x.pending {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("archive: extract: %w", err)
		}
		if err := x.createSymlink(l.raw, l.name, l.target, l.mtime, linkIsDir(l.name, l.slashed, lookup)); err != nil {
			return err
		}
	}
	x.pending = nil
	return nil
}

// createSymlink creates the symlink name (its parents made by
// x.parents) with target, a directory symlink if dir, and sets its
// mtime; with SkipSymlinks, a system that refuses symlinks skips it.
func (x *extractor) createSymlink(raw, name, target string, mtime time.Time, dir bool) error {
	parent, base, err := x.parentRoot(name)
	if err != nil {
		return extractErr(raw, err)
	}
	// The target is stored as is and never followed by this extraction:
	// nothing is ever created below a name recorded as a symlink.
	// FromSlash: Windows resolves a symlink's target only with its own
	// separator; elsewhere it changes nothing.
	if err := symlinkAt(parent.root, filepath.FromSlash(target), base, dir); err != nil {
		hint := fsutil.SymlinkHint(err)
		if hint != "" && x.opts.SkipSymlinks {
			if foldingNames {
				// Nothing is created here for a later member's other
				// spelling of name to collide with: claim and parents
				// look the name up.
				if x.skippedAs == nil {
					x.skippedAs = map[string]string{}
				}
				x.skippedAs[strings.ToUpper(name)] = name
			}
			x.skipped++
			if x.firstSkipped == "" {
				x.firstSkipped = name
			}
			return nil
		}
		if hint != "" {
			return fmt.Errorf("archive: extract %q: cannot create the symlink: %s: %w", displayName(raw), hint, escapedError{err})
		}
		return x.createErr(raw, name, err)
	}
	if err := lchtimes(parent.root, base, mtime); err != nil {
		return extractErr(raw, err)
	}
	return nil
}

// linkIsDir says whether the symlink name (destination-relative,
// cleaned) with target (slash-separated) should be a directory symlink:
// whether the target, resolved within the destination as the system
// would (each ".." from where the path has led so far, through the
// archive's other symlinks), is a directory, the destination included.
// A target that resolves to nothing (absolute, with a volume, leaving
// the destination, missing, through a file, or looping) makes a file
// symlink, as os.Symlink would, unless it ends in a separator, which
// only a directory can take. lookup says what an extracted name is and,
// for a symlink, its slash-separated target.
func linkIsDir(name, target string, lookup func(string) (kind, string, bool)) bool {
	if isDir, ok := resolveKind(name, target, lookup); ok {
		return isDir
	}
	return strings.HasSuffix(target, "/")
}

// resolveKind resolves target from the symlink name for linkIsDir: ok
// false when it leads to nothing in the destination.
func resolveKind(name, target string, lookup func(string) (kind, string, bool)) (isDir, ok bool) {
	end, halted, escaped := walkTarget(name, target, func(p string, rest []string) (string, bool, bool) {
		k, t, found := lookup(p)
		// Missing, or a path through a file, leads nowhere.
		return t, k == kindSymlink, !found || k == kindFile && len(rest) > 0
	})
	switch {
	case halted || escaped:
		return false, false
	case end == "":
		return true, true // the destination itself
	}
	k, _, _ := lookup(end)
	return k == kindDir || k == kindImplicitDir, true
}

func (x *extractor) hardlink(hdr *tar.Header) error {
	name, err := x.checkName(hdr.Name, false)
	if err != nil {
		return err
	}
	target, reason, _, _ := memberName(hdr.Linkname, false, x.root != nil)
	if reason != "" {
		return unsafeEntry(hdr.Name, "hardlink target %q: %s", displayName(hdr.Linkname), reason)
	}
	// Only a regular file this extraction wrote may be linked to: never a
	// file outside the tree, a directory or a symlink.
	id, ok := x.names.lookup(target)
	if !ok {
		return unsafeEntry(hdr.Name, "hardlink target %q is not a file extracted earlier", target)
	}
	if k := x.names.kinds[id]; k != kindFile {
		return unsafeEntry(hdr.Name, "hardlink target %q is a %s, not a regular file", target, k)
	}
	pn, err := x.parents(hdr.Name, name)
	if err != nil {
		return err
	}
	if err := x.claim(hdr.Name, name, pn); err != nil {
		return err
	}
	x.names.add(pn, path.Base(name), kindFile)
	if x.root == nil {
		return nil
	}
	if x.pool != nil {
		// The target may still be queued for a writer.
		if err := x.pool.flush(); err != nil {
			return err
		}
	}
	if err := linkAt(x.root, target, name); err != nil {
		if tooManyLinks(err) {
			// The source's file system held them (XFS, btrfs, tmpfs
			// hold more): a limit of this one, as a name too long is.
			return limitEntry(hdr.Name, "this file system holds no more hardlinks to %q", target)
		}
		return x.createErr(hdr.Name, name, err)
	}
	return nil
}

// linkAt creates the hardlink name to target; tests replace it to play
// a file system that holds no more links to a file.
var linkAt = func(root *os.Root, target, name string) error { return root.Link(target, name) }

// tooManyLinks reports whether err is link(2) refusing another link to a
// file: EMLINK (ext4 holds 65,000), or on Windows ERROR_TOO_MANY_LINKS
// (NTFS holds 1,024).
func tooManyLinks(err error) bool {
	return errors.Is(err, syscall.EMLINK) || runtime.GOOS == "windows" && errors.Is(err, syscall.Errno(1142))
}

// applyDirMeta sets directory modes and mtimes once everything is in,
// deepest first, so a read-only directory is never written into and no
// later step disturbs an mtime.
func (x *extractor) applyDirMeta() error {
	if x.root == nil {
		return nil
	}
	type dirNode struct{ id, depth int }
	order := make([]dirNode, 0, len(x.dirs))
	for id := range x.dirs {
		order = append(order, dirNode{id, x.names.depth(id)})
	}
	// Siblings together (by parent), so that their parent's handle is
	// cached; names are rebuilt one at a time.
	slices.SortFunc(order, func(a, b dirNode) int {
		if a.depth != b.depth {
			return b.depth - a.depth
		}
		if pa, pb := x.names.parents[a.id], x.names.parents[b.id]; pa != pb {
			return pa - pb
		}
		return a.id - b.id
	})
	for _, d := range order {
		if err := x.ctx.Err(); err != nil {
			return fmt.Errorf("archive: extract: %w", err)
		}
		meta := x.dirs[d.id]
		name := x.names.path(d.id)
		parent, base, err := x.parentRoot(name)
		if err != nil {
			return extractErr(name, err)
		}
		if err := parent.root.Chmod(base, meta.mode); err != nil {
			return extractErr(name, err)
		}
		if err := parent.root.Chtimes(base, time.Time{}, nanoRange(meta.mtime)); err != nil {
			return extractErr(name, err)
		}
	}
	return nil
}

// hashReader counts and hashes what is read through it, and remembers the
// first error of the underlying reader. The zstd decoder reads it from its
// own goroutine, hence the lock.
type hashReader struct {
	mu  sync.Mutex
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.h.Write(p[:n])
	hr.n += int64(n)
	if err != nil && err != io.EOF && hr.err == nil {
		hr.err = err
	}
	return n, err
}

func (hr *hashReader) readErr() error {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return hr.err
}

func (hr *hashReader) result() (int64, string) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return hr.n, hex.EncodeToString(hr.h.Sum(nil))
}

// meter caps the decompressed bytes read, against bombs hidden in
// metadata; n doubles as the tar stream offset.
type meter struct {
	r     io.Reader
	n     int64
	limit int64
}

func (m *meter) Read(p []byte) (int, error) {
	if m.n >= m.limit {
		return 0, fmt.Errorf("archive: decompressed stream exceeds its %d-byte allowance for file data and metadata: %w", m.limit, tiercache.ErrLimitExceeded)
	}
	if rest := m.limit - m.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	return n, err
}
