package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

var _ remote.BaseStore = (*Store)(nil)

// ref names the version id of key; the id comes first, since keys may
// hold any byte.
func ref(id uint64, key string) string {
	return strconv.FormatUint(id, 10) + "/" + key
}

// parseRef undoes ref, with an error wrapping
// tiercache.ErrInvalidArgument for a Ref this store never made.
func parseRef(r string) (id uint64, key string, err error) {
	ids, key, ok := strings.Cut(r, "/")
	if ok {
		id, err = strconv.ParseUint(ids, 10, 64)
	}
	if !ok || err != nil || id == 0 {
		return 0, "", fmt.Errorf("%w: memstore: base ref %q is not one of this store's", tiercache.ErrInvalidArgument, r)
	}
	return id, key, nil
}

// version returns the data of the version a Ref names, if it is still
// the current version of its key.
func (s *Store) version(id uint64, key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok || e.id != id {
		return nil, false
	}
	return e.data, true
}

func baseGone(key string) error {
	return fmt.Errorf("memstore: the base version of key %q is gone (deleted, pruned or replaced): %w", key, tiercache.ErrNotFound)
}

// OpenBase returns key's current version, as OpenVersion does: this
// store always copies.
func (s *Store) OpenBase(ctx context.Context, key string) (remote.Base, error) {
	return s.OpenVersion(ctx, key)
}

// OpenVersion returns key's current version. Its Ref reaches only that
// version: once the key is replaced, deleted or pruned, ReadBase fails
// and copies from it stop.
func (s *Store) OpenVersion(ctx context.Context, key string) (remote.Base, error) {
	if err := tiercache.ValidateStoredKey(key); err != nil {
		return remote.Base{}, err
	}
	if err := ctx.Err(); err != nil {
		return remote.Base{}, fmt.Errorf("memstore: open base %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return remote.Base{}, notFound(key)
	}
	return remote.Base{Meta: e.meta, Ref: ref(e.id, key)}, nil
}

// ReadBase returns a copy of the n bytes of b's archive at off. The
// range is checked against the archive as stored, which Corrupt may
// have resized, as a ranged read of a damaged object would be.
func (s *Store) ReadBase(ctx context.Context, b remote.Base, off, n int64) ([]byte, error) {
	id, key, err := parseRef(b.Ref)
	if err != nil {
		return nil, err
	}
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("%w: memstore: read of base %q at %d+%d", tiercache.ErrInvalidArgument, key, off, n)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: read base %q: %w", key, err)
	}
	data, ok := s.version(id, key)
	if !ok {
		return nil, baseGone(key)
	}
	if off > int64(len(data))-n {
		return nil, fmt.Errorf("%w: memstore: read of base %q at %d+%d outside its %d bytes", tiercache.ErrInvalidArgument, key, off, n, len(data))
	}
	return bytes.Clone(data[off : off+n]), nil
}

// SetCopyRefused makes every later Put with a remote.Reuser copy
// nothing and call its CopyFailed with err, once, as a server that does
// not implement copies would. A nil err lets puts copy again.
func (s *Store) SetCopyRefused(err error) {
	if err == nil {
		s.copyRefusal.Store(nil)
		return
	}
	s.copyRefusal.Store(&err)
}

// copying returns what Put reads: r, or a copier if r is a Reuser.
func (s *Store) copying(r io.Reader) io.Reader {
	ru, ok := r.(remote.Reuser)
	if !ok {
		return r
	}
	c := &copier{s: s, r: ru}
	if e := s.copyRefusal.Load(); e != nil {
		c.stop(*e)
		return c
	}
	id, key, err := parseRef(ru.Base().Ref)
	if err != nil {
		c.stop(err)
		return c
	}
	c.id, c.key = id, key
	return c
}

// copier reads a Reuser's stream for Put and "copies" the runs it
// reports as it goes: the bytes are read and kept anyway (a real store
// would skip uploading them), so a copy here is a check that the run
// repeats the base, where a server-side copy would store the base's
// bytes whatever the stream said. There is no minimum part size: a run
// of any length is copied.
type copier struct {
	s       *Store
	r       remote.Reuser
	id      uint64 // the base version
	key     string
	off     int64 // stream bytes read so far
	stopped bool
}

func (c *copier) stop(err error) {
	c.stopped = true
	c.r.CopyFailed(err)
}

// Read reads from the Reuser, then copies the runs in what it read: the
// one the read starts in, and the next one each time a run ends inside
// the read. A stretch of the read in no run ends the read's copying, as
// the real caller's reads never span two frames.
func (c *copier) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.stopped {
		if cerr := c.copyRuns(p[:n]); cerr != nil {
			return n, cerr
		}
	}
	c.off += int64(n)
	return n, err
}

// copyRuns copies the runs of b, the stream's bytes at c.off.
func (c *copier) copyRuns(b []byte) error {
	end := c.off + int64(len(b))
	for pos := c.off; pos < end && !c.stopped; {
		baseOff, n := c.r.Reused(pos)
		if n <= 0 {
			return nil
		}
		n = min(n, end-pos)
		if err := c.copyRange(pos, b[pos-c.off:pos-c.off+n], baseOff); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// copyRange copies seg, the stream's bytes at off, which the Reuser
// says repeat the base's at baseOff.
func (c *copier) copyRange(off int64, seg []byte, baseOff int64) error {
	data, ok := c.s.version(c.id, c.key)
	if !ok {
		c.stop(baseGone(c.key))
		return nil
	}
	n := int64(len(seg))
	if baseOff < 0 || baseOff > int64(len(data))-n || !bytes.Equal(seg, data[baseOff:baseOff+n]) {
		return fmt.Errorf("%w: memstore: the stream's bytes at %d+%d are not base %q's at %d, as the reader reported", tiercache.ErrIntegrity, off, n, c.key, baseOff)
	}
	c.r.Copied(off, n)
	return nil
}
