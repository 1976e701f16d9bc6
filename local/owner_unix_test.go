//go:build unix

package local

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRootGivesFilesToTierOwner: root working in a tier another user owns
// (a host's cache volume in a container) gives that user everything it
// creates there: lock files, entries, expanded trees, marks, pointers,
// records. Left root's, they would fail the owner's next lock, prune or
// eviction of them, for good. A user who is not root gives nothing away.
func TestRootGivesFilesToTierOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		fi, err := os.Stat(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, ok := tierOwner(fi); ok {
			t.Fatal("tierOwner: a user who is not root would give files away")
		}
		return
	}
	const owner = 65534
	root := filepath.Join(t.TempDir(), "tier")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, owner, owner); err != nil {
		t.Fatal(err)
	}
	c, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	src := smallSrc(t, "owned")
	if _, err := c.Put(ctx, "tree", src, ""); err != nil {
		t.Fatal(err)
	}
	putArchive(t, c, "arch", src)
	s, ok, err := c.Lookup(ctx, "arch")
	if err != nil || !ok {
		t.Fatalf("Lookup: %v %v", ok, err)
	}
	if err := c.MarkLinked(s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tree(ctx, s); err != nil {
		t.Fatal(err)
	}
	unlock, err := c.Lock(ctx, "arch")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if unlock, err = c.LockPush(ctx, "arch", nil); err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := c.SetRemoteAccess("arch", s.Entry.Created); err != nil {
		t.Fatal(err)
	}
	if err := c.NotePull([]string{t.TempDir()}, "", "arch"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "tree", src, "again"); err != nil { // retires the first
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, "tree"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n++
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != owner {
			t.Errorf("%s is owned by %d, not by the tier's owner %d", p, uid, owner)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("walked %d paths: the tier holds less than the test made", n)
	}
}
