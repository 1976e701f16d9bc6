package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// TestPutMetaWithinLimitsIsReadable: metadata within the limits
// (tiercache.ValidatePaths', and a description as long as the local tier
// accepts) is refused up front or commits an entry that reads back,
// never one whose manifest is too large for its readers.
func TestPutMetaWithinLimitsIsReadable(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	// As many paths as allowed, as long as the total allows, and as few
	// paths as long as each may be.
	paths := make([]string, tiercache.MaxPaths)
	for i := range paths {
		paths[i] = fmt.Sprintf("p%04d/", i) + strings.Repeat("x", tiercache.MaxPathsLen/tiercache.MaxPaths-6)
	}
	long := make([]string, tiercache.MaxPathsLen/tiercache.MaxPathLen)
	for i := range long {
		long[i] = fmt.Sprintf("p%02d/", i) + strings.Repeat("x", tiercache.MaxPathLen-4)
	}
	for _, p := range [][]string{paths, long} {
		if err := tiercache.ValidatePaths(p); err != nil {
			t.Fatalf("paths not valid: %v", err)
		}
	}
	cases := map[string]remote.Meta{
		"paths":       {Key: "paths", Paths: paths},
		"long paths":  {Key: "long", Paths: long},
		"description": {Key: "desc", Description: strings.Repeat("d", 64<<10), Paths: paths},
	}
	for name, meta := range cases {
		t.Run(name, func(t *testing.T) {
			data := []byte("archive bytes")
			if _, err := s.Put(bg, meta, bytes.NewReader(data)); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := readAll(t, s, meta.Key)
			if err != nil {
				t.Fatalf("Put committed the entry, but Open fails: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read back %q", got)
			}
		})
	}
	// Paths whose every byte JSON escapes take six times their length:
	// refused before anything is uploaded.
	for i := range paths {
		paths[i] = fmt.Sprintf("p%04d/", i) + strings.Repeat("<", tiercache.MaxPathsLen/tiercache.MaxPaths-6)
	}
	if err := tiercache.ValidatePaths(paths); err != nil {
		t.Fatalf("paths not valid: %v", err)
	}
	e.rec.reset()
	_, err := s.Put(bg, remote.Meta{Key: "big", Paths: paths}, bytes.NewReader([]byte("archive bytes")))
	if !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), "description and paths") {
		t.Fatalf("Put of metadata too large for a manifest: %v; want ErrInvalidArgument naming it", err)
	}
	if n := len(e.rec.requests(func(r request) bool { return r.method == http.MethodPut || r.method == http.MethodPost })); n != 0 {
		t.Errorf("the refused Put sent %d write requests; want none", n)
	}
}

// TestPutRefusesWhenOldManifestUnreadable: a Put that cannot read the
// key's current manifest (a server error, after the SDK's retries) must
// not replace it with an empty history: the version it replaced would
// lose its grace, and Prune would delete it under a reader at once.
func TestPutRefusesWhenOldManifestUnreadable(t *testing.T) {
	e := newEnv(t)
	const grace = 3 * time.Second
	s := e.store(t, func(c *Config) { c.Concurrency = 1; c.OrphanGrace = grace })
	v1, v2 := randBytes(71, 6*MinPartSize), randBytes(72, 1000)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(grace + 1500*time.Millisecond) // v1's upload is now older than the grace

	rc, _, err := s.Open(bg, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}

	// The Put's look at the current manifest meets a server error.
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/"+manifestsDir) {
			return &http.Response{
				StatusCode: http.StatusInternalServerError,
				Header:     http.Header{"X-Amz-Request-Id": {"x"}, "Content-Type": {"application/xml"}},
				Body:       io.NopCloser(strings.NewReader("<Error><Code>InternalError</Code><Message>boom</Message></Error>")),
				Request:    req,
			}
		}
		return nil
	})
	_, err = s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v2))
	e.rec.setFault(nil)
	if err == nil || !strings.Contains(err.Error(), "nothing was replaced") {
		t.Errorf("Put while the current manifest cannot be read: %v; want it refused", err)
	}
	if m, err := s.Stat(bg, "k"); err != nil || m.ArchiveSize != int64(len(v1)) {
		t.Errorf("after the refused Put, Stat = %+v, %v; want v1", m, err)
	}
	// Within the grace of the replacement.
	if _, err := s.Prune(bg, policy.Limits{}); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("a reader of the version replaced a moment ago fails after Prune: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, v1) {
		t.Fatal("the reader got other bytes")
	}
}

// stallAfter yields n bytes of body, then blocks until ctx ends.
type stallAfter struct {
	body io.ReadCloser
	n    int
	ctx  interface{ Done() <-chan struct{} }
}

func (b *stallAfter) Read(p []byte) (int, error) {
	if b.n <= 0 {
		<-b.ctx.Done()
		return 0, errors.New("stalled body cut off")
	}
	p = p[:min(len(p), b.n)]
	k, err := b.body.Read(p)
	b.n -= k
	return k, err
}

func (b *stallAfter) Close() error { return b.body.Close() }

// TestCloseStopsFirstRange: Close stops the first range's download too
// (requested by Open), instead of waiting until it ends by itself: on a
// stalled server, until the idle timeout cuts it off.
func TestCloseStopsFirstRange(t *testing.T) {
	e := newEnv(t)
	const idle = 5 * time.Second
	s := e.store(t, func(c *Config) { c.IdleTimeout = idle })
	data := randBytes(81, 3*MinPartSize)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	e.rec.setBody(func(req *http.Request, _ int, body io.ReadCloser) io.ReadCloser {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/"+dataDir) {
			return &stallAfter{body: body, n: 1000, ctx: req.Context()}
		}
		return body
	})
	defer e.rec.setBody(nil)
	rc, _, err := s.Open(bg, "k")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	rc.Close()
	if d := time.Since(start); d > idle/2 {
		t.Fatalf("Close took %v: it waited for the stalled first range instead of stopping it", d.Round(time.Millisecond))
	}
}
