package flock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTryLockExcludesSecondHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l, ok, err := TryLock(path)
	if err != nil || !ok {
		t.Fatalf("first TryLock: ok=%v err=%v", ok, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("lock file not created: %v", err)
	}
	if _, ok, err := TryLock(path); err != nil || ok {
		t.Fatalf("second TryLock while held: ok=%v err=%v, want false, nil", ok, err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, ok, err := TryLock(path)
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock: ok=%v err=%v", ok, err)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l2.Unlock(); err == nil {
		t.Fatal("double unlock returned nil")
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l, err := Lock(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	done := make(chan error, 1)
	go func() {
		l2, err := Lock(t.Context(), path)
		if err == nil {
			if !released.Load() {
				err = errors.New("second Lock returned while the first was held")
			}
			l2.Unlock()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	released.Store(true)
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLockHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l, err := Lock(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock on held lock with expiring ctx: %v, want DeadlineExceeded", err)
	}
	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	if _, err := Lock(cctx, path); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with cancelled ctx: %v, want Canceled", err)
	}
}

// TestMutualExclusion has goroutines increment a counter non-atomically
// under the lock; any overlap shows up as a lost update or a seen overlap.
func TestMutualExclusion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	var inside atomic.Int32
	counter := 0
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				l, err := Lock(t.Context(), path)
				if err != nil {
					errs <- err
					return
				}
				if inside.Add(1) != 1 {
					errs <- errors.New("two holders at once")
				}
				c := counter
				time.Sleep(time.Microsecond)
				counter = c + 1
				inside.Add(-1)
				if err := l.Unlock(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if counter != 400 {
		t.Fatalf("counter = %d, want 400", counter)
	}
}

// TestRemoveWhileWaiting checks that a waiter whose file is removed by the
// holder ends up holding a lock on the file the path names now, not on the
// unlinked one.
func TestRemoveWhileWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l, err := Lock(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Handle, 1)
	go func() {
		l2, err := Lock(t.Context(), path)
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	time.Sleep(20 * time.Millisecond)
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	l2 := <-got
	if l2 == nil {
		t.FailNow()
	}
	defer l2.Unlock()
	fi, err := l2.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("lock file missing after relock: %v", err)
	}
	if !os.SameFile(fi, pi) {
		t.Fatal("waiter holds a lock on an unlinked file")
	}
	// And the new holder really excludes others.
	if _, ok, err := TryLock(path); err != nil || ok {
		t.Fatalf("TryLock while relocked: ok=%v err=%v", ok, err)
	}
}

func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "l")
	if _, _, err := TryLock(path); err == nil {
		t.Fatal("TryLock in a missing directory returned nil error")
	}
}

// TestLongPath locks a file whose path is longer than Windows' classic
// 260-character limit, as a deep cache directory can make it.
func TestLongPath(t *testing.T) {
	dir := t.TempDir()
	for len(dir) < 300 {
		dir = filepath.Join(dir, strings.Repeat("d", 50))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "l")
	l, ok, err := TryLock(path)
	if err != nil || !ok {
		t.Fatalf("TryLock: ok=%v err=%v", ok, err)
	}
	if _, ok, err := TryLock(path); err != nil || ok {
		t.Fatalf("second TryLock while held: ok=%v err=%v, want false, nil", ok, err)
	}
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
}

const childEnv = "FLOCK_TEST_CHILD_LOCK"

// TestHelperHolder is not a test: the cross-process test runs the test
// binary with childEnv set, and this takes the lock, says so, and waits to
// be killed.
func TestHelperHolder(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		return
	}
	if _, err := Lock(context.Background(), path); err != nil {
		os.Exit(2)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute)
	os.Exit(3)
}

func TestCrossProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf[:6]) != "locked" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not report the lock: %q %v", buf, err)
	}
	if _, ok, err := TryLock(path); err != nil || ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("TryLock while another process holds it: ok=%v err=%v", ok, err)
	}
	// Killing the holder releases its lock: that is how leftovers of dead
	// processes are recognised.
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Lock(t.Context(), path)
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	l.Unlock()
}

// TestStillLinked covers the check that makes deleting lock files safe: a
// lock taken on a file whose path was removed, or now names another file,
// must not count. The files are opened as the package opens lock files,
// which on Windows is what lets them be removed or renamed while open.
func TestStillLinked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l")
	f, err := openFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := stillLinked(f, path); err != nil || !ok {
		t.Fatalf("fresh file: %v %v, want true", ok, err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	ok, err := stillLinked(f, path)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		// Right only where a removed file keeps its name until its last
		// handle closes and nothing says it is going (Wine does this):
		// every opener then gets this same file, so locks still exclude,
		// and the file must go with the last handle.
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if pi, err := os.Stat(path); err != nil || !os.SameFile(fi, pi) {
			t.Fatalf("removed file: stillLinked true, but the path names another file (%v)", err)
		}
		f.Close()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("removed file still there after its last handle closed: %v", err)
		}
		t.Log("this file system keeps a removed file's name while it is open")
	}

	// A removed file's name may stay taken while it is open (Windows
	// without POSIX delete semantics), so the replaced case moves the
	// open file away instead.
	path2 := filepath.Join(dir, "l2")
	f2, err := openFile(path2, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if err := os.Rename(path2, path2+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path2, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := stillLinked(f2, path2); err != nil || ok {
		t.Fatalf("replaced file: %v %v, want false", ok, err)
	}
}
