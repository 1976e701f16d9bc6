package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// BaseHarness returns a fresh, empty, writable base store for one
// subtest. It registers any cleanup with t.
type BaseHarness func(t *testing.T) remote.BaseStore

// RunBase runs the conformance suite of remote.BaseStore on stores made
// by newStore: OpenBase and ReadBase, including versions replaced or
// deleted under a Base; puts through a Reuser whose stream repeats long
// runs of a base, which must commit exactly the stream whatever the
// store copied; and such puts when the base is deleted or replaced
// between OpenBase and the Put. It checks that copies happen (Copied
// reports some bytes) but not how many, since a store may copy only runs
// long enough to be parts of their own.
func RunBase(t *testing.T, newStore BaseHarness) {
	if newStore == nil {
		t.Fatal("storetest: RunBase needs a BaseHarness")
	}
	s := &baseSuite{newStore: newStore}
	t.Run("OpenBase", s.testOpenBase)
	t.Run("ReadBase", s.testReadBase)
	t.Run("BaseVersions", s.testBaseVersions)
	t.Run("CopyRuns", s.testCopyRuns)
	t.Run("BaseDeleted", s.testBaseDeleted)
	t.Run("BaseReplaced", s.testBaseReplaced)
	t.Run("Renamed", s.testRenamed)
	t.Run("BaseCancelled", s.testBaseCancelled)
}

type baseSuite struct {
	newStore BaseHarness
}

// Span is a run of a Reuser's stream, [Off, Off+N), that repeats the
// base's archive at [BaseOff, BaseOff+N).
type Span struct{ Off, BaseOff, N int64 }

// MaxRead is a Reuser's default ReadSize.
const MaxRead = 1 << 20

// ErrBroken is what a Reuser's Read fails with at FailAt.
var ErrBroken = errors.New("broken stream")

// Reuser is an honest remote.Reuser for tests: it yields its data as an
// archive writer's pipe would, in reads that never span a frame (every
// ReadSize bytes) nor the start or end of a run (as the tiered cache's
// reads never span two frames), answers Reused for a run only as far as
// it has yielded it (so runs grow as a real reuser's do), and records what
// the store reports. Its Copied and CopyFailed are safe for concurrent
// use; the rest is read by one Put.
type Reuser struct {
	// ReadSize is the frame size reads keep within; 0 means MaxRead.
	ReadSize int
	// SpanRuns lets reads span the ends of runs (not frames).
	SpanRuns bool
	// FailAt, if > 0, makes Read fail with ErrBroken once it has
	// yielded FailAt bytes and the store has reported a copy (or 10 s
	// have passed).
	FailAt int

	base remote.Base
	data []byte
	runs []Span
	off  int

	mu       sync.Mutex
	copied   int64
	copies   int
	failures []error
}

var _ remote.Reuser = (*Reuser)(nil)

// NewReuser returns a Reuser that yields data and reports runs (in any
// order, disjoint) as repeating base's archive. The runs are trusted:
// they are the test's claim about data.
func NewReuser(base remote.Base, data []byte, runs ...Span) *Reuser {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b Span) int { return cmp.Compare(a.Off, b.Off) })
	return &Reuser{base: base, data: data, runs: runs}
}

// Read implements io.Reader.
func (r *Reuser) Read(p []byte) (int, error) {
	if r.FailAt > 0 && r.off >= r.FailAt {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, calls := r.Copies(); calls > 0 {
				break
			}
		}
		return 0, ErrBroken
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	frame := cmp.Or(r.ReadSize, MaxRead)
	end := min(len(r.data), (r.off/frame+1)*frame)
	for _, run := range r.runs {
		for _, b := range []int{int(run.Off), int(run.Off + run.N)} {
			if b > r.off && b < end && !r.SpanRuns {
				end = b
			}
		}
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

// Base implements remote.Reuser.
func (r *Reuser) Base() remote.Base { return r.base }

// Reused implements remote.Reuser.
func (r *Reuser) Reused(off int64) (baseOff, n int64) {
	for _, run := range r.runs {
		known := min(run.Off+run.N, int64(r.off))
		if off >= run.Off && off < known {
			return run.BaseOff + off - run.Off, known - off
		}
	}
	return 0, 0
}

// Copied implements remote.Reuser.
func (r *Reuser) Copied(_, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.copied += n
	r.copies++
}

// CopyFailed implements remote.Reuser.
func (r *Reuser) CopyFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, err)
}

// Copies returns the bytes the store reported copied and in how many
// calls.
func (r *Reuser) Copies() (total int64, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.copied, r.copies
}

// Failures returns the errors the store passed to CopyFailed, in order.
func (r *Reuser) Failures() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.failures)
}

// repeated is the number of bytes r's runs cover.
func (r *Reuser) repeated() int64 {
	var n int64
	for _, run := range r.runs {
		n += run.N
	}
	return n
}

// digestIndexReuser is a Reuser that is a remote.Digester and a
// remote.Indexer too, as the tiered cache's upload stream is.
type digestIndexReuser struct {
	*Reuser
	sum   string
	index remote.IndexInfo
}

func (d digestIndexReuser) SHA256() string          { return d.sum }
func (d digestIndexReuser) Index() remote.IndexInfo { return d.index }

const (
	mib = 1 << 20
	// reuseSize is a base's size: several 5 MiB parts, so that a store
	// copying whole parts has runs long enough to copy.
	reuseSize = 24 * mib
)

// tailIndex is an index claim for the last 40 bytes of data, as an
// archive's writer would make.
func tailIndex(data []byte) remote.IndexInfo {
	const tail = 40
	n := int64(len(data))
	return remote.IndexInfo{Offset: n - tail, Length: tail, SHA256: sha(data[n-tail:])}
}

// putBase puts data under key with an index, as every base the tiered
// cache picks has one, and returns its Base.
func putBase(t *testing.T, st remote.BaseStore, key string, data []byte) remote.Base {
	t.Helper()
	want, err := st.Put(t.Context(), remote.Meta{Key: key, Size: int64(len(data)) + 1, Files: 3}, &indexer{Reader: bytes.NewReader(data), index: tailIndex(data)})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	b, err := st.OpenBase(t.Context(), key)
	if err != nil {
		t.Fatalf("OpenBase(%q): %v", key, err)
	}
	if !sameMeta(b.Meta, want) {
		t.Fatalf("OpenBase(%q) = %+v, want the Meta Put returned, %+v", key, b.Meta, want)
	}
	return b
}

// edited returns a stream that repeats base but for 3 MiB of new bytes
// in place of base[10 MiB, 12 MiB), so the second run lies at another
// offset in the stream than in the base, and its runs.
func edited(base []byte) ([]byte, []Span) {
	data := slices.Concat(base[:10*mib], randBytes(99, 3*mib), base[12*mib:])
	return data, []Span{
		{Off: 0, BaseOff: 0, N: 10 * mib},
		{Off: 13 * mib, BaseOff: 12 * mib, N: int64(len(base)) - 12*mib},
	}
}

// putReusing puts data under key through r (ru, or a wrapper of it) and
// checks what is committed: exactly data, with the Meta Put returned, as
// Stat and Open see it. It checks what the store reported to ru too: at
// most one CopyFailed, and copies of no more bytes than ru's runs cover;
// with mustCopy, some. It returns the committed Meta.
func putReusing(t *testing.T, st remote.BaseStore, key string, r io.Reader, ru *Reuser, data []byte, mustCopy bool) remote.Meta {
	t.Helper()
	got, err := st.Put(t.Context(), remote.Meta{Key: key, Description: "reusing", Size: 5, Files: 1}, r)
	if err != nil {
		t.Fatalf("Put(%q) through a Reuser: %v", key, err)
	}
	if got.Key != key || got.Description != "reusing" || got.Size != 5 || got.Files != 1 || got.ArchiveSize != int64(len(data)) || got.SHA256 != sha(data) {
		t.Errorf("Put(%q) through a Reuser returned %+v, want archive size %d and SHA-256 %s", key, got, len(data), sha(data))
	}
	back, m := mustRead(t, st, key)
	if !bytes.Equal(back, data) {
		t.Errorf("%q reads back %d bytes (SHA-256 %s), want the %d put (%s)", key, len(back), sha(back), len(data), sha(data))
	}
	if !sameMeta(m, got) {
		t.Errorf("Open(%q) meta %+v, want %+v", key, m, got)
	}
	if stat, err := st.Stat(t.Context(), key); err != nil || !sameMeta(stat, got) {
		t.Errorf("Stat(%q) = %+v, %v; want %+v", key, stat, err, got)
	}
	total, calls := ru.Copies()
	failures := ru.Failures()
	t.Logf("%q: copied %d of %d repeated bytes in %d calls; copy failures %v", key, total, ru.repeated(), calls, failures)
	if len(failures) > 1 {
		t.Errorf("Put(%q) called CopyFailed %d times, want at most once: %v", key, len(failures), failures)
	}
	if total < 0 || total > ru.repeated() {
		t.Errorf("Put(%q) reported %d bytes copied, outside [0, %d] that the runs cover", key, total, ru.repeated())
	}
	if mustCopy && total == 0 {
		t.Errorf("Put(%q) copied nothing of %d bytes in runs (copy failures: %v)", key, ru.repeated(), failures)
	}
	return got
}

// mustBeBase checks that b's archive is still base, whole, and that its
// key still holds it.
func mustBeBase(t *testing.T, st remote.BaseStore, b remote.Base, base []byte) {
	t.Helper()
	if p, err := st.ReadBase(t.Context(), b, 0, int64(len(base))); err != nil || !bytes.Equal(p, base) {
		t.Errorf("ReadBase of the whole base: %d bytes, %v; want the %d bytes put", len(p), err, len(base))
	}
	if back, m := mustRead(t, st, b.Meta.Key); !bytes.Equal(back, base) || !sameMeta(m, b.Meta) {
		t.Errorf("the base %q reads %d bytes, %+v; want the %d bytes put, %+v", b.Meta.Key, len(back), m, len(base), b.Meta)
	}
}

// testOpenBase: OpenBase and OpenVersion, which a store that copies
// answers alike, return the current version or ErrNotFound.
func (s *baseSuite) testOpenBase(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	for name, open := range map[string]func(context.Context, string) (remote.Base, error){"OpenBase": st.OpenBase, "OpenVersion": st.OpenVersion} {
		if _, err := open(ctx, "nope"); !errors.Is(err, tiercache.ErrNotFound) {
			t.Errorf("%s of a missing key: %v, want ErrNotFound", name, err)
		}
		for i, n := range []int{1000, bigSize} {
			key := fmt.Sprintf("a/%s/%d", name, n)
			data := randBytes(uint64(200+i), n)
			putBase(t, st, key, data)
			b, err := open(ctx, key)
			if err != nil {
				t.Fatalf("%s(%q): %v", name, key, err)
			}
			stat, err := st.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if !sameMeta(b.Meta, stat) || b.Meta.Index != tailIndex(data) || b.Meta.ArchiveSize != int64(n) || b.Meta.SHA256 != sha(data) {
				t.Errorf("%s(%q) meta %+v; want Stat's, %+v, with the index claimed at Put", name, key, b.Meta, stat)
			}
			if p, err := st.ReadBase(ctx, b, 0, int64(n)); err != nil || !bytes.Equal(p, data) {
				t.Errorf("ReadBase of %s(%q): %d bytes, %v", name, key, len(p), err)
			}
			// Near misses of a stored key.
			for _, k := range []string{key[:len(key)-1], key + "0", key + "/"} {
				if _, err := open(ctx, k); !errors.Is(err, tiercache.ErrNotFound) {
					t.Errorf("%s(%q) next to %q: %v, want ErrNotFound", name, k, key, err)
				}
			}
		}
	}
}

func (s *baseSuite) testReadBase(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	data := randBytes(210, bigSize)
	size := int64(len(data))
	b := putBase(t, st, "k", data)
	for _, r := range [][2]int64{
		{0, 1}, {0, size}, {size - 1, 1}, {1234, 100_000},
		{5*mib - 10, 20}, // across the first 5 MiB part's end
		{tailIndex(data).Offset, tailIndex(data).Length},
	} {
		p, err := st.ReadBase(ctx, b, r[0], r[1])
		if err != nil || !bytes.Equal(p, data[r[0]:r[0]+r[1]]) {
			t.Errorf("ReadBase at %d+%d: %d bytes, %v; want the %d stored", r[0], r[1], len(p), err, r[1])
		}
	}
	for _, r := range [][2]int64{
		{-1, 10}, {-5, 3}, {10, -1}, {0, size + 1}, {size, 1}, {size - 1, 2}, {size + 100, 10},
	} {
		if p, err := st.ReadBase(ctx, b, r[0], r[1]); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("ReadBase at %d+%d of %d bytes: %d bytes, %v; want ErrInvalidArgument", r[0], r[1], size, len(p), err)
		}
	}
}

// testBaseVersions: a Base is one version, never another: once its key
// is replaced or deleted, ReadBase gives its bytes or ErrNotFound (a
// store may keep a replaced version for a while), and OpenBase gives the
// new version.
func (s *baseSuite) testBaseVersions(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	v1, v2 := randBytes(220, bigSize), randBytes(221, 3000)
	b1 := putBase(t, st, "k", v1)
	b2 := putBase(t, st, "k", v2)
	if b2.Meta.SHA256 != sha(v2) {
		t.Fatalf("OpenBase after a replace gives %+v, want the new version", b2.Meta)
	}
	readOwn := func(what string, b remote.Base, data []byte) {
		t.Helper()
		p, err := st.ReadBase(ctx, b, 0, int64(len(data)))
		switch {
		case errors.Is(err, tiercache.ErrNotFound):
		case err != nil:
			t.Errorf("ReadBase of %s: %v, want its bytes or ErrNotFound", what, err)
		case !bytes.Equal(p, data):
			t.Errorf("ReadBase of %s read %d bytes that are not its own", what, len(p))
		}
		// A short read must not reach another version either.
		p, err = st.ReadBase(ctx, b, 0, 100)
		if err == nil && !bytes.Equal(p, data[:100]) {
			t.Errorf("ReadBase of %s's first 100 bytes read another version's", what)
		}
	}
	readOwn("a replaced version", b1, v1)
	if p, err := st.ReadBase(ctx, b2, 0, int64(len(v2))); err != nil || !bytes.Equal(p, v2) {
		t.Errorf("ReadBase of the current version: %d bytes, %v", len(p), err)
	}
	if err := st.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenBase(ctx, "k"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("OpenBase of a deleted key: %v, want ErrNotFound", err)
	}
	readOwn("a deleted version", b2, v2)
	readOwn("a replaced version, its key deleted", b1, v1)
	// The key put again is a version of its own.
	v3 := randBytes(222, 2000)
	putBase(t, st, "k", v3)
	readOwn("a deleted version, its key put again", b2, v2)
}

// testCopyRuns: a put whose stream repeats long runs of a base commits
// exactly the stream, copying some of the runs; alone, or as a
// Digester and Indexer too (as the tiered cache's stream is). The base
// stays as it was.
func (s *baseSuite) testCopyRuns(t *testing.T) {
	st := s.newStore(t)
	base := randBytes(230, reuseSize)
	b := putBase(t, st, "base", base)
	data, runs := edited(base)

	ru := NewReuser(b, data, runs...)
	putReusing(t, st, "new/plain", ru, ru, data, true)

	ru = NewReuser(b, data, runs...)
	idx := tailIndex(data)
	got := putReusing(t, st, "new/digest", digestIndexReuser{Reuser: ru, sum: sha(data), index: idx}, ru, data, true)
	if got.Index != idx {
		t.Errorf("Put through a Reuser that is an Indexer recorded index %+v, want %+v", got.Index, idx)
	}
	mustBeBase(t, st, b, base)
}

// testBaseDeleted: the base deleted between OpenBase and the put: the
// put commits exactly its stream, whatever it could copy.
func (s *baseSuite) testBaseDeleted(t *testing.T) {
	st := s.newStore(t)
	base := randBytes(240, reuseSize)
	b := putBase(t, st, "base", base)
	if err := st.Delete(t.Context(), "base"); err != nil {
		t.Fatal(err)
	}
	data, runs := edited(base)
	ru := NewReuser(b, data, runs...)
	putReusing(t, st, "new", ru, ru, data, false)
	mustMiss(t, st, "base")
}

// testBaseReplaced: the base's key replaced between OpenBase and the
// put, as a concurrent push does: a put of another key, and one of the
// base's own key, commit exactly their stream, whatever they could copy.
func (s *baseSuite) testBaseReplaced(t *testing.T) {
	st := s.newStore(t)
	base := randBytes(250, reuseSize)
	b := putBase(t, st, "base", base)
	other := randBytes(251, reuseSize)
	mustPut(t, st, remote.Meta{Key: "base"}, other)
	data, runs := edited(base)
	for _, key := range []string{"new", "base"} {
		ru := NewReuser(b, data, runs...)
		putReusing(t, st, key, ru, ru, data, false)
	}
}

// testRenamed: a stream that repeats the whole base (a key renamed, the
// same tree pushed again) commits the same archive; a long one copies
// some of it.
func (s *baseSuite) testRenamed(t *testing.T) {
	st := s.newStore(t)
	for i, n := range []int{1000, reuseSize} {
		data := randBytes(uint64(260+i), n)
		b := putBase(t, st, fmt.Sprintf("old/%d", n), data)
		ru := NewReuser(b, data, Span{Off: 0, BaseOff: 0, N: int64(n)})
		got := putReusing(t, st, fmt.Sprintf("renamed/%d", n), ru, ru, data, n >= reuseSize)
		if got.SHA256 != b.Meta.SHA256 {
			t.Errorf("the renamed archive's SHA-256 is %s, the base's %s", got.SHA256, b.Meta.SHA256)
		}
		mustBeBase(t, st, b, data)
	}
}

// testBaseCancelled: OpenBase and ReadBase honour their context.
func (s *baseSuite) testBaseCancelled(t *testing.T) {
	st := s.newStore(t)
	b := putBase(t, st, "k", randBytes(270, 1000))
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.OpenBase(done, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("OpenBase with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := st.ReadBase(done, b, 0, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadBase with a cancelled context: %v, want context.Canceled", err)
	}
}
