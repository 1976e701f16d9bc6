package tiered

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// gatedStore is a memstore.Store whose next Open, once armed, holds its
// stream at the end: the download has every byte, and the hydration
// reading it has not committed anything yet.
type gatedStore struct {
	*memstore.Store
	armed   atomic.Bool
	reached chan struct{} // closed when the armed stream is at its end
	release chan struct{} // closed to let it end
}

func newGatedStore() *gatedStore {
	return &gatedStore{Store: memstore.New(), reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedStore) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	rc, m, err := g.Store.Open(ctx, key)
	if err != nil || !g.armed.CompareAndSwap(true, false) {
		return rc, m, err
	}
	return &gatedReader{ReadCloser: rc, g: g}, m, nil
}

type gatedReader struct {
	io.ReadCloser
	g    *gatedStore
	once sync.Once
}

func (r *gatedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF {
		r.once.Do(func() {
			close(r.g.reached)
			<-r.g.release
		})
	}
	return n, err
}

// versionTree makes a tree whose one file names its version; each
// version has another size, so a push of one over the other uploads.
func versionTree(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), version)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "version"), []byte(version), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readVersion(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "version"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPushRacingHydrationKeepsNewerLocal pauses a hydration of v1 between
// its download and its local commit while another process on the same
// machine pushes v2 of the key: the local tier must end with v2, as the
// remote does, whoever commits last; the hydrating caller is served the
// v1 it downloaded.
func TestPushRacingHydrationKeepsNewerLocal(t *testing.T) {
	for _, tc := range []struct {
		name string
		// hydrate fetches key through c, which misses locally, and
		// returns the directory it was served.
		hydrate func(ctx context.Context, c *Cache, dir string) (string, error)
	}{
		{"Get", func(ctx context.Context, c *Cache, _ string) (string, error) {
			p, _, err := c.Get(ctx, "k")
			return p, err
		}},
		{"Pull", func(ctx context.Context, c *Cache, dir string) (string, error) {
			h, _, err := c.Pull(ctx, "k", nil, dir, PullOptions{})
			return h.Path, err
		}},
		{"PullLink", func(ctx context.Context, c *Cache, dir string) (string, error) {
			h, _, err := c.Pull(ctx, "k", nil, dir, PullOptions{Link: true})
			return h.Path, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			store := newGatedStore()
			elsewhere := newTiered(t, nil, Options{Remote: store})
			if _, err := elsewhere.Push(ctx, "k", versionTree(t, "v1"), PushOptions{Description: "v1"}); err != nil {
				t.Fatal(err)
			}
			// Two processes of one machine: each opens the local root
			// itself, so only the root's own locks order them.
			root := filepath.Join(t.TempDir(), "cache")
			open := func() *Cache {
				l, err := local.Open(root, local.Options{})
				if err != nil {
					t.Fatal(err)
				}
				c, err := New(l, Options{Remote: store})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			puller, pusher := open(), open()

			store.armed.Store(true)
			type out struct {
				path string
				err  error
			}
			done := make(chan out, 1)
			dir := filepath.Join(t.TempDir(), "dir")
			go func() {
				p, err := tc.hydrate(ctx, puller, dir)
				done <- out{p, err}
			}()
			select {
			case <-store.reached:
			case r := <-done:
				t.Fatalf("hydration ended before its download did: %+v", r)
			case <-time.After(30 * time.Second):
				t.Fatal("the hydration never read its download to the end")
			}
			if _, err := pusher.Push(ctx, "k", versionTree(t, "v2-newer"), PushOptions{Description: "v2"}); err != nil {
				t.Fatalf("push while a hydration holds the key: %v", err)
			}
			close(store.release)
			var r out
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the hydration never ended")
			}
			if r.err != nil {
				t.Fatalf("hydration: %v", r.err)
			}
			if got := readVersion(t, r.path); got != "v1" {
				t.Errorf("the hydrating caller was served %q, want the v1 it downloaded", got)
			}

			rm, err := store.Stat(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			s, ok, err := puller.local.Lookup(ctx, "k")
			if err != nil || !ok {
				t.Fatalf("local lookup: %v %v", ok, err)
			}
			if s.Entry.Description != "v2" || s.SHA256 != rm.SHA256 {
				t.Fatalf("the local tier holds %q (SHA-256 %s) while the remote holds %q (%s): a hydration committed after a newer push", s.Entry.Description, s.SHA256, rm.Description, rm.SHA256)
			}
			again := filepath.Join(t.TempDir(), "again")
			h, ok, err := puller.Pull(ctx, "k", nil, again, PullOptions{})
			if err != nil || !ok {
				t.Fatalf("pull after the race: %v %v", ok, err)
			}
			if got := readVersion(t, again); got != "v2-newer" || h.Tier != "local" {
				t.Fatalf("pull after the race restored %q from the %s tier, want v2-newer from the local one", got, h.Tier)
			}
		})
	}
}
