//go:build unix

package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// addKeepingMtime writes name under root without changing its parent's
// mtime, so the tree still equals one built without it.
func addKeepingMtime(t *testing.T, root, name, body string) {
	t.Helper()
	p := filepath.Join(root, name)
	parent := filepath.Dir(p)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(parent)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(parent, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestPathsEntry: a directory (the fidelity tree, with files an exclude
// leaves out) and a file pushed as one entry, pulled on another machine
// into other paths with zero differences, from the remote and then from
// the local archive; a pull naming another number of paths is a usage
// error listing both; and the remote object restores with zstd and tar
// alone, as the README says.
func TestPathsEntry(t *testing.T) {
	b := bucket(t)
	pusher, puller := newEnv(t, b), newEnv(t, b)
	src, want := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "want")
	for _, d := range []string{src, want} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		treetest.Fidelity(t, d, treetest.FidelityOptions{SmallFiles: 200})
	}
	// What the excludes drop: *.tmp at any depth and the root's scratch/.
	addKeepingMtime(t, src, "many/x.tmp", "temporary")
	addKeepingMtime(t, src, "scratch/log.txt", "scratch")
	fi, err := os.Stat(filepath.Join(want))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(src, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(file, []byte(`{"cache": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, pusher, "push", "--exclude", "*.tmp", "--exclude", "/scratch", "multi-1", src, file)

	base := t.TempDir()
	dstDir, dstFile := filepath.Join(base, "home", "mod"), filepath.Join(base, "etc", "s.json")
	for _, from := range []string{"remote", "local"} {
		stdout, stderr := mustRun(t, puller, "pull", "--json", "multi-1", dstDir, dstFile)
		var got pullJSON
		decodeJSON(t, stdout, &got)
		if !got.Hit || string(got.Tier) != from {
			t.Fatalf("pull: %+v, want a hit from the %s tier\n%s", got, from, stderr)
		}
		treetest.AssertEqual(t, want, dstDir)
		if b, err := os.ReadFile(dstFile); err != nil || string(b) != `{"cache": true}` {
			t.Fatalf("%s = %q, %v", dstFile, b, err)
		}
		if fi, err := os.Stat(dstFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", dstFile, fi, err)
		}
		if err := fsutil.RemoveAll(base); err != nil {
			t.Fatal(err)
		}
	}

	// A job whose list of paths changed misses (exit 3 with
	// --fail-on-miss), noting why; the entry stays for its push.
	_, stderr, code := runCLI(t, puller, "pull", "multi-1", dstDir, "--fail-on-miss")
	if code != 3 || !strings.Contains(stderr, "holds 2 paths: "+src+", "+file) || !strings.Contains(stderr, "the pull names 1 path: "+dstDir) {
		t.Errorf("pull into one path: exit %d, stderr %q; want a miss (3) noting both lists", code, stderr)
	}
	if ents, err := os.ReadDir(dstDir); err != nil || len(ents) != 0 {
		t.Errorf("after the miss, %s holds %v (%v); want it empty", dstDir, ents, err)
	}

	// zstd -d | tar -x, then each numbered member is a path.
	for _, tool := range []string{"zstd", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed; install it to run this part (set CI to make this a failure)", tool)
		}
	}
	var archive string
	for _, o := range objects(t, b, remotePrefix) {
		if strings.HasSuffix(o, ".tar.zst") {
			archive = o
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	obj, err := minioClient(t).GetObject(ctx, b, archive, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	// -p: tar run by a user who is not root applies the umask to modes.
	cmd := exec.CommandContext(ctx, "sh", "-c", `zstd -d -c | tar -x -p -f - -C "$1"`, "sh", out)
	cmd.Stdin = bytes.NewReader(data)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zstd -d | tar -x: %v\n%s", err, msg)
	}
	treetest.AssertEqual(t, want, filepath.Join(out, "0"))
	if b, err := os.ReadFile(filepath.Join(out, "1")); err != nil || string(b) != `{"cache": true}` {
		t.Errorf("member 1 = %q, %v", b, err)
	}
}
