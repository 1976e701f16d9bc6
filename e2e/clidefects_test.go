//go:build unix

package e2e

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache/internal/treetest"
)

// TestCLIRmSaysNotStored: rm reports a key held only by the remote tier as
// removed, and one that neither tier holds as not stored, exit 0.
func TestCLIRmSaysNotStored(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "rm-remote-1", smallTree(t, "rm"))

	// Another machine: the key is only in the remote tier.
	other := e.freshMachine(t)
	_, stderr := mustRun(t, other, "rm", "rm-remote-1", "rm-never-1")
	if !strings.Contains(stderr, `removed "rm-remote-1"`) || !strings.Contains(stderr, `"rm-never-1": not stored`) {
		t.Errorf("rm stderr: %q", stderr)
	}
	out, _ := mustRun(t, e, "rm", "--json", "rm-remote-1")
	var rm map[string][]string
	decodeJSON(t, out, &rm)
	// The first machine still held it locally.
	if len(rm["removed"]) != 1 || len(rm["not_stored"]) != 0 {
		t.Errorf("rm --json on the pushing machine: %v", rm)
	}
	out, _ = mustRun(t, e, "rm", "--json", "rm-remote-1")
	decodeJSON(t, out, &rm)
	if len(rm["removed"]) != 0 || len(rm["not_stored"]) != 1 {
		t.Errorf("rm --json of a removed key: %v", rm)
	}
	if objs := objects(t, b, remotePrefix+"manifests/"); len(objs) != 0 {
		t.Errorf("manifests left after rm: %v", objs)
	}
}

// TestCLINoLocalLeavesCacheDirAlone: with --no-local, push and pull (hit,
// restore-key hit and miss) never create or touch the local tier's
// directory, even its parent.
func TestCLINoLocalLeavesCacheDirAlone(t *testing.T) {
	b := bucket(t)
	parent := filepath.Join(t.TempDir(), "absent")
	cacheDir := filepath.Join(parent, "cache")
	e := newEnv(t, b).with("TIERCACHE_DIR", cacheDir)
	src := smallTree(t, "nl")

	absent := func(step string) {
		t.Helper()
		if _, err := os.Lstat(parent); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after %s, the cache dir's parent %s exists (%v)", step, parent, err)
		}
	}
	_, stderr := mustRun(t, e, "--no-local", "push", "nl-1", src)
	if !strings.Contains(stderr, "remote only") {
		t.Errorf("push --no-local: %q", stderr)
	}
	absent("push --no-local")
	mustRun(t, e, "--no-local", "push", "nl-1", src) // upload skipped
	absent("a second push --no-local")

	dst := filepath.Join(t.TempDir(), "dst")
	out, _ := mustRun(t, e.with("TIERCACHE_NO_LOCAL", "true"), "pull", "--json", "nl-1", dst)
	var hit pullJSON
	decodeJSON(t, out, &hit)
	if !hit.Hit || hit.Tier != "remote" {
		t.Errorf("pull --no-local: %+v", hit)
	}
	if tag, err := treetest.CheckSmall(dst); err != nil || tag != "nl" {
		t.Errorf("pulled tree: tag %q, %v", tag, err)
	}
	absent("pull --no-local")

	dst2 := filepath.Join(t.TempDir(), "dst2")
	mustRun(t, e, "--no-local", "pull", "--fail-on-miss", "nl-2", "--restore-key", "nl-", dst2)
	absent("pull --no-local with a restore key")
	mustRun(t, e, "--no-local", "-v", "pull", "nl-none", filepath.Join(t.TempDir(), "dst3"))
	absent("pull --no-local that misses")

	// Without --no-local the same environment does use the directory,
	// so the checks above watch the right path.
	mustRun(t, e, "pull", "nl-1", filepath.Join(t.TempDir(), "dst4"))
	if _, err := os.Stat(cacheDir); err != nil {
		t.Errorf("a normal pull did not create the cache dir: %v", err)
	}
}

// TestCLIRmDamagedManifest: a remote entry whose manifest is not JSON,
// which a pull refuses with "'tiercache rm KEY' removes it", is removed
// by rm from a machine that never held it, and the keys after it too.
func TestCLIRmDamagedManifest(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	mustRun(t, e, "push", "-q", "rm-bad", smallTree(t, "bad"))
	mustRun(t, e, "push", "-q", "rm-good", smallTree(t, "good"))
	body := []byte("garbage")
	if _, err := minioClient(t).PutObject(t.Context(), b, manifestName("", "rm-bad"), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, stderr := mustRun(t, e.freshMachine(t), "rm", "rm-bad", "rm-good")
	if !strings.Contains(stderr, `removed "rm-bad"`) || !strings.Contains(stderr, `removed "rm-good"`) {
		t.Errorf("rm stderr: %q", stderr)
	}
	for _, k := range []string{"rm-bad", "rm-good"} {
		if _, err := minioClient(t).StatObject(t.Context(), b, manifestName("", k), minio.StatObjectOptions{}); err == nil {
			t.Errorf("the manifest of %s is still in the bucket", k)
		}
	}
}
