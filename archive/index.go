package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tiercache/tiercache"
)

// The index frame: a zstd skippable frame (which every zstd decoder
// skips, so the archive stays a plain .tar.zst) after the last data frame,
// ending the archive. It is the 4-byte little-endian magic indexMagic, the
// payload's length as 4 bytes little-endian, then the payload, all
// integers little-endian:
//
//	header (28 bytes):
//	  [4]byte  "TCIX"
//	  uint16   version, 1
//	  uint16   reserved, 0
//	  uint32   frame count, 1..maxIndexFrames
//	  uint64   compressed bytes of the data frames (the index frame's offset)
//	  uint64   tar bytes in all
//	then per data frame, in archive order (67 bytes + the name):
//	  uint64   compressed offset
//	  uint64   compressed length
//	  uint64   tar offset
//	  uint64   tar length
//	  [32]byte SHA-256 of the frame's compressed bytes
//	  uint8    flags: bit 0 set when the frame starts inside a member
//	  uint16   name length, then the name: the member whose first header
//	           block starts the frame, or, with bit 0, the member it
//	           continues, as the tar header names it
//
// A change that an older reader would misread bumps the version, and the
// magic and version stay the payload's first six bytes; a reader refuses
// a newer version than it knows with ErrIndexVersion (and can then read
// the archive sequentially, as it reads one without an index).
const (
	// indexMagic is one of the sixteen skippable-frame magics, not the
	// ones pzstd (0x184D2A50) or the seekable format (0x184D2A5E) use, so
	// neither takes the index for theirs.
	indexMagic        = 0x184D2A5B
	skippableHeader   = 8
	indexPayloadMagic = "TCIX"
	indexVersion      = 1
	indexHeaderSize   = 4 + 2 + 2 + 4 + 8 + 8
	indexRecordFixed  = 8 + 8 + 8 + 8 + sha256.Size + 1 + 2
	indexFlagMid      = 1
)

// Bounds on an index, so that reading one costs bounded memory. Write
// leaves out an index that would cross them (a tree of over 2 TiB, or
// frames starting with names that are mostly kilobytes long); such an
// archive is read sequentially.
const (
	maxIndexFrames  = 1 << 20
	maxIndexPayload = 64 << 20
	// maxIndexedFrame is the most tar bytes a frame of an index may hold:
	// what a reader may have to hold for one frame. It is above
	// frameSize so that writers may grow their frames without older
	// readers refusing their indexes; it stays at what readers since the
	// index's first version accept (four frames of 4 MiB then).
	maxIndexedFrame = 16 << 20
)

// MaxIndexLength is the longest index frame, header included, that
// ReadIndex accepts: a reader may refuse a longer recorded one before
// reading it.
const MaxIndexLength = skippableHeader + maxIndexPayload

// IndexInfo locates an archive's index frame; a caller records it with
// the archive's size and digest, and gives it back to ReadIndex, which
// trusts the index only if it matches.
type IndexInfo struct {
	// Offset is where the index frame starts in the archive; Length is
	// its size, header included. The frame ends the archive. Both are
	// zero for an archive without an index.
	Offset, Length int64
	// SHA256 is the lowercase hex SHA-256 of the index frame's bytes.
	SHA256 string
}

// Index describes an archive's data frames, for readers that decompress
// them independently.
type Index struct {
	// Frames are the data frames in archive order. They tile the
	// archive up to the index frame, and their tar bytes tile the tar
	// stream.
	Frames []IndexFrame
	// DataSize is the compressed bytes of the data frames, which is the
	// index frame's offset.
	DataSize int64
	// TarSize is the tar bytes of all the frames, end-of-archive marker
	// included.
	TarSize int64
}

// IndexFrame is one independent zstd frame of an archive.
type IndexFrame struct {
	// Offset and Length locate the frame's compressed bytes in the
	// archive.
	Offset, Length int64
	// TarOffset and TarLength locate the tar bytes it decompresses to.
	TarOffset, TarLength int64
	// Member is the name, as its tar header holds it, of the member
	// whose first header block (a PAX header's, if it has one) starts
	// the frame, or, with MidMember, of the member whose header or data
	// the frame starts inside. It is empty only for an archive of no
	// members, whose one frame holds the end-of-archive marker alone.
	Member string
	// MidMember reports a frame that does not start with a header: it
	// continues a member too large for one frame, or its padding.
	MidMember bool
	// SHA256 is the SHA-256 of the frame's compressed bytes.
	SHA256 [sha256.Size]byte
}

// indexRecordSize is the encoded size of a frame starting with name.
func indexRecordSize(name string) int { return indexRecordFixed + len(name) }

// appendIndexFrame appends idx as a skippable frame to b.
func appendIndexFrame(b []byte, idx Index) []byte {
	size := indexHeaderSize
	for _, f := range idx.Frames {
		size += indexRecordSize(f.Member)
	}
	b = binary.LittleEndian.AppendUint32(b, indexMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = append(b, indexPayloadMagic...)
	b = binary.LittleEndian.AppendUint16(b, indexVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(idx.Frames)))
	b = binary.LittleEndian.AppendUint64(b, uint64(idx.DataSize))
	b = binary.LittleEndian.AppendUint64(b, uint64(idx.TarSize))
	for _, f := range idx.Frames {
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Offset))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Length))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.TarOffset))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.TarLength))
		b = append(b, f.SHA256[:]...)
		var flags byte
		if f.MidMember {
			flags |= indexFlagMid
		}
		b = append(b, flags)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(f.Member)))
		b = append(b, f.Member...)
	}
	return b
}

// ErrIndexVersion reports an index of a newer version than this reader
// knows. It does not wrap tiercache.ErrIntegrity: the index is not
// damaged (ReadIndex returns it only for a frame that matches its
// recorded digest), just unusable here, and the archive can be read
// sequentially, as one without an index.
var ErrIndexVersion = errors.New("archive: index of a newer version than this reader knows")

// indexErr is an error wrapping tiercache.ErrIntegrity about an index.
func indexErr(format string, args ...any) error {
	return fmt.Errorf("archive: index: %s: %w", fmt.Sprintf(format, args...), tiercache.ErrIntegrity)
}

// ParseIndex parses an index frame's payload (the bytes after its 8-byte
// skippable-frame header) and checks that it describes a well-formed
// archive: a known version, frames that tile the compressed bytes before
// the index and the tar stream without gap or overlap, lengths within
// bounds, and names a tar member could have. A newer version is an error
// wrapping ErrIndexVersion; anything else is an error wrapping
// tiercache.ErrIntegrity that says what is wrong. It does not
// check the index against the archive's bytes; ReadIndex checks the
// index's digest, and a reader checks each frame's.
func ParseIndex(b []byte) (Index, error) {
	if len(b) > maxIndexPayload {
		return Index{}, indexErr("%d bytes, over the %d-byte limit", len(b), maxIndexPayload)
	}
	if len(b) < 6 {
		return Index{}, indexErr("%d bytes, too short for its header", len(b))
	}
	if string(b[:4]) != indexPayloadMagic {
		return Index{}, indexErr("bad magic %q", b[:4])
	}
	le := binary.LittleEndian
	// A newer version may lay out the rest otherwise, so it is told
	// apart before anything else is checked.
	switch v := le.Uint16(b[4:]); {
	case v > indexVersion:
		return Index{}, fmt.Errorf("archive: index: version %d, this reader knows up to %d: %w", v, indexVersion, ErrIndexVersion)
	case v != indexVersion:
		return Index{}, indexErr("unknown version %d", v)
	}
	if len(b) < indexHeaderSize {
		return Index{}, indexErr("%d bytes, too short for its header", len(b))
	}
	if r := le.Uint16(b[6:]); r != 0 {
		return Index{}, indexErr("reserved header field is %d, not 0", r)
	}
	count := int64(le.Uint32(b[8:]))
	dataSize, tarSize := le.Uint64(b[12:]), le.Uint64(b[20:])
	rest := b[indexHeaderSize:]
	switch {
	case count == 0:
		return Index{}, indexErr("no frames")
	case count > maxIndexFrames:
		return Index{}, indexErr("%d frames, over the limit of %d", count, maxIndexFrames)
	case count*indexRecordFixed > int64(len(rest)):
		return Index{}, indexErr("%d frames cannot fit in %d bytes (truncated)", count, len(rest))
	case tarSize < 1024 || tarSize%512 != 0 || tarSize > uint64(count)*maxIndexedFrame:
		return Index{}, indexErr("tar size %d is not a tar stream's of %d frames", tarSize, count)
	case dataSize == 0 || dataSize > uint64(count)*maxZstdFrame(maxIndexedFrame):
		return Index{}, indexErr("compressed size %d out of range for %d frames", dataSize, count)
	}
	idx := Index{Frames: make([]IndexFrame, 0, count), DataSize: int64(dataSize), TarSize: int64(tarSize)}
	var off, tarOff int64
	for i := range count {
		if len(rest) < indexRecordFixed {
			return Index{}, indexErr("frame %d truncated", i)
		}
		f := IndexFrame{
			Offset:    int64(le.Uint64(rest[0:])),
			Length:    int64(le.Uint64(rest[8:])),
			TarOffset: int64(le.Uint64(rest[16:])),
			TarLength: int64(le.Uint64(rest[24:])),
		}
		copy(f.SHA256[:], rest[32:])
		flags := rest[32+sha256.Size]
		nameLen := int(le.Uint16(rest[33+sha256.Size:]))
		rest = rest[indexRecordFixed:]
		if len(rest) < nameLen {
			return Index{}, indexErr("frame %d: name truncated", i)
		}
		f.Member = string(rest[:nameLen])
		rest = rest[nameLen:]
		f.MidMember = flags&indexFlagMid != 0
		// Offsets compare as uint64, lengths are checked for <= 0: a
		// stored value above math.MaxInt64 reads as negative.
		switch {
		case uint64(f.Offset) < uint64(off):
			return Index{}, indexErr("frame %d at compressed offset %d overlaps the previous frame, which ends at %d", i, uint64(f.Offset), off)
		case uint64(f.Offset) != uint64(off):
			return Index{}, indexErr("gap before frame %d: it starts at compressed offset %d, the previous frame ends at %d", i, uint64(f.Offset), off)
		case uint64(f.TarOffset) < uint64(tarOff):
			return Index{}, indexErr("frame %d at tar offset %d overlaps the previous frame, which ends at %d", i, uint64(f.TarOffset), tarOff)
		case uint64(f.TarOffset) != uint64(tarOff):
			return Index{}, indexErr("gap before frame %d: it starts at tar offset %d, the previous frame ends at %d", i, uint64(f.TarOffset), tarOff)
		case f.TarLength <= 0 || f.TarLength > maxIndexedFrame:
			return Index{}, indexErr("frame %d holds %d tar bytes, not 1..%d", i, uint64(f.TarLength), maxIndexedFrame)
		case f.Length < minZstdFrame || uint64(f.Length) > maxZstdFrame(uint64(f.TarLength)):
			return Index{}, indexErr("frame %d: %d compressed bytes for %d tar bytes", i, uint64(f.Length), f.TarLength)
		case flags&^indexFlagMid != 0:
			return Index{}, indexErr("frame %d: unknown flags %#x", i, flags)
		case i == 0 && f.MidMember:
			return Index{}, indexErr("frame 0 starts inside a member")
		case !f.MidMember && f.TarOffset%512 != 0:
			return Index{}, indexErr("frame %d starts with a header at tar offset %d, not on a 512-byte block", i, f.TarOffset)
		}
		if err := checkIndexName(f.Member, count); err != nil {
			return Index{}, indexErr("frame %d: %v", i, err)
		}
		off += f.Length
		tarOff += f.TarLength
		idx.Frames = append(idx.Frames, f)
	}
	switch {
	case len(rest) > 0:
		return Index{}, indexErr("%d bytes after the last frame", len(rest))
	case uint64(off) != dataSize:
		return Index{}, indexErr("frames end at compressed offset %d, not at the index's %d", off, dataSize)
	case uint64(tarOff) != tarSize:
		return Index{}, indexErr("frames end at tar offset %d, not at the stream's end %d", tarOff, tarSize)
	}
	return idx, nil
}

// minZstdFrame is the smallest zstd frame: magic, frame header descriptor
// and one empty block's header.
const minZstdFrame = 4 + 1 + 3

// maxZstdFrame bounds the compressed size of n bytes: a frame header, a
// block header per 128 KiB block (stored raw at worst) and a checksum.
func maxZstdFrame(n uint64) uint64 { return n + 3*(n/(128<<10)+1) + 18 + 4 }

// checkIndexName refuses a name no member written by Write could have:
// one that Extract would refuse outright whatever the platform. Only a
// one-frame index (an archive without members) may have an empty name.
func checkIndexName(name string, frames int64) error {
	switch {
	case name == "" && frames > 1:
		return fmt.Errorf("empty member name")
	case len(name) > MaxNameLength:
		return fmt.Errorf("member name of %d bytes, over %d", len(name), MaxNameLength)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("NUL byte in member name %q", displayName(name))
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("absolute member name %q", displayName(name))
	}
	for comp := range strings.SplitSeq(name, "/") {
		if comp == ".." {
			return fmt.Errorf(`".." in member name %q`, displayName(name))
		}
	}
	return nil
}

// ReadIndex reads and checks the index of an archive of size bytes that r
// reads, as info locates it (Write's Result.Index, as recorded): the
// index frame must end the archive and match info's length and digest,
// and its payload must pass ParseIndex and describe the bytes before it.
// A mismatch is an error wrapping tiercache.ErrIntegrity; an info without
// an index (Length 0) one wrapping tiercache.ErrInvalidArgument; an
// index of a newer version, whose frame matches info, one wrapping
// ErrIndexVersion (the archive is then read as one without an index).
// An error of r is returned wrapped as it is, so that a caller may retry
// it.
func ReadIndex(r io.ReaderAt, size int64, info IndexInfo) (Index, error) {
	if info.Length == 0 {
		return Index{}, fmt.Errorf("archive: no index recorded: %w", tiercache.ErrInvalidArgument)
	}
	want, err := hex.DecodeString(info.SHA256)
	if err != nil || len(want) != sha256.Size || info.SHA256 != strings.ToLower(info.SHA256) {
		return Index{}, indexErr("recorded digest %q is not a lowercase hex SHA-256", info.SHA256)
	}
	switch {
	case info.Length < skippableHeader+indexHeaderSize || info.Length > skippableHeader+maxIndexPayload:
		return Index{}, indexErr("recorded length %d out of range", info.Length)
	case info.Offset <= 0 || info.Offset > size || size-info.Offset != info.Length:
		return Index{}, indexErr("recorded at %d+%d, which is not the end of a %d-byte archive", info.Offset, info.Length, size)
	}
	b := make([]byte, info.Length)
	if n, err := r.ReadAt(b, info.Offset); n < len(b) {
		if err == nil || err == io.EOF {
			return Index{}, indexErr("archive ends %d bytes into the index frame (truncated)", n)
		}
		return Index{}, fmt.Errorf("archive: read index: %w", err)
	}
	if sum := sha256.Sum256(b); !bytes.Equal(sum[:], want) {
		return Index{}, indexErr("SHA-256 %x, recorded %s", sum, info.SHA256)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != indexMagic {
		return Index{}, indexErr("frame magic %#x, not %#x", m, indexMagic)
	}
	if n := le.Uint32(b[4:]); int64(n) != info.Length-skippableHeader {
		return Index{}, indexErr("frame says %d payload bytes, recorded %d", n, info.Length-skippableHeader)
	}
	idx, err := ParseIndex(b[skippableHeader:])
	if err != nil {
		return Index{}, err
	}
	if idx.DataSize != info.Offset {
		return Index{}, indexErr("frames end at %d, but the index frame starts at %d", idx.DataSize, info.Offset)
	}
	return idx, nil
}
