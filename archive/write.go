package archive

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// DefaultLevel is the zstd level Write uses when WriteOptions.Level is 0.
const DefaultLevel = 3

// MaxLevel is the highest zstd level WriteOptions.Level accepts.
const MaxLevel = 22

// copyChunk is how many bytes are copied between two context checks, and
// the size of the copy buffer: large enough for throughput, small enough
// that cancellation is prompt and memory stays flat.
const copyChunk = 1 << 20

// WriteOptions tunes Write. The zero value is ready to use.
type WriteOptions struct {
	// Level is the compression level in zstd CLI terms, 1..22, mapped to
	// the closest level the encoder implements (1-2 fastest, 3-5 default,
	// 6-9 better, 10 and above best). 0 means DefaultLevel.
	Level int
	// Concurrency is how many zstd frames may be compressed at once (at
	// most 8); 0 means GOMAXPROCS. The bytes written depend on the level
	// and the tree only, never on Concurrency, so machines with
	// different core counts produce the same archive of the same tree.
	Concurrency int
	// SkipDigest leaves Result.SHA256 empty, saving a pass over the
	// compressed bytes, for a caller whose consumer hashes them anyway
	// (an upload that records the digest).
	SkipDigest bool
	// OnFrame, if set, is called for every data frame, in order, with
	// its index record, before the frame's bytes are written: a caller
	// learns which output ranges repeat an earlier archive's frames
	// before those bytes reach it.
	OnFrame func(IndexFrame)
	// Reuse, if set, offers an earlier archive's frames: a frame that
	// would hold the same tar bytes as one of them is copied from it
	// instead of compressed (see FrameSource). The archive then depends
	// on Reuse's compression too, not only on the level and the tree.
	Reuse *FrameSource
}

// ErrChanged is wrapped by Write's error when a file of the tree changed
// while it was being archived: the archive would hold none of its
// versions, only a mix or a prefix.
var ErrChanged = errors.New("changed while being archived")

// Result describes an archive written or extracted.
type Result struct {
	// ArchiveSize is the number of compressed bytes written or read.
	ArchiveSize int64
	// SHA256 is the lowercase hex SHA-256 of those compressed bytes.
	SHA256 string
	// Shape is the tree's: Files counts the archive members, Size the
	// bytes of their regular files.
	tiercache.Shape
	// SkippedSymlinks counts the symlinks Extract skipped
	// (ExtractOptions.SkipSymlinks), FirstSkipped names the first.
	SkippedSymlinks int64
	FirstSkipped    string
	// Sockets counts the sockets Write left out of the archive (see
	// WriteSource), FirstSocket names the first, as a member.
	Sockets     int64
	FirstSocket string
	// Index locates the index frame Write appended (see the package
	// documentation); zero from Extract and Inspect, and for an archive
	// too large to index.
	Index IndexInfo
	// Root is set by Extract when the archive has a member for the
	// destination itself ("./", which GNU tar writes and Write never
	// does). Extract leaves the destination's own metadata to the caller,
	// who may apply this.
	Root *RootMeta
}

// RootMeta is what an archive says about its root directory.
type RootMeta struct {
	// Mode holds the permission bits (setuid, setgid and sticky dropped).
	Mode fs.FileMode
	// ModTime is the recorded mtime.
	ModTime time.Time
}

// Write streams the tree rooted at dir to w as a zstd-compressed PAX tar
// archive (see the package documentation for the format) and returns its
// size and digest. The root directory itself is not a member.
//
// Memory stays bounded whatever the tree: files are streamed, never
// buffered whole. ctx is checked between members and during large copies;
// on cancellation Write returns an error wrapping ctx.Err() and w holds a
// partial, invalid archive.
//
// A regular file that changes while it is read (it grows, shrinks, or
// its mtime, or on Unix the ctime of a file with one name, moves between
// its listing and the end of its read) makes Write fail with an error
// wrapping ErrChanged.
//
// An invalid option or a dir that is not a directory returns an error
// wrapping tiercache.ErrInvalidArgument, as does a device node or FIFO in
// the tree (sockets are skipped).
func Write(ctx context.Context, w io.Writer, dir string, opts WriteOptions) (Result, error) {
	return WriteSource(ctx, w, Source{Dir: dir}, opts)
}

// Source is what WriteSource archives: one directory's tree, or several
// paths in one archive.
type Source struct {
	// Dir is a directory whose tree Write archives, the root not being a
	// member. Set Dir or Paths, not both.
	Dir string
	// Paths are files and directories archived each under its position:
	// path i is the member named i in decimal ("0", "1", ...), and a
	// directory's tree is below it ("0/a/b"), so one plain tar stream
	// holds them all. A path that is a symlink is followed, as the
	// destination of the files it names.
	Paths []string
	// Exclude leaves out the members it matches, matched relative to Dir
	// or to each directory of Paths.
	Exclude *Exclude
}

// String names the source in errors.
func (s Source) String() string {
	if s.Dir != "" || len(s.Paths) == 0 {
		return s.Dir
	}
	return strings.Join(s.Paths, ", ")
}

// Validate reports a setting of o that Write refuses, as an error
// wrapping tiercache.ErrInvalidArgument.
func (o WriteOptions) Validate() error {
	if o.Level != 0 && (o.Level < 1 || o.Level > MaxLevel) {
		return fmt.Errorf("archive: compression level %d not in 1..%d: %w", o.Level, MaxLevel, tiercache.ErrInvalidArgument)
	}
	if o.Concurrency < 0 {
		return fmt.Errorf("archive: negative concurrency %d: %w", o.Concurrency, tiercache.ErrInvalidArgument)
	}
	return nil
}

// WriteSource is Write for any Source. Paths that are neither regular
// files nor directories return an error wrapping
// tiercache.ErrInvalidArgument naming them. Sockets in the tree are left
// out, as tar leaves them out, and counted (Result.Sockets).
func WriteSource(ctx context.Context, w io.Writer, src Source, opts WriteOptions) (Result, error) {
	if err := opts.Validate(); err != nil {
		return Result{}, err
	}
	level := cmp.Or(opts.Level, DefaultLevel)
	conc := opts.Concurrency
	if conc == 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	if err := src.check(); err != nil {
		return Result{}, err
	}
	hw := &hashWriter{w: w}
	if !opts.SkipDigest {
		hw.h = sha256.New()
	}
	// Independent frames compressed in parallel, not one streaming
	// encoder: the streaming encoder overlaps one block's encoding with
	// the caller but compresses on one core, the bottleneck of a push;
	// its WithConcurrentBlocks mode made the bytes depend on the
	// concurrency and held 300+ MiB of job buffers.
	fw, err := newFrameWriter(hw, zstd.EncoderLevelFromZstd(level), conc)
	if fw != nil {
		fw.onFrame, fw.reuse = opts.OnFrame, opts.Reuse
	}
	if err != nil {
		return Result{}, fmt.Errorf("archive: zstd encoder: %w", err)
	}
	aw := newArchiveWriter(ctx, src.Exclude)
	aw.fw = fw
	aw.tw = tar.NewWriter(fw)
	err = aw.source(src)
	if err == nil {
		err = aw.tw.Close()
	}
	if err == nil {
		if err = fw.Close(); err != nil {
			err = fmt.Errorf("archive: writing the compressed stream: %w", err)
		}
	} else {
		fw.Abort()
	}
	var info IndexInfo
	if err == nil {
		info, err = writeIndex(hw, fw)
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{ArchiveSize: hw.n, Shape: tiercache.Shape{Size: aw.size, Files: aw.files}, Index: info,
		Sockets: aw.sockets, FirstSocket: aw.firstSocket}
	if hw.h != nil {
		res.SHA256 = hex.EncodeToString(hw.h.Sum(nil))
	}
	return res, nil
}

// writeIndex appends the index of the frames fw wrote to hw, unless it
// outgrew its bounds, and returns where it is.
func writeIndex(hw *hashWriter, fw *frameWriter) (IndexInfo, error) {
	if fw.noIndex {
		return IndexInfo{}, nil
	}
	b := appendIndexFrame(nil, Index{Frames: fw.frames, DataSize: fw.written, TarSize: fw.tarOff})
	info := IndexInfo{Offset: hw.n, Length: int64(len(b))}
	if _, err := hw.Write(b); err != nil {
		return IndexInfo{}, fmt.Errorf("archive: writing the index: %w", err)
	}
	sum := sha256.Sum256(b)
	info.SHA256 = hex.EncodeToString(sum[:])
	return info, nil
}

// Measure returns the Shape WriteSource would record for src, walking it
// as WriteSource does but reading no file's contents.
func Measure(ctx context.Context, src Source) (tiercache.Shape, error) {
	if err := src.check(); err != nil {
		return tiercache.Shape{}, err
	}
	aw := newArchiveWriter(ctx, src.Exclude)
	if err := aw.source(src); err != nil {
		return tiercache.Shape{}, err
	}
	return tiercache.Shape{Size: aw.size, Files: aw.files}, nil
}

func newArchiveWriter(ctx context.Context, ex *Exclude) *archiveWriter {
	return &archiveWriter{
		ctx:     ctx,
		exclude: ex,
		links:   map[fileID]string{},
		buf:     make([]byte, copyChunk),
		dirBuf:  make([]byte, dirBufSize),
	}
}

// check refuses a Source that is not one directory or a list of files
// and directories.
func (s Source) check() error {
	switch {
	case s.Dir != "" && len(s.Paths) > 0:
		return fmt.Errorf("archive: a source with both a directory and paths: %w", tiercache.ErrInvalidArgument)
	case s.Dir != "":
		info, err := os.Stat(s.Dir)
		if err != nil {
			return fmt.Errorf("archive: source %s: %w: %w", s.Dir, tiercache.ErrInvalidArgument, err)
		}
		if !info.IsDir() {
			return fmt.Errorf("archive: source %s is not a directory: %w", s.Dir, tiercache.ErrInvalidArgument)
		}
		return nil
	case len(s.Paths) == 0:
		return fmt.Errorf("archive: an empty source: %w", tiercache.ErrInvalidArgument)
	}
	for _, p := range s.Paths {
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("archive: source %s: %w: %w", p, tiercache.ErrInvalidArgument, err)
		}
		if !info.IsDir() && !info.Mode().IsRegular() {
			return fmt.Errorf("archive: source %s is a %s, not a file or a directory: %w", p, fsutil.TypeName(info.Mode()), tiercache.ErrInvalidArgument)
		}
	}
	return nil
}

// source writes the members of src.
func (aw *archiveWriter) source(src Source) error {
	if src.Dir != "" {
		top, err := openSourceDir(src.Dir)
		if err != nil {
			return fmt.Errorf("archive: source %s: %w", src.Dir, err)
		}
		defer top.close()
		aw.from = src.Dir
		return aw.walk(top, ".")
	}
	for i, p := range src.Paths {
		if err := aw.path(strconv.Itoa(i), p); err != nil {
			return err
		}
	}
	return nil
}

// path writes the file or directory p as the member as, through a handle
// on p's parent so that p itself is looked at as every member is.
func (aw *archiveWriter) path(as, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return fmt.Errorf("archive: source %s: %w", p, err)
	}
	parent, base := filepath.Dir(real), filepath.Base(real)
	d, err := openSourceDir(parent)
	if err != nil {
		return fmt.Errorf("archive: source %s: %w", p, err)
	}
	defer d.close()
	d.storeAs(base, as)
	aw.prefix, aw.from = as+"/", p
	defer func() { aw.prefix, aw.from = "", "" }()
	if err := aw.member(d, base, as, fsutil.TypeUnknown); err != nil {
		var odd *oddFileError
		var pe *fs.PathError
		if errors.As(err, &odd) || errors.As(err, &pe) && filepath.IsAbs(pe.Path) {
			return err // it names the file in full
		}
		return fmt.Errorf("%w (in %s)", err, p)
	}
	return nil
}

// archiveWriter holds the state of one Write.
//
// The walk goes through directory handles (srcDir, per platform): each
// directory is opened once, relative to its parent's handle, and its
// members are looked up by their single-component names relative to it.
// Resolving full relative paths through an os.Root instead costs an open
// and a close per path component for every member. Only the directories
// on the path being walked are open at any time, so descriptors are
// bounded by the tree's depth.
type archiveWriter struct {
	ctx     context.Context
	tw      *tar.Writer  // nil for Measure, which writes nothing
	fw      *frameWriter // told where members start; nil for Measure
	exclude *Exclude
	prefix  string // what members' names start with beyond their tree's ("0/" for Paths[0])
	// from is the path, as given, of the tree or path being archived:
	// where errors say a member is.
	from   string
	links  map[fileID]string // first name of each multiply-linked inode
	buf    []byte
	dirBuf []byte // scratch for reading directory entries, where the platform needs it
	files  int64
	size   int64
	// sockets counts the sockets left out, firstSocket names the first.
	sockets     int64
	firstSocket string

	// nameBytes totals the members' names and link targets, as Extract
	// counts them against maxNameBytes.
	nameBytes int64
}

// srcInfo is what the walk needs to know about one member, as lstat
// reports it (symlinks not followed).
type srcInfo struct {
	mode  fs.FileMode
	mtime time.Time
	ctime time.Time // zero where the platform reports none cheaply
	size  int64
	id    fileID
	nlink uint64 // 0 when the platform has no inode identity
}

// walk writes the members of d, the directory at rel ("." for the root),
// in sorted depth-first order.
func (aw *archiveWriter) walk(d srcDir, rel string) error {
	ents, err := d.names(rel, aw.dirBuf)
	if err != nil {
		return fmt.Errorf("archive: read directory %q: %w", rel, err)
	}
	slices.SortFunc(ents, func(a, b fsutil.Dirent) int { return strings.Compare(a.Name, b.Name) })
	for _, e := range ents {
		if err := aw.ctx.Err(); err != nil {
			return fmt.Errorf("archive: write: %w", err)
		}
		child := e.Name
		if rel != "." {
			child = rel + "/" + e.Name
		}
		if err := aw.member(d, e.Name, child, e.Type); err != nil {
			return err
		}
	}
	return nil
}

// member writes the entry name of d, whose path in the tree is rel (and,
// for a directory, everything below it). typ is its type as d's listing
// gave it, or fsutil.TypeUnknown.
//
// An excluded entry is never lstat'ed where its listing gives its type:
// on Windows lstat opens the file, which fails on one another process
// holds open without sharing (a database, a log), the very files users
// exclude.
func (aw *archiveWriter) member(d srcDir, name, rel string, typ fs.FileMode) error {
	var info srcInfo
	var err error
	statted := false
	// Patterns match below each tree's root, never the root itself.
	if aw.exclude != nil && rel+"/" != aw.prefix {
		out, ifDir := aw.exclude.match(strings.TrimPrefix(rel, aw.prefix))
		if !out && ifDir {
			if typ == fsutil.TypeUnknown {
				if info, err = aw.lstat(d, name, rel); err != nil {
					return err
				}
				statted, typ = true, info.mode.Type()
			}
			out = typ.IsDir()
		}
		if out {
			return nil
		}
	}
	if !statted {
		if info, err = aw.lstat(d, name, rel); err != nil {
			return err
		}
	}
	hdr := &tar.Header{
		Format:  tar.FormatPAX,
		Name:    rel,
		Mode:    int64(info.mode.Perm()),
		ModTime: info.mtime,
	}
	mode := info.mode
	switch {
	case mode.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		if err := aw.header(hdr); err != nil {
			return err
		}
		sub, err := d.openDir(name, rel)
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		err = aw.walk(sub, rel)
		sub.close()
		return err
	case mode&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = d.readlink(name, rel); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		return aw.header(hdr)
	case mode.IsRegular():
		// A path of Source.Paths is always a file of its own: Extract's
		// Paths check takes no hardlink there.
		if info.nlink > 1 && rel+"/" != aw.prefix {
			if first, seen := aw.links[info.id]; seen {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				return aw.header(hdr)
			}
			aw.links[info.id] = rel
		}
		hdr.Typeflag = tar.TypeReg
		hdr.Size = info.size
		return aw.file(d, name, rel, hdr, info)
	case mode&fs.ModeSocket != 0:
		// Like GNU tar: a socket cannot be archived meaningfully.
		if aw.sockets++; aw.sockets == 1 {
			aw.firstSocket = rel
		}
		return nil
	default:
		return &oddFileError{path: aw.sourcePath(rel), mode: mode}
	}
}

// lstatted, if set, is called with a member's name before it is
// lstat'ed: tests count the entries looked at.
var lstatted func(rel string)

// lstat is d.lstat of the member rel, its error ready to return.
func (aw *archiveWriter) lstat(d srcDir, name, rel string) (srcInfo, error) {
	if lstatted != nil {
		lstatted(rel)
	}
	info, err := d.lstat(name, rel)
	if err != nil {
		return srcInfo{}, fmt.Errorf("archive: %w", err)
	}
	return info, nil
}

func (aw *archiveWriter) header(hdr *tar.Header) error {
	if err := restorable(hdr); err != nil {
		return err
	}
	// Every directory is a member here, so Extract's other count, of
	// directories no member describes, stays at 0.
	if aw.nameBytes += int64(len(hdr.Name) + len(hdr.Linkname)); aw.nameBytes > maxNameBytes {
		return fmt.Errorf("archive: %q cannot be archived: the tree's names and link targets total more than the %d bytes a restore accepts: %w", displayName(strings.TrimSuffix(hdr.Name, "/")), maxNameBytes, tiercache.ErrInvalidArgument)
	}
	if aw.tw == nil {
		aw.files++
		return nil
	}
	// WriteHeader would flush the previous member's padding first:
	// flushed here, the frame writer's offset is where this member's
	// first block (a PAX header's, if any) starts, a place to cut.
	err := aw.tw.Flush()
	if err == nil {
		if aw.fw != nil {
			aw.fw.memberStart(hdr.Name, hdr.Size)
		}
		err = aw.tw.WriteHeader(hdr)
	}
	if err != nil {
		return fmt.Errorf("archive: %q: %w", strings.TrimSuffix(hdr.Name, "/"), err)
	}
	if aw.fw != nil {
		aw.fw.dataStart()
	}
	aw.files++
	return nil
}

// restorable refuses a member Extract would refuse for its name's or its
// link's length (see MaxNameLength), which a deep tree on Linux can have:
// better a failed push naming it than an entry no pull can restore.
func restorable(hdr *tar.Header) error {
	name := strings.TrimSuffix(hdr.Name, "/")
	why := ""
	switch {
	case len(hdr.Name) > MaxNameLength:
		why = fmt.Sprintf("its path is %d bytes, over the %d a restore accepts", len(hdr.Name), MaxNameLength)
	case len(hdr.Linkname) > MaxNameLength:
		why = fmt.Sprintf("its link target is %d bytes, over the %d a restore accepts", len(hdr.Linkname), MaxNameLength)
	default:
		for c := range strings.SplitSeq(name, "/") {
			if len(c) > maxComponent {
				why = fmt.Sprintf("a component of its path is %d bytes, over the %d a restore accepts", len(c), maxComponent)
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("archive: %q cannot be archived: %s: %w", displayName(name), why, tiercache.ErrInvalidArgument)
}

// fileOpened, if set, is called with a regular file's member name once
// the file is open and before it is read: tests change the file there.
var fileOpened func(rel string)

// file writes a regular file's header and exactly hdr.Size bytes of it,
// failing with ErrChanged if the file is no longer as info, its lstat,
// described it once they are read.
func (aw *archiveWriter) file(d srcDir, name, rel string, hdr *tar.Header, info srcInfo) error {
	if aw.tw == nil {
		aw.files++
		aw.size += hdr.Size
		return nil
	}
	f, err := d.openFile(name, rel)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	if fileOpened != nil {
		fileOpened(rel)
	}
	if err := aw.header(hdr); err != nil {
		return err
	}
	// Every read asks for one byte more than is left: a file that grew
	// fills it, and a file at its end returns short, so the probe for
	// growth costs no read of its own unless the rest filled the buffer.
	var copied int64
	for {
		if err := aw.ctx.Err(); err != nil {
			return fmt.Errorf("archive: write %q: %w", rel, err)
		}
		rest := hdr.Size - copied
		ask := min(int64(len(aw.buf)), rest+1)
		n, err := f.Read(aw.buf[:ask])
		if int64(n) > rest {
			return changedErr(rel, fmt.Sprintf("it grew past the %d bytes it had when listed", hdr.Size))
		}
		if n > 0 {
			if _, werr := aw.tw.Write(aw.buf[:n]); werr != nil {
				return fmt.Errorf("archive: %q: %w", rel, werr)
			}
			copied += int64(n)
		}
		if err == io.EOF || (n == 0 && err == nil) {
			break
		}
		if err != nil {
			return fmt.Errorf("archive: %q: %w", rel, err)
		}
		if copied == hdr.Size && ask > rest {
			break // short of the probe byte: the end (fstat confirms it)
		}
	}
	if copied != hdr.Size {
		return changedErr(rel, fmt.Sprintf("it shrank from %d to %d bytes", hdr.Size, copied))
	}
	// Like tar, compare the open file with its listing: a rewrite in
	// place, or growth after the last read, shows in its size or times.
	now, err := f.stat()
	if err != nil {
		return fmt.Errorf("archive: %q: %w", rel, err)
	}
	switch {
	case now.size != info.size:
		return changedErr(rel, fmt.Sprintf("its size went from %d to %d bytes", info.size, now.size))
	case !now.mtime.Equal(info.mtime):
		return changedErr(rel, fmt.Sprintf("its mtime went from %s to %s", info.mtime.Format(time.RFC3339Nano), now.mtime.Format(time.RFC3339Nano)))
	case !now.ctime.Equal(info.ctime) && info.nlink <= 1 && now.nlink <= 1:
		// Not for a file with several names: linking or unlinking one of
		// them (a pull --link of the same entry, a prune of the local
		// tier's tree) moves the ctime and changes no byte. Its size and
		// mtime still tell a write.
		return changedErr(rel, "its ctime moved (its contents or metadata were changed)")
	}
	aw.size += copied
	return nil
}

// changedErr reports that the member rel changed while it was read, and
// how.
func changedErr(rel, how string) error {
	return fmt.Errorf("archive: %q %w: %s", rel, ErrChanged, how)
}

// srcFile is a regular file of the tree, open for reading.
type srcFile interface {
	io.ReadCloser
	// stat describes the open file now: its size, mtime and, where
	// lstat reports one, ctime.
	stat() (srcInfo, error)
}

// hashWriter counts and, unless h is nil, hashes what passes through it.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	if hw.h != nil {
		hw.h.Write(p[:n])
	}
	hw.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// errorsIsAny reports whether err matches any of targets.
func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// sourcePath is the path on disk, as the source was given, of the member
// rel.
func (aw *archiveWriter) sourcePath(rel string) string {
	if rel+"/" == aw.prefix {
		return aw.from // a path of Paths itself
	}
	return filepath.Join(aw.from, filepath.FromSlash(strings.TrimPrefix(rel, aw.prefix)))
}

// oddFileError is a file of a type the archive cannot store (a FIFO, a
// device node), named by its path on disk: it is for the user to remove
// or exclude.
type oddFileError struct {
	path string
	mode fs.FileMode
}

func (e *oddFileError) Error() string {
	return fmt.Sprintf("archive: %s is a %s, which cannot be archived: %v", e.path, fsutil.TypeName(e.mode), tiercache.ErrInvalidArgument)
}

func (e *oddFileError) Unwrap() error { return tiercache.ErrInvalidArgument }
