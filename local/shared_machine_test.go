//go:build unix

package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
)

// nobodyUID owns what the tests plant as another user (they need root to
// chown).
const nobodyUID = 65534

// poseAs makes the cache code take uid for the current user.
func poseAs(t *testing.T, uid int) {
	t.Helper()
	old := euid
	euid = func() int { return uid }
	t.Cleanup(func() { euid = old })
}

// mkdirMode makes the directory p with mode exactly, whatever the umask.
func mkdirMode(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files owned by another user")
	}
}

// wantRefused checks that Open refused root with an error naming path.
func wantRefused(t *testing.T, root, path string) {
	t.Helper()
	_, err := Open(root, Options{NoSync: true})
	if err == nil {
		t.Fatalf("Open(%s) accepted it; want it refused, naming %s", root, path)
	}
	if !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "owned by") {
		t.Fatalf("Open(%s): %v; want ErrInvalidArgument naming %s and its owner", root, err, path)
	}
}

func TestOpenCreatesPrivateRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "new", "cache")
	if _, err := Open(root, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("new cache dir has mode %v: other users can read cached trees; want 0700", fi.Mode().Perm())
	}

	// A directory the user made wider keeps its mode.
	shared := filepath.Join(t.TempDir(), "shared")
	mkdirMode(t, shared, 0o755)
	if _, err := Open(shared, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("existing cache dir: %v, %v; want its 0755 kept", fi.Mode(), err)
	}
}

// makeForeign makes dir look owned by another user than the current one,
// who is not root: as root it gives dir to nobody, else it poses as
// another user (root trusts what it owns, so that alone would not do).
func makeForeign(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, nobodyUID, nobodyUID); err != nil {
			t.Fatal(err)
		}
		poseAs(t, nobodyUID-1)
		return
	}
	poseAs(t, os.Geteuid()+1)
}

func TestOpenRefusesRootOfAnotherUser(t *testing.T) {
	// A directory someone else made at the path before the first run (as
	// under /tmp): its owner could read the entries or plant their own.
	root := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(root, 0o777); err != nil {
		t.Fatal(err)
	}
	makeForeign(t, root)
	wantRefused(t, root, root)
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("refused Open wrote %d files into the directory", len(entries))
	}

	// A cache already made, just the same.
	root2 := filepath.Join(t.TempDir(), "cache")
	euid = os.Geteuid
	if _, err := Open(root2, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	makeForeign(t, root2)
	wantRefused(t, root2, root2)
}

func TestOpenAcceptsRootOwnedByRoot(t *testing.T) {
	// The superuser is trusted: a directory it made for a user works (or
	// fails on permissions alone).
	needRoot(t)
	root := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	poseAs(t, nobodyUID)
	if _, err := Open(root, Options{NoSync: true}); err != nil {
		t.Fatalf("a root-owned cache dir: %v", err)
	}
}

func TestOpenAsRootOfAnotherUsersDir(t *testing.T) {
	needRoot(t)
	// Root in a container, over a volume a host user owns: accepted.
	base := t.TempDir()
	vol := filepath.Join(base, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(vol, "cache")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{vol, root} {
		if err := os.Chown(p, nobodyUID, nobodyUID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(root, Options{NoSync: true}); err != nil {
		t.Fatalf("root opening a cache dir owned by uid %d: %v", nobodyUID, err)
	}

	// The same under a directory anyone can write to, as /tmp: anyone
	// could have made it, so it is refused, root or not.
	tmp := filepath.Join(base, "tmp")
	mkdirMode(t, tmp, 0o777|os.ModeSticky)
	planted := filepath.Join(tmp, "cache")
	if err := os.Mkdir(planted, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(planted, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, planted, planted)
}

func TestOpenRefusesPlantedSymlinkRoot(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// The victim's own empty directory, reached through a link another
	// user planted at the cache path: the link's owner can repoint it
	// at a cache of their own between two operations.
	mine := filepath.Join(t.TempDir(), "mine")
	if err := os.Mkdir(mine, 0o700); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(tmp, "cache")
	if err := os.Symlink(mine, root); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(root, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, root, root)

	// A link to the other user's own directory: refused for the target.
	theirs := filepath.Join(tmp, "theirs")
	if err := os.Mkdir(theirs, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	root2 := filepath.Join(tmp, "cache2")
	if err := os.Symlink(theirs, root2); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, root2, theirs)

	// The user's own link to a directory of theirs is fine.
	root3 := filepath.Join(tmp, "cache3")
	if err := os.Symlink(mine, root3); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root3, Options{NoSync: true}); err != nil {
		t.Fatalf("own symlink to own dir: %v", err)
	}
}

func TestOpenRefusesPlantedLayoutDir(t *testing.T) {
	needRoot(t)
	// A cache dir its owner opened to everyone (sticky, as /tmp): another
	// user plants data/ as a link to a directory of theirs before the
	// first run, to read every entry put and plant their own.
	root := filepath.Join(t.TempDir(), "cache")
	mkdirMode(t, root, 0o777|os.ModeSticky)
	theirs := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(theirs, 0o777); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	if err := os.Symlink(theirs, data); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{theirs, data} {
		if err := os.Lchown(p, nobodyUID, nobodyUID); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = fsutil.RemoveAll(theirs) })
	wantRefused(t, root, data)
}

func TestOpenRefusesPlantedMarker(t *testing.T) {
	needRoot(t)
	// In a cache dir open to everyone, another user plants the marker as
	// a FIFO: reading it would block Open for good.
	root := filepath.Join(t.TempDir(), "cache")
	mkdirMode(t, root, 0o777|os.ModeSticky)
	marker := filepath.Join(root, markerName)
	if err := syscall.Mkfifo(marker, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(marker, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Open(root, Options{NoSync: true})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), marker) || !strings.Contains(err.Error(), "owned by") {
			t.Fatalf("Open with a marker another user planted: %v; want it refused, naming %s and its owner", err, marker)
		}
	case <-time.After(5 * time.Second):
		// Unblock the reader before failing.
		if f, err := os.OpenFile(marker, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		<-done
		t.Fatal("Open hung reading a FIFO another user planted as the marker")
	}
}

func TestLockFilesPrivate(t *testing.T) {
	// Whoever can open a lock file can hold its flock(2) lock, read-only
	// as well, and stall every Put of the cache's owner: in a cache dir
	// the user made readable to others, lock files must not be.
	root := filepath.Join(t.TempDir(), "cache")
	mkdirMode(t, root, 0o755)
	c, err := Open(root, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsutil.RemoveAll(root) })
	if _, err := c.Put(t.Context(), "k", smallSrc(t, "a"), ""); err != nil {
		t.Fatal(err)
	}
	unlock, err := c.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	n := 0
	for _, dir := range []string{c.locksDir, c.keyLocks} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			n++
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("lock file %s has mode %v: other users can open it and hold its lock", filepath.Join(dir, e.Name()), fi.Mode().Perm())
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d lock files, want the stripe's and the key's at least", n)
	}
}
