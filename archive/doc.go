// Package archive turns a directory tree into a tar+zstd stream and back.
//
// # Format
//
// An archive is a POSIX (PAX) tar stream compressed as zstd: a standard
// .tar.zst that `zstd -d | tar -x` restores. Write emits the tree's members
// in a deterministic order (a depth-first walk, each directory's entries
// sorted by name; a directory before its contents) with the root itself
// left out, so the same tree and options give the same bytes. Members are
// regular files, directories (empty ones included), symlinks (any target)
// and hardlinks: files sharing an inode within the tree are stored once,
// later names as hardlink members naming the first. Each member carries its
// permission bits (setuid, setgid and sticky dropped) and its mtime to the
// nanosecond (a PAX record when the time has a fractional second). Owners
// are stored as uid/gid 0 with no names, and neither atime nor ctime is
// stored, so nothing machine-specific leaks into the bytes. Sockets are
// skipped; device nodes and FIFOs make Write fail.
//
// On Windows, which keeps only a read-only attribute, Write stores 0644
// files and 0755 directories (0444 and 0555 when read-only) and symlink
// targets with slashes. Hardlinks are found there by volume serial number
// and file index, which Windows reports (with the link count) only
// through an open handle: Write takes them from the handle it reads each
// file through.
//
// The zstd stream is a sequence of independent frames, which Write
// compresses several at a time; any zstd decoder reads them as one
// stream. A frame holds at most 8 MiB of the tar stream, and starts at a
// member's first header block (a PAX header's, if it has one) wherever it
// can. Where a frame ends is content-defined (see frames.go): at member
// boundaries about 4 MiB apart that a hash of the members before them
// picks, so that trees differing a little share most frames byte for
// byte; a frame that fills first ends at a member boundary in its last
// 3 MiB, or else at 8 MiB inside a member. The tar end-of-archive marker
// is in the last frame. Frame boundaries depend on the tar stream alone,
// so the bytes are the same on every machine whatever its core count.
//
// After the last data frame, an index ends the archive, in a zstd
// skippable frame (magic 0x184D2A5B), which zstd decoders skip: per data
// frame, its compressed and tar offsets and lengths, the SHA-256 of its
// compressed bytes, and the member it starts with or, for a frame that
// starts inside a member, continues. Its payload begins with a magic and
// a version so that it can evolve, and is bounded in size: an archive
// whose index would not fit (over 2 TiB of tar, or frames mostly starting
// at names kilobytes long) gets none. Result.Index
// locates it and holds its SHA-256; ParseIndex and ReadIndex check one
// strictly before it is used. Extract and Inspect do not use the index,
// and read archives with or without one (as written before it existed).
//
// Extract and Inspect decode frames several at once
// (ExtractOptions.Decoders): one goroutine cuts the input into frames by
// their block headers, workers decode frames whose headers declare a size
// of at most 16 MiB, and the tar reader reads the results in order. Every
// member still passes the one reader's checks in stream order, and the
// input is hashed whole, so what is accepted does not depend on the
// decoder count. From the first frame that does not declare its size (a
// stream from the zstd tool, say), the rest is decoded as one stream.
// Writers create the files the reader has vetted: small ones read whole,
// large ones in 1 MiB chunks, at most 16 of them read ahead.
//
// Write and Extract both report the size and SHA-256 of the compressed
// bytes they produced or consumed (as does Inspect, which reads an
// archive with Extract's checks but writes nothing). The caller records them at put and
// compares them at get: that, not the zstd frame checksum, is what proves an
// archive whole, because a tar stream cut at a 512-byte boundary still reads
// as a complete archive.
//
// # Extraction security model
//
// Extract treats its input as hostile. It writes only below the destination
// directory, which must exist and be empty, and every file-system call goes
// through an os.Root opened on it (on Linux, regular files are created
// with openat on a directory descriptor opened through that os.Root, one
// checked name component at a time, with O_EXCL|O_NOFOLLOW), so even a
// bug in the checks below cannot reach outside. On top of that, each
// member is checked before anything is created, and refused with an
// error wrapping tiercache.ErrUnsafeArchive that names the member when it
// has:
//
//   - an absolute name, a ".." component, a NUL byte, or a name that
//     filepath.IsLocal rejects after cleaning;
//   - a parent that is not a directory created by this extraction (so
//     nothing is ever written through a symlink, however chained);
//   - a name already used by an earlier member (after cleaning), or one that
//     collides on disk with an existing file (O_EXCL creation, so a
//     case-insensitive file system cannot alias two names either);
//   - a hardlink whose target is not a regular file extracted earlier;
//   - a device, FIFO, sparse (GNU or PAX) or unknown type, or a PAX global
//     header (whose records this package does not apply).
//
// Backslashes are ordinary bytes in Unix file names and are kept literally
// there, as GNU tar does; on Windows, where they separate path components, a
// name containing one is refused. So, on Windows only, is a name Windows
// would reinterpret rather than hold: a component that is a device name
// (CON, PRN, AUX, NUL, COM1-9, LPT1-9, CONIN$, CONOUT$) with or without an
// extension, one ending in a dot or a space, and one holding <>:"|?* or a
// control character (a colon would name an alternate data stream).
//
// Symlinks are created with their stored target, whatever it is (like GNU
// tar), and never followed during extraction. With
// ExtractOptions.StrictSymlinks, a symlink whose target is absolute or
// resolves, through the archive's other symlinks, to a place outside the
// tree is refused. On macOS and Windows, whose file systems may take two
// names differing in case, or on macOS in Unicode normalization, for one
// file, a target is also refused where a ".." follows a name that may be
// one of the archive's symlinks spelled otherwise: ASCII names are
// compared regardless of case, and a non-ASCII name, or any name as deep
// as a non-ASCII symlink's, counts as possibly one (telling Unicode forms
// apart needs tables this package does not carry), and so does a name
// with an NTFS short-name component ("LONGDI~1"). On Windows a target
// is created with backslashes and, for StrictSymlinks, a backslash in it
// counts as a separator; a process without the privilege to create
// symlinks fails on the first one, with an error naming the member and
// saying so.
//
// Owners are never restored and setuid/setgid/sticky bits are dropped.
// Files get their mode and mtime once written; directories get theirs at
// the end, deepest first, so read-only trees (0444 files in 0555
// directories, as in Go's module cache) round-trip. Symlink mtimes are set
// without following the link on Unix and Windows; elsewhere they are left
// as created.
//
// Resources are bounded by ExtractOptions: the zstd window (and so the
// decoder's memory), the total size of regular files as declared by the
// headers and as actually read, the number of members, and the decompressed
// bytes spent on metadata. Crossing a ceiling fails with an error wrapping
// tiercache.ErrLimitExceeded, before the excess is written. Corrupt,
// truncated or trailing-garbage input fails with an error wrapping
// tiercache.ErrIntegrity; a tar stream that stops without its end-of-archive
// marker counts as truncated. After the end marker, Extract reads its input
// to EOF (only zero padding and further zstd frames, such as the index,
// may follow), so the reported digest covers the whole object.
//
// On error the destination may hold part of the tree; callers extract into
// a staging directory and remove it on failure. Nothing outside the
// destination is touched in any case.
package archive
