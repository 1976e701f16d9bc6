//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache/internal/treetest"
)

// reuseJSON is the subset of `push --json` the reuse tests read.
type reuseJSON struct {
	Uploaded      bool   `json:"uploaded"`
	ArchiveBytes  int64  `json:"archive_bytes"`
	Base          string `json:"base"`
	FramesReused  int    `json:"frames_reused"`
	FramesKept    int    `json:"frames_kept"`
	CopiedBytes   int64  `json:"copied_bytes"`
	UploadedBytes int64  `json:"uploaded_bytes"`
}

// reuseTree writes a tree of about 40 MiB of incompressible data, so the
// archive is about as large and has about ten frames: 160 files of
// 64-448 KiB in 8 directories, and two files of 6 MiB.
func reuseTree(t testing.TB, dir string) {
	t.Helper()
	rnd := rand.NewChaCha8([32]byte{7})
	for i := range 162 {
		size := 64<<10 + (i*97%7)*(64<<10)
		if i >= 160 {
			size = 6 << 20
		}
		data := make([]byte, size)
		_, _ = rnd.Read(data)
		reuseWrite(t, filepath.Join(dir, fmt.Sprintf("d%d", i%8), fmt.Sprintf("f%03d", i)), data)
	}
}

func reuseWrite(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// reuseManifest reads key's manifest from the bucket.
func reuseManifest(t testing.TB, b, key string) (sum string, size int64) {
	t.Helper()
	obj, err := minioClient(t).GetObject(t.Context(), b, remotePrefix+"manifests/"+key+".json", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	var m struct {
		Meta struct {
			SHA256      string `json:"sha256"`
			ArchiveSize int64  `json:"archive_size"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(obj).Decode(&m); err != nil {
		t.Fatalf("manifest of %q: %v", key, err)
	}
	if len(m.Meta.SHA256) != 64 || m.Meta.ArchiveSize <= 0 {
		t.Fatalf("manifest of %q records no digest or size: %+v", key, m.Meta)
	}
	return m.Meta.SHA256, m.Meta.ArchiveSize
}

// reusePush pushes dir under key through p, and returns what push said
// and how many request body bytes crossed p meanwhile.
func reusePush(t testing.TB, e env, p *faultProxy, key, dir string, args ...string) (reuseJSON, int64) {
	t.Helper()
	before := p.bodyBytes()
	out, _ := mustRun(t, e, append(append([]string{"push", "--json"}, args...), key, dir)...)
	var r reuseJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("push --json: %v\n%s", err, out)
	}
	return r, p.bodyBytes() - before
}

// reuseAssertExact checks what a push with a base committed under key:
// byte for byte the object a full (--no-base) push of dir makes, which
// a fresh machine restores exactly, with tiercache and with zstd | tar.
func reuseAssertExact(t *testing.T, e env, p *faultProxy, b, key, dir string) {
	t.Helper()
	p.clear()
	full, _ := reusePush(t, e, p, key+"-full", dir, "--no-base")
	if full.CopiedBytes != 0 || full.Base != "" {
		t.Errorf("--no-base push reused: %+v", full)
	}
	sum, size := reuseManifest(t, b, key)
	fullSum, fullSize := reuseManifest(t, b, key+"-full")
	if sum != fullSum || size != fullSize {
		t.Errorf("the object is %s (%d bytes), a full push's %s (%d bytes)", sum, size, fullSum, fullSize)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustRun(t, e.freshMachine(t), "pull", key, dst)
	treetest.AssertEqual(t, dir, dst)
	reusePlainRestore(t, b, key, dir)
}

// reuseSetup starts a reuse test: a bucket behind a fault proxy, a
// machine using it, and the reuse tree pushed under key.
func reuseSetup(t *testing.T, key string) (b string, p *faultProxy, e env, src string, first reuseJSON, sent int64) {
	t.Helper()
	b = bucket(t)
	p = newFaultProxy(t)
	e = newEnv(t, b).with("TIERCACHE_S3_ENDPOINT", p.URL)
	src = filepath.Join(t.TempDir(), "tree")
	reuseTree(t, src)
	first, sent = reusePush(t, e, p, key, src)
	return b, p, e, src, first, sent
}

// TestReuseUploadsOnlyWhatChanged pushes a tree, then versions of it
// with a file inserted, deleted or changed, each under a new key with
// the first as base: each uploads a small part of its archive, counted
// at the transport; the remote's object is byte for byte a full push's
// (same SHA-256 as a --no-base push of the same tree); and a fresh
// machine restores it exactly, with tiercache and with zstd | tar.
func TestReuseUploadsOnlyWhatChanged(t *testing.T) {
	b, p, e, src, v1, sent1 := reuseSetup(t, "v1")
	if !v1.Uploaded || v1.Base != "" || v1.CopiedBytes != 0 || sent1 < v1.ArchiveBytes {
		t.Fatalf("first push: %+v, %d bytes sent; want a full upload with no base", v1, sent1)
	}
	rnd := rand.NewChaCha8([32]byte{8})
	changes := []struct {
		name   string
		change func(dir string)
	}{
		{"insert", func(dir string) {
			data := make([]byte, 1<<20)
			_, _ = rnd.Read(data)
			reuseWrite(t, filepath.Join(dir, "d3", "new", "inserted"), data)
		}},
		{"delete", func(dir string) {
			if err := os.Remove(filepath.Join(dir, "d2", "f050")); err != nil {
				t.Fatal(err)
			}
		}},
		{"modify", func(dir string) {
			data := make([]byte, 100<<10)
			_, _ = rnd.Read(data)
			reuseWrite(t, filepath.Join(dir, "d5", "f077"), data)
		}},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tree")
			if err := exec.Command("cp", "-a", src, dir).Run(); err != nil {
				t.Fatal(err)
			}
			ch.change(dir)
			key := "v2-" + ch.name
			r, sent := reusePush(t, e, p, key, dir, "--base", "v1")
			t.Logf("%s: %+v, %d bytes sent", ch.name, r, sent)
			if r.Base != "v1" || r.CopiedBytes == 0 || r.UploadedBytes+r.CopiedBytes != r.ArchiveBytes {
				t.Errorf("push with --base v1: %+v; want v1 as base, bytes copied, sent + copied = archive", r)
			}
			// The local tier keeps v1's archive (it was pushed from
			// here), so no frame found in it is compressed again: at
			// least every frame copied whole (reused) was kept, and
			// those split between a copied and an uploaded part too.
			if r.FramesReused == 0 || r.FramesKept < r.FramesReused {
				t.Errorf("%d frames taken from the base's local copy, %d copied whole; want some copied, and at least as many taken", r.FramesKept, r.FramesReused)
			}
			// Several frames change around the edit at most; the
			// rest is copied.
			if limit := r.ArchiveBytes / 3; sent > limit || r.UploadedBytes > limit {
				t.Errorf("%d bytes crossed the transport, %d reported sent, for a %d-byte archive; want at most %d", sent, r.UploadedBytes, r.ArchiveBytes, limit)
			}
			reuseAssertExact(t, e, p, b, key, dir)
		})
	}
}

// reusePlainRestore restores key's object with zstd -d | tar -x, where
// both are installed, and compares it with dir.
func reusePlainRestore(t *testing.T, b, key, dir string) {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zstd is not installed")
		}
		return
	}
	var m struct {
		Data string `json:"data"`
	}
	obj, err := minioClient(t).GetObject(t.Context(), b, remotePrefix+"manifests/"+key+".json", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(obj).Decode(&m)
	obj.Close()
	if err != nil || m.Data == "" {
		t.Fatalf("manifest of %q names no data object: %v", key, err)
	}
	names := objects(t, b, remotePrefix+"data/")
	var name string
	for _, n := range names {
		if strings.Contains(n, m.Data) {
			name = n
		}
	}
	if name == "" {
		t.Fatalf("no data object %q among %q", m.Data, names)
	}
	data, err := minioClient(t).GetObject(t.Context(), b, name, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	out := t.TempDir()
	cmd := exec.Command("sh", "-c", "zstd -dc | tar -xf - -C \"$0\"", out)
	cmd.Stdin = data
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zstd -d | tar -x: %v\n%s", err, stderr.String())
	}
	treetest.AssertEqual(t, dir, out)
}

// TestReuseBaseChoice checks where a push finds its base without
// --base: the entry the last pull restored into the same directory on
// this machine, else the newest entry under --restore-key; and that a
// base that is gone costs only a full upload.
func TestReuseBaseChoice(t *testing.T) {
	_, p, e, src, _, _ := reuseSetup(t, "deps-1")
	reuseWrite(t, filepath.Join(src, "d0", "f000"), []byte("changed"))
	reusePush(t, e, p, "deps-2", src)

	// A pull on another machine, then a push of what changed there.
	m := e.freshMachine(t)
	dir := filepath.Join(t.TempDir(), "work")
	mustRun(t, m, "pull", "deps-1", dir)
	reuseWrite(t, filepath.Join(dir, "d1", "f001"), []byte("changed too"))
	r, _ := reusePush(t, m, p, "deps-3", dir)
	if r.Base != "deps-1" || r.CopiedBytes == 0 {
		t.Errorf("push after a pull of deps-1 into the same directory: %+v; want deps-1 as base", r)
	}

	// No pull into this directory: --restore-key's newest match.
	other := filepath.Join(t.TempDir(), "other")
	if err := exec.Command("cp", "-a", dir, other).Run(); err != nil {
		t.Fatal(err)
	}
	r, _ = reusePush(t, e.freshMachine(t), p, "deps-4", other, "--restore-key", "nope-", "--restore-key", "deps-")
	if r.Base != "deps-3" || r.CopiedBytes == 0 {
		t.Errorf("push with --restore-key deps-: %+v; want the newest, deps-3, as base", r)
	}

	// A --base that is not stored: a full upload, though --restore-key
	// would have found one, and a warning (no --verbose needed) says why.
	mustRun(t, e, "rm", "deps-1")
	out, stderr := mustRun(t, e.freshMachine(t), "push", "--json", "--base", "deps-1", "--restore-key", "deps-", "deps-5", other)
	r = reuseJSON{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Base != "" || r.CopiedBytes != 0 || !r.Uploaded || !strings.Contains(stderr, `warning: push "deps-5": --base "deps-1" was not used`) || !strings.Contains(stderr, `base "deps-1": not stored`) {
		t.Errorf("push with a deleted base: %+v\nstderr: %s\nwant a full upload, and a warning saying why", r, stderr)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustRun(t, e.freshMachine(t), "pull", "deps-5", dst)
	treetest.AssertEqual(t, other, dst)

	// No candidate at all: --verbose says so once; with --no-base, not.
	const noBase = "no base entry to reuse frames from: the whole archive is uploaded"
	if _, stderr := mustRun(t, e.freshMachine(t), "push", "-v", "--restore-key", "none-", "fresh-1", other); strings.Count(stderr, noBase) != 1 {
		t.Errorf("push -v with no base to find: stderr %q; want one note that none was found", stderr)
	}
	if _, stderr := mustRun(t, e.freshMachine(t), "push", "-v", "--no-base", "fresh-2", other); strings.Contains(stderr, noBase) {
		t.Errorf("push -v --no-base: stderr %q; want no note about a missing base", stderr)
	}
}

// TestReuseCopyRefused covers servers that cannot copy: one answering
// UploadPartCopy with 501 NotImplemented, one answering a copy with 200
// and no part, one whose base vanished (404 NoSuchKey) mid-push. Each
// push falls back to uploading, commits the same object a full push
// makes, and says why under --verbose.
func TestReuseCopyRefused(t *testing.T) {
	cases := []struct {
		name  string
		fault faultSpec
	}{
		{"not implemented", faultSpec{kind: fStatus, status: http.StatusNotImplemented, code: "NotImplemented"}},
		{"base gone", faultSpec{kind: fStatus, status: http.StatusNotFound, code: "NoSuchKey"}},
		{"empty answer", faultSpec{kind: fEmptyOK}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, p, e, src, _, _ := reuseSetup(t, "v1")
			reuseWrite(t, filepath.Join(src, "d4", "f004"), []byte("changed"))
			rule := p.add(faultRule{method: "PUT", header: "X-Amz-Copy-Source", times: -1, fault: tc.fault})
			before := p.bodyBytes()
			out, stderr := mustRun(t, e, "push", "--json", "--verbose", "--base", "v1", "v2", src)
			sent := p.bodyBytes() - before
			var r reuseJSON
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if p.firedCount(rule) == 0 {
				t.Fatal("no copy was attempted")
			}
			if r.CopiedBytes != 0 || !r.Uploaded || r.UploadedBytes != r.ArchiveBytes || sent < r.ArchiveBytes {
				t.Errorf("push whose copies were refused: %+v, %d bytes sent; want everything uploaded", r, sent)
			}
			if !strings.Contains(stderr, "copying from base") {
				t.Errorf("--verbose does not say why copying stopped:\n%s", stderr)
			}
			reuseAssertExact(t, e, p, b, "v2", src)
			faultCheckUploads(t, b)
		})
	}
}

// TestReuseBaseChangedMidPush changes the base while a push copies from
// it. Replaced by another push: the replaced version's object stays for
// the grace, so the copies still hold. Collected (its objects deleted, as
// prune does once the grace has passed): the copies fail and the push
// uploads instead. Either way the push commits exactly its own tree, the
// object a full push makes.
func TestReuseBaseChangedMidPush(t *testing.T) {
	cases := []struct {
		name   string
		copied bool // whether the push still copies
		change func(t *testing.T, e env, b, other string) func()
	}{
		{"replaced", true, func(t *testing.T, e env, b, other string) func() {
			return func() {
				if _, stderr, code, err := stressRun(e, "push", "--no-base", "base", other); err != nil || code != 0 {
					t.Errorf("replacing the base mid-push: exit %d, %v\n%s", code, err, stderr)
				}
			}
		}},
		{"collected", false, func(t *testing.T, e env, b, other string) func() {
			return func() {
				for _, name := range dataObjects(t, b) {
					if err := minioClient(t).RemoveObject(context.Background(), b, name, minio.RemoveObjectOptions{}); err != nil {
						t.Errorf("deleting %s mid-push: %v", name, err)
					}
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, p, e, src, _, _ := reuseSetup(t, "base")
			other := filepath.Join(t.TempDir(), "other")
			reuseWrite(t, filepath.Join(other, "x"), []byte("another tree"))
			reuseWrite(t, filepath.Join(src, "d6", "f006"), []byte("changed"))
			rule := p.add(faultRule{method: "PUT", header: "X-Amz-Copy-Source", times: 1,
				fault: faultSpec{kind: fBefore, before: tc.change(t, e, b, other)}})
			r, _ := mustRunJSON(t, e, "push", "--json", "--verbose", "--base", "base", "v2", src)
			if p.firedCount(rule) == 0 {
				t.Fatal("no copy was attempted")
			}
			if got := r.json.CopiedBytes > 0; got != tc.copied || r.json.Base != "base" {
				t.Errorf("push: %+v; want base %q, bytes copied: %v\n%s", r.json, "base", tc.copied, r.stderr)
			}
			if !tc.copied && !strings.Contains(r.stderr, "copying from base") {
				t.Errorf("--verbose does not say why copying stopped:\n%s", r.stderr)
			}
			reuseAssertExact(t, e, p, b, "v2", src)
			if tc.copied {
				back := filepath.Join(t.TempDir(), "back")
				mustRun(t, e.freshMachine(t), "pull", "base", back)
				treetest.AssertEqual(t, other, back)
			}
		})
	}
}

// pushRun is what a push printed: its --json answer and its stderr.
type pushRun struct {
	json   reuseJSON
	stderr string
}

// mustRunJSON runs a push with --json among args.
func mustRunJSON(t testing.TB, e env, args ...string) (pushRun, string) {
	t.Helper()
	out, stderr := mustRun(t, e, args...)
	var r reuseJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return pushRun{r, stderr}, out
}
