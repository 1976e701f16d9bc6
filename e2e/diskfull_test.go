//go:build unix

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// The disk-full tests run the binary where it runs out of space: on a
// small tmpfs when the test may mount one (root on Linux), and with a
// file-size limit (RLIMIT_FSIZE, which makes writes fail with EFBIG: Go
// ignores SIGXFSZ) in every case. The permission tests run it as an
// unprivileged user, since root ignores mode bits.

// diskOpts says how diskRun runs the binary.
type diskOpts struct {
	// fsize, if positive, is the RLIMIT_FSIZE of the process, in bytes.
	fsize int64
	// cred, if set, is the user the process runs as.
	cred *syscall.Credential
	// bin overrides binPath (a copy the unprivileged user can run).
	bin string
}

// diskRun runs the binary with args, exactly the environment e and the
// limits of o, and returns what it printed and its exit code.
func diskRun(t testing.TB, e env, o diskOpts, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := binPath
	if o.bin != "" {
		bin = o.bin
	}
	var cmd *exec.Cmd
	if o.fsize > 0 {
		// prlimit sets the limit and execs the binary; the shell's
		// ulimit (512-byte blocks in POSIX sh) where it is missing.
		if p, err := exec.LookPath("prlimit"); err == nil {
			cmd = exec.CommandContext(ctx, p, append([]string{fmt.Sprintf("--fsize=%d", o.fsize), "--", bin}, args...)...)
		} else {
			cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `ulimit -f "$0" && exec "$@"`, fmt.Sprint(o.fsize / 512), bin}, args...)...)
		}
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if o.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatalf("running tiercache %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// diskFails runs the binary and checks that it fails (exit 1) with a
// single line on stderr holding every one of want.
func diskFails(t testing.TB, e env, o diskOpts, want []string, args ...string) string {
	t.Helper()
	_, stderr, code := diskRun(t, e, o, args...)
	line := strings.TrimSuffix(stderr, "\n")
	if code != 1 || strings.Contains(line, "\n") || !strings.HasPrefix(line, "tiercache: ") {
		t.Fatalf("tiercache %s: exit %d, stderr:\n%s\nwant exit 1 and one error line", strings.Join(args, " "), code, stderr)
	}
	t.Logf("%s", line)
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("tiercache %s: error line %q lacks %q", strings.Join(args, " "), line, w)
		}
	}
	return line
}

// diskClean checks that fsck --deep finds the local tier at e (and the
// remote) clean, and that the local tier's staging is empty: a failed run
// left nothing half-made.
func diskClean(t testing.TB, e env) {
	t.Helper()
	if stdout, stderr, code := runCLI(t, e, "fsck", "--deep"); code != 0 {
		t.Fatalf("fsck after the failure: exit %d\n%s%s", code, stdout, stderr)
	}
	if left := dirNames(t, e, "staging"); len(left) != 0 {
		t.Errorf("the failed run left staging: %q", left)
	}
}

// diskNoEntry is diskClean, and checks that the local tier holds no entry
// for key.
func diskNoEntry(t testing.TB, e env, key string) {
	t.Helper()
	diskClean(t, e)
	if _, err := os.Lstat(filepath.Join(e["TIERCACHE_DIR"], "index", key)); !os.IsNotExist(err) {
		t.Errorf("the failed run left a local entry for %q (%v)", key, err)
	}
}

// Trees: diskBigTree's size is in its bytes (6 MiB of random data), which
// the free-space check before a download sees; diskManyTree's is in its
// file count (600 files of 100 bytes), which takes 2.4 MB of 4 KiB pages on
// a tmpfs while the tree's size is 60 kB, so it passes that check and runs
// out of space while it is written.
func diskBigTree(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "big")
	writeCrashTree(t, dir, 7, 10, 6, 1<<20)
	return dir
}

func diskManyTree(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "many")
	writeCrashTree(t, dir, 8, 600, 0, 0)
	return dir
}

// TestDiskFull runs out of space in the three places a command writes:
// the pull's destination, the local tier during a hydration, and the local
// tier during a push. Each fails with one line naming the path and saying
// "no space" (or, before a download that cannot fit, how much is free),
// leaves no entry behind, and succeeds once there is room.
func TestDiskFull(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	big, many := diskBigTree(t), diskManyTree(t)
	mustRun(t, e, "push", "big", big)
	mustRun(t, e, "push", "many", many)

	t.Run("pull into a full destination", func(t *testing.T) {
		mnt, ok := diskTmpfs(t, 1<<20)
		if !ok {
			diskFullDestByLimit(t, e, big)
			return
		}
		m := e.freshMachine(t)
		dst := filepath.Join(mnt, "dst")
		// Too big to fit beside DIR: refused before the download (by
		// default a warning and a miss).
		diskFails(t, m, diskOpts{}, []string{`pull "big"`, dst, "free"}, "--strict", "pull", "big", dst)
		diskNoEntry(t, m, "big")
		// Small enough by its size, too many files for the space: the
		// extraction into DIR runs out of room, and the download kept
		// beside it is not committed either.
		diskFails(t, m, diskOpts{}, []string{`pull "many"`, dst, "no space left on device"}, "pull", "many", dst)
		diskNoEntry(t, m, "many")
		diskGrow(t, mnt, 16<<20)
		mustRun(t, m, "pull", "big", dst)
		treetest.AssertEqual(t, big, dst)
	})

	t.Run("hydration fills the cache", func(t *testing.T) {
		mnt, ok := diskTmpfs(t, 1<<20)
		if !ok {
			diskHydrateByLimit(t, e, big)
			return
		}
		m := e.with("TIERCACHE_DIR", filepath.Join(mnt, "cache"))
		dst := filepath.Join(t.TempDir(), "dst")
		// Too big to fit: refused before the download.
		// (By default a warning and a miss, as for any entry this
		// machine cannot take.)
		diskFails(t, m, diskOpts{}, []string{`pull "big"`, m["TIERCACHE_DIR"], "free"}, "--strict", "pull", "big", dst)
		diskNoEntry(t, m, "big")
		// Small enough by its size, too many files for the space: the
		// local tier keeps only the archive, which fits, so the pull
		// works; a tree made beside it for --link runs out of room, and
		// the archive stays.
		mustRun(t, m, "pull", "--fail-on-miss", "many", dst)
		treetest.AssertEqual(t, many, dst)
		diskFails(t, m, diskOpts{}, []string{`pull "many"`, m["TIERCACHE_DIR"], "no space left on device"}, "pull", "--link", "many", filepath.Join(t.TempDir(), "linked"))
		diskClean(t, m)
		diskGrow(t, mnt, 16<<20)
		for key, src := range map[string]string{"big": big, "many": many} {
			d := filepath.Join(t.TempDir(), key)
			mustRun(t, m, "pull", "--fail-on-miss", key, d)
			treetest.AssertEqual(t, src, d)
		}
	})

	t.Run("push into a full cache", func(t *testing.T) {
		mnt, ok := diskTmpfs(t, 1<<20)
		if !ok {
			diskPushByLimit(t, e, big)
			return
		}
		m := e.with("TIERCACHE_DIR", filepath.Join(mnt, "cache"))
		// The local tier keeps the archive: 6 MiB of random data does
		// not fit.
		diskFails(t, m, diskOpts{}, []string{`push "new"`, m["TIERCACHE_DIR"], "no space left on device"}, "push", "new", big)
		diskNoEntry(t, m, "new")
		if manifests, data := manifestsAndData(t, b); len(manifests) != 2 || len(data) != 2 {
			t.Errorf("a push that failed locally wrote to the remote: %q %q", manifests, data)
		}
		diskGrow(t, mnt, 16<<20)
		mustRun(t, m, "push", "new", big)
		d := filepath.Join(t.TempDir(), "d")
		mustRun(t, e.freshMachine(t), "pull", "--fail-on-miss", "new", d)
		treetest.AssertEqual(t, big, d)
	})
}

// diskLimit is the RLIMIT_FSIZE of the file-size tests: well under the
// 1 MiB files of diskBigTree.
const diskLimit = 256 << 10

// TestDiskFileTooLarge runs the same three cases with RLIMIT_FSIZE, which
// needs no privilege: every write past the limit fails with EFBIG.
func TestDiskFileTooLarge(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	big := diskBigTree(t)
	mustRun(t, e, "push", "big", big)
	t.Run("pull into a destination", func(t *testing.T) { diskFullDestByLimit(t, e, big) })
	t.Run("hydration", func(t *testing.T) { diskHydrateByLimit(t, e, big) })
	t.Run("push", func(t *testing.T) { diskPushByLimit(t, e, big) })
}

func diskFullDestByLimit(t *testing.T, e env, big string) {
	m := e.freshMachine(t)
	// Hydrate first, unlimited: the limited run is then a local hit
	// whose only writes are the extraction into the destination.
	mustRun(t, m, "pull", "big", filepath.Join(t.TempDir(), "first"))
	dst := filepath.Join(t.TempDir(), "dst")
	diskFails(t, m, diskOpts{fsize: diskLimit}, []string{`pull "big"`, dst, "file too large"}, "pull", "big", dst)
	diskClean(t, m)
	mustRun(t, m, "pull", "big", dst)
	treetest.AssertEqual(t, big, dst)
}

func diskHydrateByLimit(t *testing.T, e env, big string) {
	m := e.freshMachine(t)
	dst := filepath.Join(t.TempDir(), "dst")
	diskFails(t, m, diskOpts{fsize: diskLimit}, []string{`pull "big"`, m["TIERCACHE_DIR"], "file too large"}, "pull", "big", dst)
	diskNoEntry(t, m, "big")
	mustRun(t, m, "pull", "big", dst)
	treetest.AssertEqual(t, big, dst)
}

func diskPushByLimit(t *testing.T, e env, big string) {
	m := e.freshMachine(t)
	key := "limited-" + filepath.Base(t.TempDir())
	diskFails(t, m, diskOpts{fsize: diskLimit}, []string{fmt.Sprintf("push %q", key), m["TIERCACHE_DIR"], "file too large"}, "push", key, big)
	diskNoEntry(t, m, key)
	if _, _, code := runCLI(t, e.freshMachine(t), "pull", "--fail-on-miss", key, filepath.Join(t.TempDir(), "d")); code != exitMissCode {
		t.Errorf("a push that failed locally reached the remote (pull exit %d)", code)
	}
	mustRun(t, m, "push", key, big)
	d := filepath.Join(t.TempDir(), "d")
	mustRun(t, e.freshMachine(t), "pull", "--fail-on-miss", key, d)
	treetest.AssertEqual(t, big, d)
}

// exitMissCode is the exit code of pull --fail-on-miss on a miss.
const exitMissCode = 3

// nobody is the unprivileged user the permission tests run as.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// TestDiskPermissions runs the binary as an unprivileged user (root
// ignores mode bits) against a cache directory and a destination it may
// not write: each fails with one line naming the path and "permission
// denied", and leaves nothing behind. Everything lives under a
// world-readable directory of its own, with a copy of the binary, since
// the test's temporary directories are private to root.
func TestDiskPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		// Without root the test cannot switch users, and plain mode
		// bits already stop this user: check that directly.
		diskPermissionsAsSelf(t)
		return
	}
	b := bucket(t)
	base, err := os.MkdirTemp("", "tiercache-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsutil.RemoveAll(base) })
	mkdir := func(rel string, owned bool) string {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if owned {
			if err := os.Chown(p, int(nobody.Uid), int(nobody.Gid)); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "tiercache")
	diskCopyFile(t, binPath, bin)
	src := filepath.Join(base, "src")
	treetest.Small(t, src, 20, "perm")
	home := mkdir("home", true)
	e := newEnv(t, b).with(
		"HOME", home,
		"AWS_CONFIG_FILE", filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "no-aws-credentials"),
	)
	as := diskOpts{cred: nobody, bin: bin}
	mustRun(t, e.with("TIERCACHE_DIR", mkdir("pusher-cache", false)), "push", "k", src)

	t.Run("cache dir not writable", func(t *testing.T) {
		root := mkdir("root-owned-cache", false)
		m := e.with("TIERCACHE_DIR", root)
		diskFails(t, m, as, []string{`push "denied"`, root, "permission denied"}, "push", "denied", src)
		// A cache another user created: the layout is there, but
		// nothing of it is writable.
		mustRun(t, m, "ls") // root creates the layout
		diskFails(t, m, as, []string{`push "denied"`, root, "permission denied"}, "push", "denied", src)
		diskNoEntry(t, m, "denied")
		if manifests := objects(t, b, remotePrefix+"manifests/denied"); len(manifests) != 0 {
			t.Errorf("a push that failed locally wrote to the remote: %q", manifests)
		}
		// A pull into that cache fails the same way, before downloading.
		dst := filepath.Join(mkdir("pull-dst", true), "d")
		diskFails(t, m, as, []string{`pull "k"`, root, "permission denied"}, "pull", "k", dst)
		diskNoEntry(t, m, "k")
	})

	t.Run("destination not writable", func(t *testing.T) {
		m := e.with("TIERCACHE_DIR", filepath.Join(mkdir("nobody-cache", true), "cache"))
		rootDir := mkdir("root-owned-dst", false)
		for _, dst := range []string{rootDir, filepath.Join(rootDir, "sub")} {
			diskFails(t, m, as, []string{`pull "k"`, rootDir, "permission denied"}, "pull", "k", dst)
		}
		// The hydration into the user's own cache succeeded: its entry
		// is complete, and a writable destination works.
		if stdout, stderr, code := diskRun(t, m, as, "fsck", "--deep"); code != 0 {
			t.Fatalf("fsck: exit %d\n%s%s", code, stdout, stderr)
		}
		dst := filepath.Join(mkdir("nobody-dst", true), "d")
		if _, stderr, code := diskRun(t, m, as, "pull", "--fail-on-miss", "k", dst); code != 0 {
			t.Fatalf("pull into a writable destination: exit %d\n%s", code, stderr)
		}
		treetest.AssertEqual(t, src, dst)
	})
}

// diskPermissionsAsSelf is TestDiskPermissions for a user who is not
// root, local-only: a cache directory and a destination without write
// permission.
func diskPermissionsAsSelf(t *testing.T) {
	e := env{"HOME": t.TempDir(), "TIERCACHE_NO_SYNC": "true"}
	src := smallTree(t, "perm")
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(ro, 0o755) })
	m := e.with("TIERCACHE_DIR", ro)
	diskFails(t, m, diskOpts{}, []string{`push "k"`, ro, "permission denied"}, "push", "k", src)
	m = e.with("TIERCACHE_DIR", filepath.Join(t.TempDir(), "cache"))
	mustRun(t, m, "push", "k", src)
	diskFails(t, m, diskOpts{}, []string{`pull "k"`, ro, "permission denied"}, "pull", "k", filepath.Join(ro, "sub"))
	// The user's own empty DIR, read-only, in a parent it may write: the
	// tree is moved in in its place, and DIR keeps its mode, as an
	// existing DIR does.
	mustRun(t, m, "pull", "k", ro)
	treetest.AssertEqual(t, src, ro)
	if fi, err := os.Stat(ro); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("DIR after the pull: %v, %v; want mode 0555 kept", fi, err)
	}
}

// diskCopyFile copies an executable.
func diskCopyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
