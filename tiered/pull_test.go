package tiered

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
)

// TestPullIntoDir: a cold Pull through the local tier extracts the
// download into DIR while keeping its bytes as the local archive (every
// file written once, no copy); a warm one extracts that archive without
// asking the remote; an existing DIR keeps its own mode and mtime; and
// Link makes the tree beside the archive once and shares its inodes.
func TestPullIntoDir(t *testing.T) {
	var mu sync.Mutex
	progress := map[string]int64{} // op -> the highest Done
	fn := func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		progress[p.Op] = max(progress[p.Op], p.Done)
	}
	f, _ := newFaulty(t) // a working remote until told otherwise
	c, err := New(newLocal(t), Options{Remote: f, Progress: fn})
	if err != nil {
		t.Fatal(err)
	}
	src := smallTree(t, "p")
	res, err := c.Push(t.Context(), "deps-1", src, PushOptions{Description: "d"})
	if err != nil || !res.Uploaded || filepath.Base(res.Path) != "archive.tar.zst" || res.Entry.Description != "d" || res.Entry.Stored != res.ArchiveSize {
		t.Fatalf("Push = %+v, %v; want an upload and the archive kept locally", res, err)
	}
	other := dropLocal(t, c)

	dir := filepath.Join(t.TempDir(), "a", "dst")
	h, ok, err := other.Pull(t.Context(), "deps-2", []string{"deps-"}, dir, PullOptions{})
	if err != nil || !ok || h.Key != "deps-1" || h.Tier != tiercache.TierRemote || h.Path != dir || h.Downloaded != res.ArchiveSize || h.Copy.Files != 0 {
		t.Fatalf("cold Pull = %+v, %v, %v", h, ok, err)
	}
	treetest.AssertEqual(t, src, dir)
	mu.Lock()
	if progress["download"] != res.ArchiveSize || progress["copy"] != 0 {
		t.Errorf("progress %v, want a download of %d bytes and no copy", progress, res.ArchiveSize)
	}
	mu.Unlock()
	s, ok, err := other.Local().Lookup(t.Context(), "deps-1")
	if err != nil || !ok || s.Tree != "" || s.ArchiveSize != res.ArchiveSize || s.SHA256 == "" {
		t.Fatalf("local entry after a cold pull = %+v, %v, %v; want the archive alone", s, ok, err)
	}

	gets := f.opens.Load()
	warm := filepath.Join(t.TempDir(), "warm")
	h, ok, err = other.Pull(t.Context(), "deps-1", nil, warm, PullOptions{})
	if err != nil || !ok || h.Tier != tiercache.TierLocal || h.Downloaded != 0 || h.Copy.Files != 0 {
		t.Fatalf("warm Pull = %+v, %v, %v", h, ok, err)
	}
	if n := f.opens.Load() - gets; n != 0 {
		t.Errorf("a warm pull opened %d remote objects, want 0", n)
	}
	treetest.AssertEqual(t, src, warm)

	t.Run("existing dir keeps its mode and mtime", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dst")
		mtime := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := other.Pull(t.Context(), "deps-1", nil, dir, PullOptions{}); err != nil || !ok {
			t.Fatalf("Pull: ok=%v err=%v", ok, err)
		}
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != dirModeSeen(0o750) || !fi.ModTime().Equal(timeKept(mtime)) {
			t.Fatalf("DIR after the pull: %v %v (%v), want %v and %v kept", fi.Mode(), fi.ModTime(), err, dirModeSeen(0o750), timeKept(mtime))
		}
		if _, err := treetest.CheckSmall(dir); err != nil {
			t.Fatalf("the tree did not arrive: %v", err)
		}
	})
	t.Run("link", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dst")
		h, ok, err := other.Pull(t.Context(), "deps-1", nil, dir, PullOptions{Link: true})
		if err != nil || !ok || h.Tier != tiercache.TierLocal || h.Copy.Linked == 0 {
			t.Fatalf("Pull --link = %+v, %v, %v", h, ok, err)
		}
		s, ok, err := other.Local().Lookup(t.Context(), "deps-1")
		if err != nil || !ok || s.Tree == "" || s.Entry.Stored != s.ArchiveSize+s.Entry.Size {
			t.Fatalf("local entry after a linked pull = %+v, %v, %v; want the tree made beside the archive", s, ok, err)
		}
		cached := s.Tree
		linked := 0
		err = filepath.WalkDir(cached, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(cached, p)
			a, err1 := os.Stat(p)
			b, err2 := os.Stat(filepath.Join(dir, rel))
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			if !os.SameFile(a, b) {
				t.Errorf("%s is not hardlinked to the cache", rel)
			}
			linked++
			return nil
		})
		if err != nil || linked == 0 {
			t.Fatalf("walk: %v, %d files", err, linked)
		}
	})
}

// TestPullStrict: with the remote down, a restore key found in the local
// tier is pulled with the failure in Hit.RemoteErr; with Strict the pull
// fails with that failure and DIR is not even created.
func TestPullStrict(t *testing.T) {
	f, c := newFaulty(t)
	src := smallTree(t, "s")
	if _, err := c.Put(t.Context(), "deps-1", src, ""); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	dir := filepath.Join(t.TempDir(), "strict")
	if _, ok, err := c.Pull(t.Context(), "other", []string{"deps-"}, dir, PullOptions{Strict: true}); ok || !IsRemote(err) {
		t.Fatalf("strict Pull with the remote down: ok=%v err=%v, want the remote's failure", ok, err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed strict pull touched DIR: %v", err)
	}
	h, ok, err := c.Pull(t.Context(), "other", []string{"deps-"}, dir, PullOptions{})
	if err != nil || !ok || !IsRemote(h.RemoteErr) || h.Tier != tiercache.TierLocal {
		t.Fatalf("Pull with the remote down = %+v, %v, %v; want the local hit with RemoteErr", h, ok, err)
	}
	treetest.AssertEqual(t, src, dir)
}

// TestPushSameShapeOtherBytes: a push of a tree with the size and file
// count of the remote's but other bytes uploads the archive it just kept
// locally; a push of the identical tree uploads nothing; and a failed
// upload of the changed tree still keeps it locally, saying why.
func TestPushSameShapeOtherBytes(t *testing.T) {
	f, c := newFaulty(t)
	src := smallTree(t, "aa")
	if res, err := c.Push(t.Context(), "k", src, PushOptions{}); err != nil || !res.Uploaded {
		t.Fatalf("first Push = %+v, %v", res, err)
	}
	if res, err := c.Push(t.Context(), "k", src, PushOptions{}); err != nil || res.Uploaded || !res.UploadSkipped {
		t.Fatalf("Push of the same tree = %+v, %v; want the upload skipped", res, err)
	}
	// Same tag length: the same sizes, other bytes.
	other := smallTree(t, "bb")
	res, err := c.Push(t.Context(), "k", other, PushOptions{})
	if err != nil || !res.Uploaded || res.UploadSkipped {
		t.Fatalf("Push of other bytes = %+v, %v; want an upload", res, err)
	}
	dir := filepath.Join(t.TempDir(), "d")
	if _, ok, err := dropLocal(t, c).Pull(t.Context(), "k", nil, dir, PullOptions{}); err != nil || !ok {
		t.Fatalf("Pull on a fresh machine: %v, %v", ok, err)
	}
	treetest.AssertEqual(t, other, dir)

	f.failPut.Store(true)
	res, err = c.Push(t.Context(), "k", src, PushOptions{})
	if err != nil || res.Uploaded || !IsRemote(res.RemoteErr) {
		t.Fatalf("Push with a failing upload = %+v, %v; want a local-only save with RemoteErr", res, err)
	}
	s, ok, err := c.Local().Lookup(t.Context(), "k")
	if err != nil || !ok || s.Archive == "" {
		t.Fatalf("local entry = %+v, %v, %v", s, ok, err)
	}
	local := filepath.Join(t.TempDir(), "l")
	if _, ok, err := c.Pull(t.Context(), "k", nil, local, PullOptions{}); err != nil || !ok {
		t.Fatalf("local Pull: %v, %v", ok, err)
	}
	treetest.AssertEqual(t, src, local)
}

// TestStricterOptionsKeepSoundEntry checks that a local archive refused
// by this cache's own options (a lower byte limit, StrictSymlinks) is
// reported as that refusal and kept, since it is not damaged, while a
// damaged one is still dropped.
func TestStricterOptionsKeepSoundEntry(t *testing.T) {
	lc := newLocal(t)
	c, err := New(lc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := smallTree(t, "s")
	treetest.Symlink(t, "/etc/hostname", filepath.Join(src, "abs-link"))
	if _, err := c.Push(t.Context(), "k", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, eo := range map[string]archive.ExtractOptions{
		"StrictSymlinks":   {StrictSymlinks: true},
		"a lower MaxBytes": {MaxBytes: 1},
	} {
		strict, err := New(lc, Options{Extract: eo})
		if err != nil {
			t.Fatal(err)
		}
		h, ok, err := strict.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
		if ok || err == nil || errors.Is(err, tiercache.ErrIntegrity) || !(errors.Is(err, tiercache.ErrUnsafeArchive) || errors.Is(err, tiercache.ErrLimitExceeded)) || h.Dropped != nil {
			t.Errorf("%s: Pull = %+v, %v, %v; want the refusal as an error, not damage", name, h, ok, err)
		}
		if _, ok, err := lc.Peek(t.Context(), "k"); !ok || err != nil {
			t.Fatalf("%s: the sound entry is gone after the refusal: %v, %v", name, ok, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "d")
	if _, ok, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{}); !ok || err != nil {
		t.Fatalf("Pull with the default options = %v, %v", ok, err)
	}
	treetest.AssertEqual(t, src, dir)
}

// TestPullRefusedEntryTriesNext: an entry the remote serves that fails
// its checks is a miss listed in Hit.Refused, and the remote is still
// asked for the restore keys' candidates; with Strict it fails the pull.
func TestPullRefusedEntryTriesNext(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := smallTree(t, "r")
	for _, k := range []string{"deps-a", "deps-b"} {
		if _, err := c.Push(t.Context(), k, src, PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	store.Corrupt("deps-b", func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	// Read-only, so that deps-b stays for the strict pull: a writable
	// one removes it (see TestRefusedEntryReplacedByNextPush).
	fresh := newTiered(t, store, Options{ReadOnly: true})
	dir := filepath.Join(t.TempDir(), "d")
	h, ok, err := fresh.Pull(t.Context(), "deps-b", []string{"deps-"}, dir, PullOptions{})
	if err != nil || !ok || h.Key != "deps-a" || h.Tier != tiercache.TierRemote {
		t.Fatalf("Pull = %q from %v, %v, %v; want deps-a from the remote", h.Key, h.Tier, ok, err)
	}
	if len(h.Refused) != 1 || !errors.Is(h.Refused[0], tiercache.ErrIntegrity) || h.RemoteErr != nil {
		t.Errorf("Refused = %v, RemoteErr = %v; want deps-b refused, the remote not failed", h.Refused, h.RemoteErr)
	}
	treetest.AssertEqual(t, src, dir)

	strict := newTiered(t, store, Options{})
	dir2 := filepath.Join(t.TempDir(), "d")
	if _, ok, err := strict.Pull(t.Context(), "deps-b", []string{"deps-"}, dir2, PullOptions{Strict: true}); ok || !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("strict Pull = %v, %v; want it failed for deps-b", ok, err)
	}
}

// TestPullIntoEmptyDirKeepsIt: a pull into an existing empty directory
// fills that directory, not a new one renamed over it: a shell working
// in it (pull KEY .) sees the tree.
func TestPullIntoEmptyDirKeepsIt(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	src := smallTree(t, "e")
	if _, err := c.Push(t.Context(), "k", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"local", "remote"} {
		cc := c
		if name == "remote" {
			cc = newTiered(t, store, Options{})
		}
		dir := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		before, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := cc.Pull(t.Context(), "k", nil, dir, PullOptions{}); err != nil || !ok {
			t.Fatalf("%s: Pull = %v, %v", name, ok, err)
		}
		after, err := os.Stat(dir)
		if err != nil || !os.SameFile(before, after) || after.Mode().Perm() != before.Mode().Perm() {
			t.Errorf("%s: DIR after the pull: %v, same directory %v; want the same one, its mode kept", name, err, err == nil && os.SameFile(before, after))
		}
		treetest.AssertEqual(t, src, dir)
	}
}

// TestLongRemoteDescription: a push refuses a description longer than
// an entry may have, whatever its tiers; one another writer stored in the
// remote is refused by a pull as an entry the local tier cannot keep: a
// miss listed in Hit.Refused, not a failed pull.
func TestLongRemoteDescription(t *testing.T) {
	store := memstore.New()
	remoteOnly, err := New(nil, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	desc := strings.Repeat("d", local.MaxDescriptionLen+1)
	if _, err := remoteOnly.Push(t.Context(), "k", smallTree(t, "x"), PushOptions{Description: desc}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("push with a %d-byte description: %v; want ErrInvalidArgument", len(desc), err)
	}
	if _, err := remoteOnly.Push(t.Context(), "k", smallTree(t, "x"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	store.CorruptMeta("k", func(m remote.Meta) remote.Meta { m.Description = desc; return m })
	c := newTiered(t, store, Options{})
	h, ok, err := c.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "dst"), PullOptions{})
	if ok || err != nil || len(h.Refused) != 1 || !errors.Is(h.Refused[0], tiercache.ErrLimitExceeded) {
		t.Fatalf("pull of an entry with a %d-byte description: %v, %v, refused %v; want a refused miss", len(desc), ok, err, h.Refused)
	}
}

// TestPullReportsWait: a pull that waits for another process's download
// of the key says so (Progress "wait") before it waits.
func TestPullReportsWait(t *testing.T) {
	store := memstore.New()
	if _, err := newTiered(t, store, Options{}).Push(t.Context(), "k", smallTree(t, "w"), PushOptions{}); err != nil {
		t.Fatal(err)
	}
	waited := make(chan string, 1)
	c, err := New(newLocal(t), Options{Remote: store, Progress: func(p Progress) {
		if p.Op == "wait" {
			waited <- p.Key
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c.Local().Lock(t.Context(), "k") // another process's download
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Pull(t.Context(), "k", nil, filepath.Join(t.TempDir(), "d"), PullOptions{})
		done <- err
	}()
	select {
	case k := <-waited:
		if k != "k" {
			t.Errorf("waited for %q", k)
		}
	case err := <-done:
		t.Fatalf("the pull ended (%v) while the key was locked", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no wait reported")
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPullDroppedOnMiss: a damaged local archive with nothing to take
// its place (no remote) is a miss that still says the copy was dropped,
// so a failing disk does not pass for an empty cache.
func TestPullDroppedOnMiss(t *testing.T) {
	lc := newLocal(t)
	c, err := New(lc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Push(t.Context(), "k", smallTree(t, "s"), PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(res.Path, 0o644); err != nil { // kept read-only
		t.Fatal(err)
	}
	f, err := os.OpenFile(res.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte("XXXX"), res.ArchiveSize/2)
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	dir := filepath.Join(t.TempDir(), "d")
	h, ok, err := c.Pull(t.Context(), "k", nil, dir, PullOptions{})
	if ok || err != nil || !errors.Is(h.Dropped, tiercache.ErrIntegrity) {
		t.Fatalf("Pull of a damaged local copy = %v, %v, dropped %v; want a miss reporting it dropped", ok, err, h.Dropped)
	}
	if _, ok, _ := lc.Peek(t.Context(), "k"); ok {
		t.Error("the damaged copy is still there")
	}
}
