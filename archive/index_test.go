package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
)

// indexTree builds a tree whose archive spans several frames: small files
// before and after a file larger than two frames, names long enough for
// PAX headers, and directories.
func indexTree(t testing.TB) string {
	t.Helper()
	src := t.TempDir()
	write := func(name string, data []byte) {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		// Sizes that leave member boundaries at uneven places.
		size := 5000 + i*97%23000
		name := fmt.Sprintf("a/%03d.txt", i)
		if i%7 == 0 {
			name = fmt.Sprintf("a/%03d-%s.txt", i, strings.Repeat("long", 30))
		}
		line := fmt.Sprintf("file %d says hello\n", i)
		data := bytes.Repeat([]byte(line), size/len(line)+1)[:size]
		if i%3 == 0 {
			data = noiseSeed(size, byte(i))[:size]
		}
		write(name, data)
	}
	write("b/big.bin", append(noise(frameSize+frameSize/3), bytes.Repeat([]byte("tail of big\n"), frameSize/12)...))
	for i := range 200 {
		write(fmt.Sprintf("c/%03d/f", i), noiseSeed(9000+i*31, byte(i))[:9000+i*31])
	}
	return src
}

// memberSpan is where a member lies in a tar stream: its first header
// block (a PAX header's, if any) at start, its padded data ending at end.
type memberSpan struct {
	name       string
	start, end int64
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tarSpans lists the members of a tar stream with where each lies.
func tarSpans(t testing.TB, raw []byte) []memberSpan {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(raw)}
	tr := tar.NewReader(cr)
	var spans []memberSpan
	var start int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return spans
		}
		if err != nil {
			t.Fatal(err)
		}
		// Next has read exactly the member's header blocks.
		end := cr.n
		if hdr.Typeflag == tar.TypeReg {
			end += (hdr.Size + 511) &^ 511
		}
		spans = append(spans, memberSpan{name: hdr.Name, start: start, end: end})
		start = end
	}
}

// archiveIndex writes src at concurrency conc and returns the archive, its
// Result and its index, read as a later reader will.
func archiveIndex(t testing.TB, src string, conc int) ([]byte, Result, Index) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Write(t.Context(), &buf, src, WriteOptions{Concurrency: conc})
	if err != nil {
		t.Fatal(err)
	}
	if res.Index.Length == 0 || res.Index.Offset+res.Index.Length != res.ArchiveSize || int64(buf.Len()) != res.ArchiveSize {
		t.Fatalf("index at %+v in an archive of %d bytes (%d written)", res.Index, res.ArchiveSize, buf.Len())
	}
	idx, err := ReadIndex(bytes.NewReader(buf.Bytes()), int64(buf.Len()), res.Index)
	if err != nil {
		t.Fatalf("ReadIndex: %v", err)
	}
	return buf.Bytes(), res, idx
}

// TestIndexDescribesFrames: every frame decodes alone to the tar bytes
// the index says and has the digest it records; a frame not marked
// mid-member starts with the header of the member it names, and one
// marked mid-member starts inside that member, only because the frame
// before it had no member boundary to end at.
func TestIndexDescribesFrames(t *testing.T) {
	data, _, idx := archiveIndex(t, indexTree(t), 0)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	whole, err := dec.DecodeAll(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(whole)) != idx.TarSize {
		t.Fatalf("tar stream of %d bytes, index says %d", len(whole), idx.TarSize)
	}
	spans := tarSpans(t, whole)
	starts := map[int64]string{}
	for _, s := range spans {
		starts[s.start] = s.name
	}
	var alone [][]byte // each frame decoded by itself
	var aligned, mid int
	for i, f := range idx.Frames {
		comp := data[f.Offset : f.Offset+f.Length]
		if sha256.Sum256(comp) != f.SHA256 {
			t.Fatalf("frame %d: digest differs from the index's", i)
		}
		raw, err := dec.DecodeAll(comp, nil)
		if err != nil {
			t.Fatalf("frame %d alone: %v", i, err)
		}
		if !bytes.Equal(raw, whole[f.TarOffset:f.TarOffset+f.TarLength]) {
			t.Fatalf("frame %d decodes to %d bytes that are not tar[%d:+%d]", i, len(raw), f.TarOffset, f.TarLength)
		}
		alone = append(alone, raw)
		if f.TarLength <= 0 || f.TarLength > frameSize {
			t.Errorf("frame %d holds %d tar bytes, not 1..%d", i, f.TarLength, frameSize)
		}
	}
	for i, f := range idx.Frames {
		if !f.MidMember {
			aligned++
			// Its header, read from the frames decoded alone.
			hdr, err := tar.NewReader(bytes.NewReader(bytes.Join(alone[i:], nil))).Next()
			if err != nil || hdr.Name != f.Member || starts[f.TarOffset] != f.Member {
				t.Fatalf("frame %d: starts with %v, %v; the index names %q", i, hdr, err, f.Member)
			}
		} else {
			mid++
			inside := false
			for _, s := range spans {
				if s.name == f.Member && f.TarOffset > s.start && f.TarOffset < s.end {
					inside = true
				}
			}
			last := spans[len(spans)-1]
			if !inside && !(f.TarOffset >= last.end && f.Member == last.name) {
				t.Fatalf("frame %d at tar offset %d is not inside member %q", i, f.TarOffset, f.Member)
			}
		}
		if i == 0 {
			continue
		}
		// A frame starts inside a member only after a full one with no
		// member boundary in its last cutSpan bytes.
		prev := idx.Frames[i-1]
		for _, s := range spans {
			if f.MidMember && s.start >= prev.TarOffset+frameSize-cutSpan && s.start < f.TarOffset {
				t.Fatalf("frame %d starts inside member %q, but member %q starts at %d, in the last cutSpan of the frame before", i, f.Member, s.name, s.start)
			}
		}
		if _, ok := starts[f.TarOffset]; f.MidMember && (ok || prev.TarLength != frameSize) {
			t.Fatalf("frame %d starts mid-member after a frame of %d bytes, not a full one", i, prev.TarLength)
		}
	}
	if aligned < 3 || mid < 1 {
		t.Fatalf("%d frames starting with a header, %d inside a member: the tree does not exercise both", aligned, mid)
	}
}

// TestIndexSameBytesAnyConcurrency: the frames, and so the index, depend
// on the tree alone.
func TestIndexSameBytesAnyConcurrency(t *testing.T) {
	src := indexTree(t)
	want, wres, _ := archiveIndex(t, src, 1)
	for _, conc := range []int{2, 5} {
		got, res, _ := archiveIndex(t, src, conc)
		if !bytes.Equal(got, want) || res != wres {
			t.Fatalf("concurrency %d: %d bytes, %+v; concurrency 1: %d bytes, %+v", conc, len(got), res, len(want), wres)
		}
	}
}

// TestExtractAcceptsIndex: Extract and Inspect read an archive with its
// index frame to the end, with the digest over every byte, and refuse one
// whose index frame is cut short.
func TestExtractAcceptsIndex(t *testing.T) {
	data := validArchive(t)
	res, _, err := extractBytes(t, data, ExtractOptions{})
	sum := sha256.Sum256(data)
	if err != nil || res.ArchiveSize != int64(len(data)) || res.SHA256 != fmt.Sprintf("%x", sum) {
		t.Fatalf("Extract: %+v, %v; want all %d bytes read", res, err, len(data))
	}
	ires, err := Inspect(t.Context(), bytes.NewReader(data), ExtractOptions{})
	if err != nil || ires.SHA256 != res.SHA256 {
		t.Fatalf("Inspect: %+v, %v", ires, err)
	}
	for _, cut := range []int{1, 9} {
		if _, _, err := extractBytes(t, data[:len(data)-cut], ExtractOptions{}); !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("index frame short of %d bytes: err = %v, want ErrIntegrity", cut, err)
		}
	}
}

// validIndex returns a valid index payload of three frames.
func validIndex() []byte {
	idx := Index{
		Frames: []IndexFrame{
			{Offset: 0, Length: 1000, TarOffset: 0, TarLength: frameSize - 512, Member: "a/b"},
			{Offset: 1000, Length: 2000, TarOffset: frameSize - 512, TarLength: frameSize, Member: "big", MidMember: true},
			{Offset: 3000, Length: 50, TarOffset: 2*frameSize - 512, TarLength: 2048, Member: "c/"},
		},
		DataSize: 3050,
		TarSize:  2*frameSize - 512 + 2048,
	}
	for i := range idx.Frames {
		idx.Frames[i].SHA256 = sha256.Sum256([]byte{byte(i)})
	}
	return appendIndexFrame(nil, idx)[skippableHeader:]
}

// Offsets into validIndex's payload.
const (
	rec0 = indexHeaderSize
	rec1 = rec0 + indexRecordFixed + len("a/b")
	rec2 = rec1 + indexRecordFixed + len("big")
)

func TestParseIndex(t *testing.T) {
	good := validIndex()
	idx, err := ParseIndex(good)
	if err != nil || len(idx.Frames) != 3 || idx.Frames[1].Member != "big" || !idx.Frames[1].MidMember || idx.DataSize != 3050 {
		t.Fatalf("ParseIndex(valid) = %+v, %v", idx, err)
	}
	if again := appendIndexFrame(nil, idx)[skippableHeader:]; !bytes.Equal(again, good) {
		t.Fatal("a parsed index encodes to other bytes")
	}
	u64 := func(at int, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint64(b[at:], v); return b }
	}
	u32 := func(at int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[at:], v); return b }
	}
	u16 := func(at int, v uint16) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint16(b[at:], v); return b }
	}
	set := func(at int, v byte) func([]byte) []byte {
		return func(b []byte) []byte { b[at] = v; return b }
	}
	// name rewrites frame 2's name (the last record) to s.
	name := func(s string) func([]byte) []byte {
		return func(b []byte) []byte {
			b = append(b[:rec2+indexRecordFixed], s...)
			binary.LittleEndian.PutUint16(b[rec2+indexRecordFixed-2:], uint16(len(s)))
			return b
		}
	}
	const (
		offC, lenC, offT, lenT = 0, 8, 16, 24
		flags                  = 32 + sha256.Size
	)
	cases := map[string]func([]byte) []byte{
		"empty":                 func([]byte) []byte { return nil },
		"header only":           func(b []byte) []byte { return b[:indexHeaderSize] },
		"truncated record":      func(b []byte) []byte { return b[:rec2+10] },
		"truncated name":        func(b []byte) []byte { return b[:len(b)-1] },
		"trailing byte":         func(b []byte) []byte { return append(b, 0) },
		"bad magic":             set(0, 'X'),
		"version 0":             u16(4, 0),
		"reserved":              u16(6, 1),
		"no frames":             u32(8, 0),
		"huge count":            u32(8, 0xffffffff),
		"count past the data":   u32(8, 4),
		"count short":           u32(8, 2),
		"data size short":       u64(12, 3049),
		"data size huge":        u64(12, 1<<62),
		"tar size unaligned":    u64(20, 2*frameSize-512+2048+1),
		"tar size short":        u64(20, 2*frameSize-512+1536),
		"first offset nonzero":  u64(rec0+offC, 1),
		"overlap":               u64(rec1+offC, 999),
		"gap":                   u64(rec1+offC, 1001),
		"offset wraps":          u64(rec1+offC, 1<<63),
		"tar overlap":           u64(rec1+offT, frameSize-1024),
		"tar gap":               u64(rec1+offT, frameSize),
		"zero length":           u64(rec2+lenC, 0),
		"negative length":       u64(rec2+lenC, 1<<63),
		"length past bound":     u64(rec0+lenC, frameSize+1<<20),
		"zero tar length":       u64(rec2+lenT, 0),
		"tar length past bound": u64(rec0+lenT, maxIndexedFrame+512),
		"unknown flag":          set(rec1+flags, 2),
		"first frame mid":       set(rec0+flags, 1),
		"header off a block": func(b []byte) []byte {
			return set(rec1+flags, 0)(u64(rec1+offT, frameSize-511)(u64(rec0+lenT, frameSize-511)(b)))
		},
		"name length past end": u16(rec2+indexRecordFixed-2, 100),
		"empty name":           name(""),
		"NUL in name":          name("a\x00b"),
		"absolute name":        name("/abs/name"),
		"dot-dot name":         name("a/../../b"),
		"name too long":        name(strings.Repeat("n", MaxNameLength+1)),
		"oversized payload":    func(b []byte) []byte { return append(b, make([]byte, maxIndexPayload)...) },
	}
	for what, spoil := range cases {
		t.Run(what, func(t *testing.T) {
			_, err := ParseIndex(spoil(bytes.Clone(good)))
			if !errors.Is(err, tiercache.ErrIntegrity) {
				t.Fatalf("err = %v, want ErrIntegrity", err)
			}
		})
	}
}

// TestReadIndexChecksInfo: ReadIndex trusts an index only where the
// recorded location and digest say, and only if it ends the archive.
func TestReadIndexChecksInfo(t *testing.T) {
	var buf bytes.Buffer
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Write(t.Context(), &buf, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	info := res.Index
	idx, err := ReadIndex(bytes.NewReader(data), int64(len(data)), info)
	if err != nil || len(idx.Frames) != 1 || idx.Frames[0].Member != "f" || idx.TarSize < 2048 {
		t.Fatalf("ReadIndex = %+v, %v", idx, err)
	}
	size := int64(len(data))
	flip := func(at int64) []byte { b := bytes.Clone(data); b[at] ^= 1; return b }
	// resum records the digest of the index frame in b, as a writer that
	// made it would, so that the checks behind the digest are reached.
	resum := func(b []byte) IndexInfo {
		i := info
		i.SHA256 = fmt.Sprintf("%x", sha256.Sum256(b[i.Offset:]))
		return i
	}
	payloadLen := func(n uint32) []byte {
		b := bytes.Clone(data)
		binary.LittleEndian.PutUint32(b[info.Offset+4:], n)
		return b
	}
	badMagic, badLen, badPayload := flip(info.Offset), payloadLen(uint32(info.Length-skippableHeader)+1), flip(info.Offset+skippableHeader+4)
	// A valid index of other data frames: it must describe the bytes
	// before it.
	other := bytes.Clone(data[:info.Offset])
	other = appendIndexFrame(other, Index{Frames: []IndexFrame{{Length: info.Offset - 1, TarLength: 2048, Member: "f"}}, DataSize: info.Offset - 1, TarSize: 2048})
	otherInfo := IndexInfo{Offset: info.Offset, Length: int64(len(other)) - info.Offset}
	otherInfo.SHA256 = fmt.Sprintf("%x", sha256.Sum256(other[info.Offset:]))
	type tc struct {
		data []byte
		size int64
		info IndexInfo
	}
	with := func(f func(*IndexInfo)) IndexInfo { i := info; f(&i); return i }
	cases := map[string]tc{
		"digest uppercase":    {data, size, with(func(i *IndexInfo) { i.SHA256 = strings.ToUpper(i.SHA256) })},
		"digest short":        {data, size, with(func(i *IndexInfo) { i.SHA256 = i.SHA256[:62] })},
		"digest not hex":      {data, size, with(func(i *IndexInfo) { i.SHA256 = "zz" + i.SHA256[2:] })},
		"digest empty":        {data, size, with(func(i *IndexInfo) { i.SHA256 = "" })},
		"digest of another":   {data, size, with(func(i *IndexInfo) { i.SHA256 = fmt.Sprintf("%x", sha256.Sum256(nil)) })},
		"not at the end":      {append(bytes.Clone(data), 0), size + 1, info},
		"offset off by one":   {data, size, with(func(i *IndexInfo) { i.Offset++; i.Length-- })},
		"length too small":    {data, size, with(func(i *IndexInfo) { i.Offset = size - 8; i.Length = 8 })},
		"flipped magic":       {badMagic, size, info},
		"flipped payload":     {badPayload, size, info},
		"frame magic":         {badMagic, size, resum(badMagic)},
		"frame length":        {badLen, size, resum(badLen)},
		"payload":             {badPayload, size, resum(badPayload)},
		"other frames":        {other, int64(len(other)), otherInfo},
		"archive truncated":   {data[:size-1], size, info},
		"negative offset":     {data, size, with(func(i *IndexInfo) { i.Offset = -1 })},
		"offset past the end": {data, size, with(func(i *IndexInfo) { i.Offset = size + 1 })},
	}
	for what, c := range cases {
		t.Run(what, func(t *testing.T) {
			if _, err := ReadIndex(bytes.NewReader(c.data), c.size, c.info); !errors.Is(err, tiercache.ErrIntegrity) {
				t.Fatalf("err = %v, want ErrIntegrity", err)
			}
		})
	}
	if _, err := ReadIndex(bytes.NewReader(data), size, IndexInfo{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("no index recorded: err = %v, want ErrInvalidArgument", err)
	}
}
