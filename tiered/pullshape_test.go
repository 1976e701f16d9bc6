package tiered

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// readCountingStore counts the archive bytes read from the streams its
// Store opens: a pull refused up front reads none.
type readCountingStore struct {
	remote.Store
	read atomic.Int64
}

func (s *readCountingStore) Open(ctx context.Context, key string) (io.ReadCloser, remote.Meta, error) {
	rc, m, err := s.Store.Open(ctx, key)
	if err != nil {
		return rc, m, err
	}
	return &countedStream{ReadCloser: rc, n: &s.read}, m, nil
}

type countedStream struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r *countedStream) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// shapeCaches pushes "tree" (one directory's tree) and "file" (one
// file) through a Cache over a counting store, and returns that Cache
// (whose local tier holds both archives) and the store.
func shapeCaches(t *testing.T) (*Cache, *readCountingStore) {
	t.Helper()
	store := &readCountingStore{Store: memstore.New()}
	c, err := New(newLocal(t), Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	srcDir, srcFile := pathsSource(t)
	if _, err := c.Push(t.Context(), "tree", srcDir, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushPaths(t.Context(), "file", []string{srcFile}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	return c, store
}

// onlyName fails unless dir's parent holds dir alone: no stage left
// beside it.
func onlyName(t *testing.T, dir string) {
	t.Helper()
	names, err := dirNames(filepath.Dir(dir))
	if err != nil || !slices.Equal(names, []string{filepath.Base(dir)}) {
		t.Errorf("beside %s: %q, %v; want nothing else", dir, names, err)
	}
}

// TestPullShapeMismatchUpFront: a pull into one path of an entry that
// holds a directory where a file is, or a file where a directory is,
// fails once the manifest is read, naming the path, before any archive
// byte is read or extracted and before the local tier gains anything:
// from the remote (cold), from the local archive (warm), from the local
// tree (Link), and with NoLocal.
func TestPullShapeMismatchUpFront(t *testing.T) {
	warm, store := shapeCaches(t)
	for _, shape := range []struct {
		key, want string
		// make puts what is in the way at dir and says how to tell it
		// is unchanged.
		make func(t *testing.T, dir string) func() bool
	}{
		{"tree", " is not a directory; the entry holds a directory there", func(t *testing.T, dir string) func() bool {
			if err := os.WriteFile(dir, []byte("in the way"), 0o644); err != nil {
				t.Fatal(err)
			}
			return func() bool { b, err := os.ReadFile(dir); return err == nil && string(b) == "in the way" }
		}},
		{"file", " is a directory; the entry holds a file there", func(t *testing.T, dir string) func() bool {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			return func() bool {
				names, err := dirNames(dir)
				return err == nil && slices.Equal(names, []string{"keep"})
			}
		}},
	} {
		for _, tc := range []struct {
			name string
			cold bool // over an empty local tier
			opts PullOptions
			nl   bool // NoLocal
		}{
			{"cold", true, PullOptions{}, false},
			{"cold-link", true, PullOptions{Link: true}, false},
			{"warm", false, PullOptions{}, false},
			{"warm-link", false, PullOptions{Link: true}, false},
			{"no-local", false, PullOptions{}, true},
			// A lookup fails as the pull it stands for would.
			{"cold-lookup", true, PullOptions{LookupOnly: true}, false},
			{"warm-lookup", false, PullOptions{LookupOnly: true}, false},
			{"no-local-lookup", false, PullOptions{LookupOnly: true}, true},
		} {
			t.Run(shape.key+"/"+tc.name, func(t *testing.T) {
				c := warm
				switch {
				case tc.nl:
					var err error
					if c, err = New(nil, Options{Remote: store, NoLocal: true}); err != nil {
						t.Fatal(err)
					}
				case tc.cold:
					c = dropLocal(t, warm)
				}
				dir := filepath.Join(t.TempDir(), "dir")
				unchanged := shape.make(t, dir)
				before := store.read.Load()
				h, ok, err := c.Pull(t.Context(), shape.key, nil, dir, tc.opts)
				if ok || err == nil {
					t.Fatalf("pull: %+v, %v, %v; want a failure", h, ok, err)
				}
				if want := "restoring into " + dir + ": " + dir + shape.want; !strings.Contains(err.Error(), want) {
					t.Errorf("pull: %v; want it to say %q", err, want)
				}
				if IsRemote(err) {
					t.Errorf("a path in the way is reported as the remote's failure: %v", err)
				}
				if n := store.read.Load() - before; n != 0 {
					t.Errorf("%d archive bytes read from the remote before the failure; want none", n)
				}
				if !unchanged() {
					t.Errorf("%s changed", dir)
				}
				onlyName(t, dir)
				if tc.nl {
					return
				}
				s, ok, err := c.local.Lookup(t.Context(), shape.key)
				switch {
				case err != nil:
					t.Fatal(err)
				case tc.cold && ok:
					t.Errorf("the local tier gained %q", shape.key)
				case ok && s.Tree != "":
					t.Errorf("the local tier expanded the tree of %q", shape.key)
				}
			})
		}
	}
}

// TestPullShapeMismatchRestoreKey: a restore key's candidate in the way
// fails the pull as the key itself does: DIR is the user's mistake,
// which the next candidate would not mend.
func TestPullShapeMismatchRestoreKey(t *testing.T) {
	warm, store := shapeCaches(t)
	c := dropLocal(t, warm)
	dir := filepath.Join(t.TempDir(), "dir")
	if err := os.WriteFile(dir, []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ok, err := c.Pull(t.Context(), "absent", []string{"tre"}, dir, PullOptions{})
	if ok || err == nil || !strings.Contains(err.Error(), dir+" is not a directory") {
		t.Fatalf("pull through a restore key: %v, %v; want a failure naming %s", ok, err, dir)
	}
	if n := store.read.Load(); n != 0 {
		t.Errorf("%d archive bytes read; want none", n)
	}
	if _, ok, _ := c.local.Peek(t.Context(), "tree"); ok {
		t.Error("the local tier gained the candidate")
	}
}

// TestPullShapeStillRestores: what fits is restored as before: a tree
// into a missing path, an empty directory, a directory with files of
// its own (merged) and a symlink to a directory (which stays a
// symlink); a file into a missing path and over a file.
func TestPullShapeStillRestores(t *testing.T) {
	warm, _ := shapeCaches(t)
	for _, tc := range []struct {
		name string
		cold bool
	}{{"cold", true}, {"warm", false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := warm
			if tc.cold {
				c = dropLocal(t, warm)
			}
			base := t.TempDir()
			missing := filepath.Join(base, "new", "dir")
			empty := filepath.Join(base, "empty")
			full := filepath.Join(base, "full")
			for _, d := range []string{empty, full} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(full, "mine"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{missing, empty, full} {
				pullTree(t, c, d)
			}
			if b, err := os.ReadFile(filepath.Join(full, "mine")); err != nil || string(b) != "mine" {
				t.Errorf("merge lost a file of its own: %q, %v", b, err)
			}
			newFile := filepath.Join(base, "f", "conf.json")
			oldFile := filepath.Join(base, "old.json")
			if err := os.WriteFile(oldFile, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{newFile, oldFile} {
				if _, ok, err := c.Pull(t.Context(), "file", nil, f, PullOptions{}); err != nil || !ok {
					t.Fatalf("pull of the file into %s: %v, %v", f, ok, err)
				}
				if b, err := os.ReadFile(f); err != nil || string(b) != `{"a": 1}` {
					t.Errorf("pull of the file into %s: %q, %v", f, b, err)
				}
			}
			t.Run("symlink", func(t *testing.T) {
				target, link := filepath.Join(base, "target"), filepath.Join(base, "link")
				if err := os.Mkdir(target, 0o755); err != nil {
					t.Fatal(err)
				}
				treetest.Symlink(t, target, link)
				pullTree(t, c, link)
				if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("the symlink to a directory was replaced: %v", err)
				}
			})
		})
	}
}

// pullTree pulls "tree" into dir and checks a file of it is there.
func pullTree(t *testing.T, c *Cache, dir string) {
	t.Helper()
	if _, ok, err := c.Pull(t.Context(), "tree", nil, dir, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull of the tree into %s: %v, %v", dir, ok, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp", "scratch.log")); err != nil {
		t.Errorf("pull into %s: %v", dir, err)
	}
}

// TestPullShapeSymlinkInTheWay: a symlink to a file, or a dangling one,
// is not a directory either: a tree is refused there before a byte is
// read, and the link stays.
func TestPullShapeSymlinkInTheWay(t *testing.T) {
	warm, store := shapeCaches(t)
	c := dropLocal(t, warm)
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{file, filepath.Join(base, "nowhere")} {
		link := filepath.Join(t.TempDir(), "link")
		treetest.Symlink(t, target, link)
		_, ok, err := c.Pull(t.Context(), "tree", nil, link, PullOptions{})
		if ok || err == nil || !strings.Contains(err.Error(), link+" is not a directory; the entry holds a directory there") {
			t.Errorf("pull into a symlink to %s: %v, %v; want a failure naming %s", target, ok, err, link)
		}
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Errorf("the symlink now names %q, %v", got, err)
		}
	}
	if n := store.read.Load(); n != 0 {
		t.Errorf("%d archive bytes read; want none", n)
	}
	if _, ok, _ := c.local.Peek(t.Context(), "tree"); ok {
		t.Error("the local tier gained the entry")
	}
}
