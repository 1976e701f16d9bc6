package archive

import (
	"errors"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// Extraction spends most of its time in the kernel creating files, not in
// decompression, so small files are handed to a few writer goroutines
// while the stream goes on being decoded: the reader keeps every check
// (names, claims, limits) and the writers only create, fill, chmod and
// stamp a file the reader already vetted.
const (
	// DefaultWriters is the number of writer goroutines when
	// ExtractOptions.Writers is zero.
	DefaultWriters = 4
	// pooledFileMax is the largest file handed to a writer; larger ones
	// are streamed by the reader itself so memory stays bounded.
	pooledFileMax = 1 << maxBufShift
	// pendingJobs bounds the files read but not yet written, so at most
	// (pendingJobs + writers) × pooledFileMax bytes wait in memory.
	pendingJobs = 16
)

// Small files are read into buffers recycled through pools, one per
// power-of-two size from minBuf to pooledFileMax: allocating each afresh
// made 400 MB of garbage per 400 MB tree, and the collector ran about 45
// times in a one-second extraction.
const (
	minBufShift = 12 // 4 KiB
	maxBufShift = 20 // pooledFileMax
	bufClasses  = maxBufShift - minBufShift + 1
)

var bufPools [bufClasses]sync.Pool

// bufClass is the index of the smallest pool whose buffers hold n bytes.
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}

// getBuf returns a buffer of length n (at most pooledFileMax).
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+minBufShift))
	return &b
}

// putBuf gives a buffer from getBuf back for reuse.
func putBuf(b *[]byte) {
	bufPools[bufClass(cap(*b))].Put(b)
}

// dirHandle is a Root on a directory of the tree, shared by the handle
// cache and the writer jobs in that directory: the last to let go closes
// it.
type dirHandle struct {
	name string // relative to the destination
	path string // the destination joined with name, for errors
	root *os.Root
	refs atomic.Int32
	// The directory's descriptor, where files are created through one
	// (see createFile).
	dirDesc
}

func newDirHandle(name, path string, root *os.Root) *dirHandle {
	h := &dirHandle{name: name, path: path, root: root}
	h.refs.Store(1)
	return h
}

func (h *dirHandle) acquire() { h.refs.Add(1) }

func (h *dirHandle) release() {
	if h.refs.Add(-1) == 0 {
		h.dirDesc.close()
		h.root.Close()
	}
}

// fileJob is one file for a writer to create: a small one read whole,
// or a large one whose data follows in chunks as the reader reads it.
type fileJob struct {
	dir   *dirHandle // holds a reference for the job
	base  string     // name inside dir
	raw   string     // the member's name as archived, for errors
	name  string     // cleaned name, for errors
	buf   *[]byte    // a small file's data, in a pooled buffer (see getBuf)
	mode  fs.FileMode
	mtime time.Time

	// chunks carries a large file's data, in pooled buffers of
	// pooledFileMax bytes; the reader closes it at the end, after setting
	// aborted if the member failed (the file is then removed).
	chunks  chan *[]byte
	aborted atomic.Bool
}

// Large files go to the writers in chunks, so that the reader goes on to
// the next member while one is written: at most chunkTokens chunks (of
// pooledFileMax bytes) are read and not yet written, across all files.
const (
	chunkTokens = 16
	chunkQueue  = 4 // chunks queued per file
)

// errChunksAborted ends a large file whose member the reader refused
// midway; the reader reports the reason itself.
var errChunksAborted = errors.New("archive: member aborted")

// writerPool runs fileJobs. After the first failure the remaining jobs are
// dropped; the reader learns of it through err and stops.
type writerPool struct {
	jobs    chan *fileJob
	tokens  chan struct{}  // chunks a large file may hold (see chunkTokens)
	pending sync.WaitGroup // jobs submitted and not finished
	workers sync.WaitGroup
	mu      sync.Mutex
	first   error
	failed  atomic.Bool
	create  func(raw, name string, err error) error // extractor.createErr
	umask   int                                     // the extraction's (see createMember)
}

func newWriterPool(n, umask int, create func(raw, name string, err error) error) *writerPool {
	p := &writerPool{jobs: make(chan *fileJob, pendingJobs), tokens: make(chan struct{}, chunkTokens), create: create, umask: umask}
	for range n {
		p.workers.Add(1)
		go p.work()
	}
	return p
}

func (p *writerPool) work() {
	defer p.workers.Done()
	for j := range p.jobs {
		if !p.failed.Load() {
			if err := p.write(j); err != nil && !errors.Is(err, errChunksAborted) {
				p.fail(err)
			}
		}
		if j.chunks != nil {
			// Whatever was not written: the reader may still be sending.
			for b := range j.chunks {
				p.done(b)
			}
		}
		j.dir.release()
		if j.buf != nil {
			putBuf(j.buf)
		}
		p.pending.Done()
	}
}

// done gives back a written (or dropped) chunk and its token.
func (p *writerPool) done(b *[]byte) {
	putBuf(b)
	<-p.tokens
}

// write creates the file exactly as the reader does for large ones.
func (p *writerPool) write(j *fileJob) error {
	cerr, err := createMember(j.dir, j.base, j.raw, j.mode, p.umask, j.mtime, func(w io.Writer) error {
		if j.chunks == nil {
			if _, err := w.Write(*j.buf); err != nil {
				return extractErr(j.raw, err)
			}
			return nil
		}
		for b := range j.chunks {
			_, err := w.Write(*b)
			p.done(b)
			if err != nil {
				return extractErr(j.raw, err)
			}
		}
		if j.aborted.Load() {
			return errChunksAborted
		}
		return nil
	})
	if cerr != nil {
		return p.create(j.raw, j.name, cerr)
	}
	return err
}

// createMember creates base in dir, the member raw (for errors), fills it
// and gives it mode and mtime. The file is created exclusive (never an
// existing file, never through a symlink) and writable through its
// descriptor whatever its mode: with its final mode where the umask
// leaves that intact (saving a chmod), else private and chmodded after
// the data. A failed create is returned as createErr, for the caller to
// judge; fill's errors come back as they are.
func createMember(dir *dirHandle, base, raw string, mode fs.FileMode, umask int, mtime time.Time, fill func(io.Writer) error) (createErr, err error) {
	create, chmod := fsutil.CreateMode(mode, umask)
	f, err := createFile(dir, base, create)
	if err != nil {
		return err, nil
	}
	if err := fill(f); err != nil {
		f.Abort()
		return nil, err
	}
	if chmod {
		if err := f.Chmod(mode); err != nil {
			f.Abort()
			return nil, extractErr(raw, err)
		}
	}
	if err := f.Finish(mtime); err != nil {
		return nil, extractErr(raw, err)
	}
	return nil, nil
}

func (p *writerPool) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first == nil {
		p.first = err
		p.failed.Store(true)
	}
}

// err returns the first failure so far.
func (p *writerPool) err() error {
	if !p.failed.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first
}

func (p *writerPool) submit(j *fileJob) {
	p.pending.Add(1)
	p.jobs <- j
}

// flush waits until every submitted file is written (or dropped) and
// returns the first failure.
func (p *writerPool) flush() error {
	p.pending.Wait()
	return p.err()
}

// stop ends the writers once the queue is drained. Extract returns only
// after it, so no file is written into dir after Extract returned.
func (p *writerPool) stop() {
	close(p.jobs)
	p.workers.Wait()
}
