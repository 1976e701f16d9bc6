//go:build unix && (!linux || tiercache_portable)

package treecopy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeClone stands in for macOS's clonefile so that what Copy does around
// a clone runs on any Unix. Like clonefile, it creates base in dirfd (EEXIST
// if anything is there, a symlink included) with the source's bytes and
// mode, setuid and setgid bits included; unlike it, it leaves the times
// at now, so a test sees whether Copy sets them. fail, if set, may make
// the nth call (from 1) fail instead.
func fakeClone(t *testing.T, fail func(n int64) error) *atomic.Int64 {
	t.Helper()
	calls := new(atomic.Int64)
	old := cloneFile
	t.Cleanup(func() { cloneFile = old })
	cloneFile = func(in, dirfd int, base string) error {
		if err := maybeFail(fail, calls.Add(1)); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(in, &st); err != nil {
			return err
		}
		out, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(out)
		// pread: in's offset stays where a fallback copy expects it.
		buf := make([]byte, 64<<10)
		for off := int64(0); ; {
			n, err := unix.Pread(in, buf, off)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			if _, err := unix.Write(out, buf[:n]); err != nil {
				return err
			}
			off += int64(n)
		}
		return unix.Fchmod(out, uint32(st.Mode)&0o7777)
	}
	return calls
}

// maybeFail is fail(n), or nil without fail.
func maybeFail(fail func(int64) error, n int64) error {
	if fail == nil {
		return nil
	}
	return fail(n)
}

// TestCloneFidelity: cloned files end with the source's bytes, permission
// bits (setuid and setgid dropped) and times, and a symlink planted in the
// destination is replaced, not followed.
func TestCloneFidelity(t *testing.T) {
	calls := fakeClone(t, nil)
	src := fidelityTree(t)
	want := snapshot(t, src)
	outside := filepath.Join(t.TempDir(), "victim.txt")
	write(t, outside, "untouched", 0o644)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dst, "plain.txt")); err != nil {
		t.Fatal(err)
	}
	res, err := Copy(context.Background(), src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	compare(t, want, snapshot(t, dst))
	// Every file but the empty one is cloned (extra hardlink names are
	// not files of their own), plain.txt twice: its first clone meets the
	// planted symlink, which is removed.
	if res.Files != 45 || res.Cloned != 44 || calls.Load() != 45 {
		t.Errorf("result %+v after %d clones tried: want 45 files, 44 cloned, 45 tried", res, calls.Load())
	}
	if b, _ := os.ReadFile(outside); string(b) != "untouched" {
		t.Errorf("outside file changed to %q", b)
	}

	suid := filepath.Join(t.TempDir(), "suid")
	write(t, filepath.Join(suid, "tool"), "#!/bin/sh\n", 0o755)
	if err := os.Chmod(filepath.Join(suid, "tool"), 0o755|fs.ModeSetuid|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	dst2 := filepath.Join(t.TempDir(), "dst2")
	if _, err := Copy(context.Background(), suid, dst2, Options{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dst2, "tool")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("cloned setuid tool: mode %v (%v), want 0755", fi.Mode(), err)
	}
}

// TestCloneFallsBack: a file system that cannot clone is found out once,
// and every file is copied; any other failure of a clone is about that
// one file, which is copied, and later files are cloned again.
func TestCloneFallsBack(t *testing.T) {
	src := fidelityTree(t)
	want := snapshot(t, src)
	for _, tc := range []struct {
		name       string
		err        error
		wantCalls  int64
		wantCloned int64
	}{
		{"cannot clone", unix.ENOTSUP, 1, 0},
		{"other volume", unix.EXDEV, 1, 0},
		{"one failure", unix.EIO, 44, 43},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := fakeClone(t, func(n int64) error {
				if n == 1 || tc.err != unix.EIO {
					return tc.err
				}
				return nil
			})
			dst := filepath.Join(t.TempDir(), "dst")
			res, err := Copy(context.Background(), src, dst, Options{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
			compare(t, want, snapshot(t, dst))
			if calls.Load() != tc.wantCalls || res.Cloned != tc.wantCloned || res.Files != 45 {
				t.Errorf("%d clones tried, result %+v; want %d tried, %d cloned, 45 files",
					calls.Load(), res, tc.wantCalls, tc.wantCloned)
			}
		})
	}
}

// TestCloneUnderLink: with Link, files are hardlinked and never cloned.
func TestCloneUnderLink(t *testing.T) {
	calls := fakeClone(t, nil)
	src := fidelityTree(t)
	dst := filepath.Join(t.TempDir(), "dst")
	res, err := Copy(context.Background(), src, dst, Options{Link: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	if calls.Load() != 0 || res.Cloned != 0 || res.Linked != res.Files {
		t.Errorf("%d clones tried, result %+v; want every file linked", calls.Load(), res)
	}
}
