package tiered

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// heldStore is a memstore.Store whose Puts of the descriptions in hold
// stop at the end of their stream until released: by then the push has
// committed its local copy (the stream ends only after that), and the
// upload has committed nothing yet. So a test orders the two commits of
// each push across pushes at will.
type heldStore struct {
	*memstore.Store
	mu   sync.Mutex
	hold map[string]*held
}

type held struct {
	reached chan struct{} // closed when the Put has read its stream
	release chan struct{} // closed to let it commit
}

func newHeldStore(descriptions ...string) *heldStore {
	g := &heldStore{Store: memstore.New(), hold: map[string]*held{}}
	for _, d := range descriptions {
		g.hold[d] = &held{reached: make(chan struct{}), release: make(chan struct{})}
	}
	return g
}

func (g *heldStore) Put(ctx context.Context, meta remote.Meta, r io.Reader) (remote.Meta, error) {
	g.mu.Lock()
	h := g.hold[meta.Description]
	delete(g.hold, meta.Description)
	g.mu.Unlock()
	if h == nil {
		return g.Store.Put(ctx, meta, r)
	}
	return g.Store.Put(ctx, meta, &heldReader{r: r, h: h})
}

// heldReader holds its EOF until released, and passes on what the
// push's reader claims at its end.
type heldReader struct {
	r    io.Reader
	h    *held
	once sync.Once
}

func (x *heldReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err == io.EOF {
		x.once.Do(func() {
			close(x.h.reached)
			<-x.h.release
		})
	}
	return n, err
}

func (x *heldReader) SHA256() string { return x.r.(remote.Digester).SHA256() }

func (x *heldReader) Index() remote.IndexInfo { return x.r.(remote.Indexer).Index() }

func (x *heldReader) Signature() *tiercache.Signature { return remote.ReaderSignature(x.r) }

// pushers are the two ways to push a tree to both tiers.
var pushers = []struct {
	name string
	push func(ctx context.Context, c *Cache, key, dir, description string) error
}{
	{"Push", func(ctx context.Context, c *Cache, key, dir, description string) error {
		_, err := c.Push(ctx, key, dir, PushOptions{Description: description})
		return err
	}},
	{"PutResult", func(ctx context.Context, c *Cache, key, dir, description string) error {
		_, err := c.PutResult(ctx, key, dir, description)
		return err
	}},
}

// oneMachine opens n Caches on one local root with opts, as n processes
// of one machine would: only the root's own locks order them.
func oneMachine(t *testing.T, opts Options, n int) []*Cache {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cache")
	var cs []*Cache
	for range n {
		l, err := local.Open(root, local.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(l, opts)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// wait returns what ch yields, failing the test if that takes too long.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never happened", what)
	}
	panic("unreachable")
}

// assertTiersAgree fails unless c's local tier holds key's remote
// version, or nothing: a local hit must restore what every other machine
// pulls.
func assertTiersAgree(t *testing.T, c *Cache, store remote.Store, key string) {
	t.Helper()
	ctx := t.Context()
	rm, err := store.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	s, ok, err := c.local.Lookup(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if ok && (s.SHA256 != rm.SHA256 || s.Entry.Description != rm.Description) {
		t.Fatalf("the local tier holds %q (SHA-256 %s) while the remote holds %q (%s): this machine restores one tree, every other the other", s.Entry.Description, s.SHA256, rm.Description, rm.SHA256)
	}
	dir := filepath.Join(t.TempDir(), "pulled")
	if _, ok, err := c.Pull(ctx, key, nil, dir, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull: %v %v", ok, err)
	}
	if got := readVersion(t, dir); got != rm.Description {
		t.Fatalf("a pull on the pushing machine restored %q, the remote holds %q", got, rm.Description)
	}
}

// TestConcurrentPushesLeaveTiersAgreeing holds the upload of a push of
// version a once a's local copy is committed, and pushes version b of
// the key meanwhile on the same machine. Unordered, b committed both
// tiers while a was held, then a's upload replaced b remotely: the local
// tier kept b, the remote a. Ordered, b waits for a's upload before its
// own local commit, and both tiers end with b.
func TestConcurrentPushesLeaveTiersAgreeing(t *testing.T) {
	for _, p := range pushers {
		t.Run(p.name, func(t *testing.T) {
			ctx := t.Context()
			store := newHeldStore("a")
			waits := make(chan struct{}, 2)
			cs := oneMachine(t, Options{Remote: store, Progress: func(pr Progress) {
				if pr.Op == "wait-push" {
					waits <- struct{}{}
				}
			}}, 2)
			push := func(c *Cache, version string) <-chan error {
				done := make(chan error, 1)
				dir := versionTree(t, version)
				go func() { done <- p.push(ctx, c, "k", dir, version) }()
				return done
			}
			a := store.hold["a"]
			aDone := push(cs[0], "a")
			wait(t, a.reached, "a's local commit")
			bDone := push(cs[1], "b-other")
			var bErr <-chan error = bDone
			select {
			case <-waits:
			case err := <-bDone:
				// b never waited: let a commit last, as it then could.
				t.Logf("b's push ended while a's upload was held: %v", err)
				ch := make(chan error, 1)
				ch <- err
				bErr = ch
			case <-time.After(30 * time.Second):
				t.Fatal("b's push neither waited for a's nor ended")
			}
			close(a.release)
			if err := wait(t, aDone, "a's push"); err != nil {
				t.Fatal(err)
			}
			if err := wait(t, bErr, "b's push"); err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				assertTiersAgree(t, c, store, "k")
			}
			if s, ok, err := cs[0].local.Lookup(ctx, "k"); err != nil || !ok || s.Entry.Description != "b-other" {
				t.Fatalf("the local tier holds %q (%v, %v), want b-other, the last push", s.Entry.Description, ok, err)
			}
		})
	}
}

// TestSkippedUploadRacingPushLeavesTiersAgreeing pauses a push of the
// tree the remote already holds (v1) after it saw v1 there, while
// another push of the machine commits v2 in both tiers; the first then
// stores v1 locally and skips its upload. The local tier must not keep
// v1 while the remote holds v2.
func TestSkippedUploadRacingPushLeavesTiersAgreeing(t *testing.T) {
	for _, p := range pushers {
		t.Run(p.name, func(t *testing.T) {
			ctx := t.Context()
			store := memstore.New()
			elsewhere := newTiered(t, store, Options{})
			v1 := versionTree(t, "v1")
			if _, err := elsewhere.Push(ctx, "k", v1, PushOptions{Description: "v1"}); err != nil {
				t.Fatal(err)
			}
			cs := oneMachine(t, Options{Remote: store}, 2)

			var once atomic.Bool
			reached, release := make(chan struct{}), make(chan struct{})
			testHookMeasured = func() {
				if once.CompareAndSwap(false, true) {
					close(reached)
					<-release
				}
			}
			t.Cleanup(func() { testHookMeasured = nil })
			done := make(chan error, 1)
			go func() { done <- p.push(ctx, cs[0], "k", v1, "v1") }()
			wait(t, reached, "the v1 push's plan")
			if err := p.push(ctx, cs[1], "k", versionTree(t, "v2-newer"), "v2-newer"); err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := wait(t, done, "the v1 push"); err != nil {
				t.Fatal(err)
			}
			if rm, err := store.Stat(ctx, "k"); err != nil || rm.Description != "v2-newer" {
				t.Fatalf("the remote holds %q (%v), want v2-newer", rm.Description, err)
			}
			for _, c := range cs {
				assertTiersAgree(t, c, store, "k")
			}
		})
	}
}
