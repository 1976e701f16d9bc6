//go:build unix

package e2e

// Hostile input at the CLI level: archives and manifests planted in the
// bucket by someone with write access to it, and keys that try to break
// out of the cache's directories.
//
// A hostile entry is planted the way an attacker would: a legitimate
// entry is pushed with the CLI, then its data object is replaced by a
// hand-made archive and its manifest rewritten to record that archive's
// size, SHA-256, tree size and member count, under a data object name that
// encodes the same tree size (the layout remote/s3 documents). The
// integrity check therefore passes, and what stops the pull is
// extraction's own refusal; TestHostileArchives proves that with a benign
// archive planted the same way, which must pull fine.
//
// Every target a hostile archive aims at (traversals, absolute names,
// symlink and hardlink targets) lies inside a per-test box that also holds
// DEST and a sentinel sibling of it, so "nothing written outside DEST" is
// checked by comparing a snapshot of the box before and after the pull.
//
// The file is Unix-only: it uses link counts, device nodes, FIFOs and the
// shell's ulimit.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// hostileMember is one member of a hand-made tar archive.
type hostileMember struct {
	hdr  tar.Header
	body string
}

// memReg, memDir, memSymlink and memHardlink make members of each type.
func memReg(name, body string) hostileMember {
	return hostileMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func memDir(name string) hostileMember {
	return hostileMember{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func memSymlink(name, target string) hostileMember {
	return hostileMember{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func memHardlink(name, target string) hostileMember {
	return hostileMember{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

// memNode is a device node or FIFO; the device numbers are /dev/null's
// (char) and the first loop device's (block).
func memNode(name string, typ byte) hostileMember {
	h := tar.Header{Typeflag: typ, Name: name, Mode: 0o666}
	switch typ {
	case tar.TypeChar:
		h.Devmajor, h.Devminor = 1, 3
	case tar.TypeBlock:
		h.Devmajor, h.Devminor = 7, 0
	}
	return hostileMember{hdr: h}
}

// hostileArchive is a .tar.zst and what a manifest must record for it to
// pass the integrity check.
type hostileArchive struct {
	data  []byte
	sum   string // hex SHA-256 of data
	size  int64  // tree bytes: the regular files' sizes
	files int64  // members
}

// buildHostileArchive writes members, in order, as a zstd-compressed tar
// stream. A regular file whose body is shorter than its header's size
// ends the archive right after that header, with no data and no end
// marker: an archive that only claims a huge file.
func buildHostileArchive(t testing.TB, members ...hostileMember) hostileArchive {
	t.Helper()
	var a hostileArchive
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mtime := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	complete := true
	for _, m := range members {
		hdr := m.hdr
		hdr.ModTime = mtime
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("tar header %q: %v", hdr.Name, err)
		}
		a.files++
		if hdr.Typeflag == tar.TypeReg {
			a.size += hdr.Size
			if int64(len(m.body)) < hdr.Size {
				complete = false
				break
			}
		}
		if _, err := io.WriteString(tw, m.body); err != nil {
			t.Fatal(err)
		}
	}
	if complete {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	h := sha256.New()
	enc, err := zstd.NewWriter(io.MultiWriter(&buf, h))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	a.data, a.sum = buf.Bytes(), hex.EncodeToString(h.Sum(nil))
	return a
}

// hostileBombSize is the decompressed size of the decompression bomb.
const hostileBombSize = 8 << 30

// buildHostileBomb returns an archive of one file of hostileBombSize zeros, a few
// hundred KB compressed. The zeros are streamed through the encoder, so
// building it takes about a second and little memory.
func buildHostileBomb(t testing.TB) hostileArchive {
	t.Helper()
	var buf bytes.Buffer
	h := sha256.New()
	enc, err := zstd.NewWriter(io.MultiWriter(&buf, h),
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(enc)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: hostileBombSize, ModTime: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for n := 0; n < hostileBombSize; n += len(zeros) {
		if _, err := tw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return hostileArchive{data: buf.Bytes(), sum: hex.EncodeToString(h.Sum(nil)), size: hostileBombSize, files: 1}
}

// plantedKey gives direct access, through minio-go, to the objects of one
// key in the bucket. Keys used with it are made of a-z, 0-9 and '-', which
// remote/s3 encodes as themselves.
type plantedKey struct {
	t      testing.TB
	bucket string
	key    string
}

func (r plantedKey) manifestName() string { return remotePrefix + "manifests/" + r.key + ".json" }

func (r plantedKey) dataName(id string) string { return remotePrefix + "data/" + r.key + "/" + id }

func (r plantedKey) get(name string) []byte {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := minioClient(r.t).GetObject(ctx, r.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		r.t.Fatalf("get %s: %v", name, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		r.t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func (r plantedKey) put(name string, data []byte) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := minioClient(r.t).PutObject(ctx, r.bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		r.t.Fatalf("put %s: %v", name, err)
	}
}

// damageData rewrites the data object the key's manifest names with
// damage applied to its bytes.
func (r plantedKey) damageData(damage func([]byte) []byte) {
	r.t.Helper()
	m, _ := r.manifest()
	name := r.dataName(m["data"].(string))
	r.put(name, damage(r.get(name)))
}

// flipByte flips a bit in the middle of d: damage that keeps the size.
func flipByte(d []byte) []byte { d[len(d)/2] ^= 0x10; return d }

func (r plantedKey) remove(name string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := minioClient(r.t).RemoveObject(ctx, r.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		r.t.Fatalf("remove %s: %v", name, err)
	}
}

// manifest reads the key's manifest as generic JSON, numbers kept exact,
// so rewriting it keeps every field tiercache wrote.
func (r plantedKey) manifest() (m, meta map[string]any) {
	r.t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.get(r.manifestName())))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		r.t.Fatalf("manifest of %q: %v", r.key, err)
	}
	meta, ok := m["meta"].(map[string]any)
	if !ok {
		r.t.Fatalf("manifest of %q has no meta object: %v", r.key, m)
	}
	if _, ok := m["data"].(string); !ok {
		r.t.Fatalf("manifest of %q names no data object: %v", r.key, m)
	}
	return m, meta
}

func (r plantedKey) putManifest(m map[string]any) {
	r.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	r.put(r.manifestName(), b)
}

// manifestInt returns the integer field f of a manifest's meta.
func manifestInt(t testing.TB, meta map[string]any, f string) int64 {
	t.Helper()
	n, ok := meta[f].(json.Number)
	if !ok {
		t.Fatalf("manifest meta.%s is %v, not a number", f, meta[f])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("manifest meta.%s: %v", f, err)
	}
	return v
}

// plantDataID returns a fresh data object id recording treeSize, in the
// form remote/s3 writes and checks: upload time, random and tree size,
// each as 16 lowercase hex digits.
func plantDataID(treeSize int64) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%016x-%016x-%016x.tar.zst", uint64(time.Now().UnixNano()), binary.BigEndian.Uint64(r[:]), uint64(treeSize))
}

// moveData stores data as a new data object whose name records treeSize,
// points the manifest m at it and deletes the object m named before; the
// caller writes m back.
func (r plantedKey) moveData(m map[string]any, data []byte, treeSize int64) {
	r.t.Helper()
	old := m["data"].(string)
	id := plantDataID(treeSize)
	r.put(r.dataName(id), data)
	m["data"] = id
	r.remove(r.dataName(old))
}

// plantArchive pushes a legitimate entry under key, then replaces its
// archive by a and rewrites the manifest (tree size, member count, archive
// size and SHA-256, and a data object name recording the same tree size)
// so that a passes every integrity check.
func plantArchive(t testing.TB, e env, b, key string, a hostileArchive) {
	t.Helper()
	mustRun(t, e, "push", "-q", key, smallSrc(t, key))
	r := plantedKey{t, b, key}
	m, meta := r.manifest()
	r.moveData(m, a.data, a.size)
	meta["size"], meta["files"] = a.size, a.files
	meta["archive_size"], meta["sha256"] = int64(len(a.data)), a.sum
	delete(meta, "index") // a hand-made archive has none
	r.putManifest(m)
}

// hostileBox is a directory holding everything a hostile pull could
// reach: the pulling machine's local tier, DEST (with a file already in
// it), a sentinel sibling of DEST with a secret file, and an empty
// directory that hostile symlinks point at.
type hostileBox struct {
	root, cache, dest, sentinel, secret, outside string
	env                                          env
	before                                       map[string]string
}

func newHostileBox(t testing.TB, e env) *hostileBox {
	t.Helper()
	root := t.TempDir()
	x := &hostileBox{
		root:     root,
		cache:    filepath.Join(root, "cache"),
		dest:     filepath.Join(root, "dest"),
		sentinel: filepath.Join(root, "sentinel"),
		outside:  filepath.Join(root, "outside-dir"),
	}
	x.secret = filepath.Join(x.sentinel, "secret")
	// The local tier's directory exists beforehand, so creating it does
	// not change the box's own mtime.
	for _, d := range []string{x.cache, x.dest, x.sentinel, x.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range map[string]string{x.secret: "root:x:0:0::/root:/bin/sh\n", filepath.Join(x.dest, "keep.txt"): "kept\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	x.env = e.with("TIERCACHE_DIR", x.cache)
	x.before = hostileSnapshot(t, root, x.cache)
	return x
}

// hostileSnapshot describes every path under root but those under skip: type,
// permissions, size, link count, mtime and content digest or link target.
func hostileSnapshot(t testing.TB, root, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v size=%d mtime=%d", info.Mode(), info.Size(), info.ModTime().UnixNano())
		if p == root {
			// DEST's parent: a pull extracts into a directory it
			// makes there and removes, which moves its mtime.
			desc = fmt.Sprintf("%v", info.Mode())
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			desc += fmt.Sprintf(" nlink=%d", st.Nlink)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", root, err)
	}
	return out
}

// checkUntouched fails t if anything in the box outside the local tier
// changed: DEST, the sentinel, the symlink target, or a new path anywhere.
func (x *hostileBox) checkUntouched(t testing.TB) {
	t.Helper()
	after := hostileSnapshot(t, x.root, x.cache)
	for p, d := range after {
		if b, ok := x.before[p]; !ok {
			t.Errorf("created outside the local tier: %s (%s)", p, d)
		} else if b != d {
			t.Errorf("changed outside the local tier: %s\nbefore %s\nafter  %s", p, b, d)
		}
	}
	for p := range x.before {
		if _, ok := after[p]; !ok {
			t.Errorf("removed outside the local tier: %s", p)
		}
	}
}

// checkNoEntry fails t unless the box's local tier holds no entry and
// nothing half-built: `ls --tier local` is empty and staging/, data/ and
// index/ (see the local package's layout) hold nothing.
func (x *hostileBox) checkNoEntry(t testing.TB) {
	t.Helper()
	out, _ := mustRun(t, x.env, "ls", "--json", "--tier", "local")
	var entries []map[string]any
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	if len(entries) != 0 {
		t.Errorf("local entries after a refused pull: %v", entries)
	}
	for _, d := range []string{"staging", "data", "index"} {
		names, err := os.ReadDir(filepath.Join(x.cache, d))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if len(names) != 0 {
			t.Errorf("local tier's %s/ holds %d names after a refused pull, e.g. %s", d, len(names), names[0].Name())
		}
	}
}

// checkErrorLine fails t unless stderr is exactly one line, the error
// of `op "key"`, holding every string in want.
func checkErrorLine(t testing.TB, op, key, stderr string, want ...string) {
	t.Helper()
	line, rest, _ := strings.Cut(stderr, "\n")
	if rest != "" || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line:\n%s", stderr)
	}
	if prefix := fmt.Sprintf("tiercache: %s %q: ", op, key); !strings.HasPrefix(line, prefix) {
		t.Errorf("error line %q does not start with %q", line, prefix)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("error line %q does not mention %q", line, w)
		}
	}
}

// pullRefused pulls key into the box's DEST and checks the refusal: with
// --strict, exit 1 and one error line naming the key and holding want;
// by default a miss with one warning holding want. Either way nothing is
// written outside the local tier and no local entry is left. The strict
// pull is read-only: a writable pull removes a damaged entry.
func (x *hostileBox) pullRefused(t testing.TB, key string, want ...string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, x.env.with("TIERCACHE_READ_ONLY", "true"), "--strict", "pull", key, x.dest)
	if code != 1 {
		t.Errorf("pull --strict %q: exit %d, want 1\nstdout: %s\nstderr: %s", key, code, stdout, stderr)
	}
	checkErrorLine(t, "pull", key, stderr, want...)
	x.checkUntouched(t)
	x.checkNoEntry(t)
	stdout, stderr, code = runCLI(t, x.env, "-q", "pull", key, x.dest)
	if code != 0 {
		t.Errorf("pull %q: exit %d, want 0 (a miss with a warning)\nstdout: %s\nstderr: %s", key, code, stdout, stderr)
	}
	checkErrorLine(t, "warning: pull", key, stderr, want...)
	x.checkUntouched(t)
	x.checkNoEntry(t)
}

// The sentinels' texts, which the CLI's error lines carry.
var (
	errTextUnsafe    = tiercache.ErrUnsafeArchive.Error()
	errTextIntegrity = tiercache.ErrIntegrity.Error()
	errTextLimit     = tiercache.ErrLimitExceeded.Error()
)

// TestHostileArchives plants archives that try to write outside the
// destination, create device nodes or FIFOs, or claim more than the
// extraction limit, each with a manifest that passes the integrity check,
// and checks that pull refuses each one naming the key and the member,
// writes nothing outside DEST (which keeps its old contents), and leaves
// no local entry.
func TestHostileArchives(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	// A legitimate first member, so that each refusal happens with part
	// of the tree already extracted into staging.
	first := []hostileMember{memDir("d"), memReg("d/before.txt", "before\n")}
	cases := []struct {
		name    string
		members func(x *hostileBox) []hostileMember
		want    []string // in the error line
	}{
		{"dotdot", func(x *hostileBox) []hostileMember {
			return []hostileMember{memReg("../escaped-traversal", "pwned")}
		}, []string{errTextUnsafe, `"../escaped-traversal"`}},
		{"deep-dotdot", func(x *hostileBox) []hostileMember {
			// However deep staging is, this lands in the box if joined.
			return []hostileMember{memReg(strings.Repeat("../", 40)+x.root[1:]+"/escaped-deep", "pwned")}
		}, []string{errTextUnsafe, "escaped-deep"}},
		{"absolute", func(x *hostileBox) []hostileMember {
			return []hostileMember{memReg(filepath.Join(x.root, "escaped-abs"), "pwned")}
		}, []string{errTextUnsafe, "escaped-abs"}},
		{"write-through-symlink", func(x *hostileBox) []hostileMember {
			return []hostileMember{memSymlink("l", x.outside), memReg("l/pwned", "pwned")}
		}, []string{errTextUnsafe, `"l/pwned"`, "symlink"}},
		{"write-through-nested-symlink", func(x *hostileBox) []hostileMember {
			return []hostileMember{memSymlink("d/up", "../.."), memReg("d/up/escaped-up", "pwned")}
		}, []string{errTextUnsafe, `"d/up/escaped-up"`}},
		{"hardlink-absolute", func(x *hostileBox) []hostileMember {
			// If the link were made, the next member would overwrite
			// the sentinel through it.
			return []hostileMember{memHardlink("passwd", x.secret), memReg("passwd", "pwned")}
		}, []string{errTextUnsafe, `"passwd"`, "hardlink"}},
		{"hardlink-dotdot", func(x *hostileBox) []hostileMember {
			return []hostileMember{memHardlink("x", "../x"), memReg("x", "pwned")}
		}, []string{errTextUnsafe, `"x"`, "hardlink"}},
		{"hardlink-deep-dotdot", func(x *hostileBox) []hostileMember {
			return []hostileMember{memHardlink("y", strings.Repeat("../", 40)+x.secret[1:]), memReg("y", "pwned")}
		}, []string{errTextUnsafe, `"y"`, "hardlink"}},
		{"duplicate-name", func(x *hostileBox) []hostileMember {
			return []hostileMember{memReg("dup", "one"), memSymlink("dup", x.secret), memReg("dup", "pwned")}
		}, []string{errTextUnsafe, `"dup"`, "duplicate"}},
		{"char-device", func(x *hostileBox) []hostileMember {
			return []hostileMember{memNode("hostile-char", tar.TypeChar)}
		}, []string{errTextUnsafe, `"hostile-char"`, "device"}},
		{"block-device", func(x *hostileBox) []hostileMember {
			return []hostileMember{memNode("hostile-block", tar.TypeBlock)}
		}, []string{errTextUnsafe, `"hostile-block"`, "device"}},
		{"fifo", func(x *hostileBox) []hostileMember {
			return []hostileMember{memNode("hostile-fifo", tar.TypeFifo)}
		}, []string{errTextUnsafe, `"hostile-fifo"`, "FIFO"}},
		{"declared-size-over-limit", func(x *hostileBox) []hostileMember {
			// The header claims 100 GiB, over the 64 GiB default; the
			// data is never there, the header alone must be refused.
			m := memReg("huge", "")
			m.hdr.Size = 100 << 30
			return []hostileMember{m}
		}, []string{errTextLimit}}, // the free-space check or the size limit, depending on the disk
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := fmt.Sprintf("hostile-%d", i)
			x := newHostileBox(t, e)
			a := buildHostileArchive(t, append(slices.Clone(first), tc.members(x)...)...)
			plantArchive(t, e.freshMachine(t), b, key, a)
			x.pullRefused(t, key, tc.want...)
			for _, p := range []string{filepath.Join(x.outside, "pwned"), filepath.Join(x.root, "escaped-traversal")} {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s exists (%v)", p, err)
				}
			}
		})
	}

	// The control: a benign archive planted the same way pulls fine, so
	// the refusals above come from extraction, not from the integrity
	// check.
	t.Run("benign-control", func(t *testing.T) {
		t.Parallel()
		x := newHostileBox(t, e)
		a := buildHostileArchive(t, append(slices.Clone(first),
			memReg("d/file.txt", "hello\n"),
			memSymlink("d/link", "file.txt"),
			memSymlink("abs-link", "/etc/passwd"), // links may point anywhere; they are never followed
			memHardlink("d/hard", "d/file.txt"),
			memDir("empty"))...)
		plantArchive(t, e.freshMachine(t), b, "benign", a)
		mustRun(t, x.env, "pull", "--fail-on-miss", "benign", x.dest)
		for p, want := range map[string]string{"d/before.txt": "before\n", "d/file.txt": "hello\n", "d/hard": "hello\n", "keep.txt": "kept\n"} {
			if got, err := os.ReadFile(filepath.Join(x.dest, p)); err != nil || string(got) != want {
				t.Errorf("%s: %q, %v; want %q", p, got, err, want)
			}
		}
		for p, want := range map[string]string{"d/link": "file.txt", "abs-link": "/etc/passwd"} {
			if got, err := os.Readlink(filepath.Join(x.dest, p)); err != nil || got != want {
				t.Errorf("symlink %s: %q, %v; want %q", p, got, err, want)
			}
		}
		if fi, err := os.Stat(filepath.Join(x.dest, "empty")); err != nil || !fi.IsDir() {
			t.Errorf("empty dir: %v", err)
		}
	})
}

// TestHostileIntegrity corrupts a legitimate entry's archive with its
// manifest left as it was, or makes the manifest lie about the archive,
// and checks that pull fails with an integrity error naming the key,
// leaving no entry and nothing written.
func TestHostileIntegrity(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	cases := []struct {
		name   string
		mutate func(r plantedKey, m, meta map[string]any, data []byte)
		want   string // besides errTextIntegrity
	}{
		{"truncated", func(r plantedKey, m, meta map[string]any, data []byte) {
			r.put(r.dataName(m["data"].(string)), data[:len(data)-100])
		}, ""},
		{"bit-flipped", func(r plantedKey, m, meta map[string]any, data []byte) {
			d := slices.Clone(data)
			d[len(d)/2] ^= 0x10
			r.put(r.dataName(m["data"].(string)), d)
		}, ""},
		{"bit-flipped-last-byte", func(r plantedKey, m, meta map[string]any, data []byte) {
			d := slices.Clone(data)
			d[len(d)-1] ^= 0x01 // the zstd frame checksum
			r.put(r.dataName(m["data"].(string)), d)
		}, ""},
		{"manifest-lies-about-digest", func(r plantedKey, m, meta map[string]any, data []byte) {
			sum := sha256.Sum256([]byte("another archive"))
			meta["sha256"] = hex.EncodeToString(sum[:])
			r.putManifest(m)
		}, "SHA-256"},
		{"manifest-lies-about-archive-size", func(r plantedKey, m, meta map[string]any, data []byte) {
			meta["archive_size"] = int64(len(data)) + 1
			r.putManifest(m)
		}, ""},
		{"manifest-lies-about-tree-size", func(r plantedKey, m, meta map[string]any, data []byte) {
			// Consistent with the data object's name, so only the
			// check after extraction can tell.
			size := manifestInt(r.t, meta, "size") + 1
			r.moveData(m, data, size)
			meta["size"] = size
			r.putManifest(m)
		}, "bytes"},
		{"manifest-tree-size-disagrees-with-data-name", func(r plantedKey, m, meta map[string]any, data []byte) {
			meta["size"] = manifestInt(r.t, meta, "size") + 1
			r.putManifest(m)
		}, "data object"},
		{"manifest-lies-about-files", func(r plantedKey, m, meta map[string]any, data []byte) {
			meta["files"] = manifestInt(r.t, meta, "files") + 1
			r.putManifest(m)
		}, "files"},
		{"manifest-names-another-key", func(r plantedKey, m, meta map[string]any, data []byte) {
			meta["key"] = "someone-else"
			r.putManifest(m)
		}, "someone-else"},
		{"manifest-lies-about-index", func(r plantedKey, m, meta map[string]any, data []byte) {
			idx, ok := meta["index"].(map[string]any)
			if !ok {
				r.t.Fatalf("manifest records no index: %v", meta)
			}
			sum := sha256.Sum256([]byte("another index"))
			idx["sha256"] = hex.EncodeToString(sum[:])
			r.putManifest(m)
		}, "index"},
		{"manifest-bad-digest-format", func(r plantedKey, m, meta map[string]any, data []byte) {
			meta["sha256"] = strings.ToUpper(meta["sha256"].(string))
			r.putManifest(m)
		}, "SHA-256"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := fmt.Sprintf("integrity-%d", i)
			mustRun(t, e.freshMachine(t), "push", "-q", key, smallSrc(t, key))
			r := plantedKey{t, b, key}
			m, meta := r.manifest()
			tc.mutate(r, m, meta, r.get(r.dataName(m["data"].(string))))
			x := newHostileBox(t, e)
			want := []string{errTextIntegrity}
			if tc.want != "" {
				want = append(want, tc.want)
			}
			x.pullRefused(t, key, want...)
		})
	}
}

// bombFileLimit is the largest file a bomb-test pull may write: a safety
// net (RLIMIT_FSIZE) so that a pull the extraction limits fail to stop
// cannot fill the disk.
const bombFileLimit = 32 << 20

// runCLIFileLimit is runCLI with the process's file size limit set to
// limit bytes, through the POSIX shell's ulimit (in 512-byte blocks; a
// shell counting 1 KiB blocks only doubles it). Go ignores SIGXFSZ, so a
// write past the limit fails with EFBIG rather than killing the process.
func runCLIFileLimit(t testing.TB, e env, limit int64, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	shArgs := append([]string{"-c", `ulimit -f "$1" && shift && exec "$@"`, "sh", strconv.FormatInt(limit/512, 10), binPath}, args...)
	cmd := exec.CommandContext(ctx, "sh", shArgs...)
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Exited()) {
		t.Fatalf("running tiercache %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// TestHostileDecompressionBomb plants 8 GiB of zeros compressed to a few
// hundred KB, with a manifest whose digest and archive size are right,
// and checks that pull fails cleanly: exit 1, one error line naming the
// key, no entry, nothing outside DEST.
//
// Extraction is capped at the tree size the manifest records, so a bomb
// behind a manifest recording a small tree stops with a limit error at
// once. A manifest that honestly records 8 GiB is a legitimate (if big)
// entry: only the free-space check stands in its way, and this disk has
// room, so the pull runs with a 32 MiB file size limit as a safety net
// and the test accepts the net's "file too large" for that case.
func TestHostileDecompressionBomb(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	bomb := buildHostileBomb(t)
	if len(bomb.data) > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed, want under 1 MiB", len(bomb.data))
	}
	cases := []struct {
		name string
		// treeSize is what the manifest records, given the tree size
		// of the small entry pushed first.
		treeSize func(pushed int64) int64
	}{
		// Only the archive was swapped (digest fixed up): the manifest
		// still records the small tree.
		{"manifest-records-small-tree", func(pushed int64) int64 { return pushed }},
		// Everything consistent: the manifest claims the 8 GiB.
		{"manifest-consistent", func(int64) int64 { return hostileBombSize }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := fmt.Sprintf("bomb-%d", i)
			mustRun(t, e.freshMachine(t), "push", "-q", key, smallSrc(t, key))
			r := plantedKey{t, b, key}
			m, meta := r.manifest()
			size := tc.treeSize(manifestInt(t, meta, "size"))
			r.moveData(m, bomb.data, size)
			meta["size"], meta["files"] = size, bomb.files
			meta["archive_size"], meta["sha256"] = int64(len(bomb.data)), bomb.sum
			delete(meta, "index")
			r.putManifest(m)

			x := newHostileBox(t, e)
			stdout, stderr, code := runCLIFileLimit(t, x.env, bombFileLimit, "--strict", "pull", key, x.dest)
			if code != 1 {
				t.Errorf("pull: exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			checkErrorLine(t, "pull", key, stderr)
			switch {
			case strings.Contains(stderr, errTextLimit):
			case tc.name == "manifest-records-small-tree":
				// Extraction is capped at the recorded tree size.
				t.Errorf("the bomb was not stopped at the recorded tree size: %s", stderr)
			case strings.Contains(stderr, "file too large"):
				t.Logf("only the test's %d-byte file size limit stopped the bomb: %s", bombFileLimit, strings.TrimSpace(stderr))
			default:
				t.Errorf("the error does not say a limit stopped the bomb: %s", stderr)
			}
			x.checkUntouched(t)
			x.checkNoEntry(t)
		})
	}
}

// cliBadKeys break the key rules; each reason is what the error must say.
var cliBadKeys = []struct{ name, key, reason string }{
	{"empty", "", "empty key"},
	{"513 bytes", strings.Repeat("k", tiercache.MaxKeyLen+1), "513 bytes"},
	{"newline", "gomod\nINJECTED", "control character"},
	{"carriage return", "gomod\rINJECTED", "control character"},
	{"tab", "a\tb", "control character"},
	{"escape sequence", "\x1b[31mred", "control character"},
	{"DEL", "a\x7fb", "control character"},
	{"line separator", "a\u2028b", "control character"},
	{"invalid UTF-8", "a\xff\xfeb", "not valid UTF-8"},
}

// TestKeyRejectedByCLI checks that push, pull and rm refuse every bad key,
// given as an argument or with --key, with exit 2, an error line naming
// the command, the key (escaped: a newline cannot forge a second line)
// and the reason, then the usage hint, and that nothing happens: no
// request reaches the remote, DEST is not created, no entry appears.
func TestKeyRejectedByCLI(t *testing.T) {
	b := bucket(t)
	endpoint, log := recordingProxy(t)
	e := newEnv(t, b).with("TIERCACHE_S3_ENDPOINT", endpoint)
	mustRun(t, e, "push", "-q", "good", smallSrc(t, "good"))
	requestsBefore := len(log.all())
	src := smallSrc(t, "src")
	dest := filepath.Join(t.TempDir(), "dest")

	for _, bk := range cliBadKeys {
		t.Run(bk.name, func(t *testing.T) {
			runs := [][]string{
				{"push", bk.key, src},
				{"pull", bk.key, dest},
				{"rm", bk.key},
				{"rm", "good", bk.key}, // checked before any removal
				{"pull", "--restore-key", bk.key, "good", dest},
			}
			if bk.key != "" { // --key "" means no --key: a different usage error
				runs = append(runs, []string{"push", "--key", bk.key, src}, []string{"pull", "--key", bk.key, dest})
			}
			for _, args := range runs {
				stdout, stderr, code := runCLI(t, e, args...)
				if code != 2 || stdout != "" {
					t.Errorf("%q: exit %d, stdout %q; want exit 2 and no output", args, code, stdout)
				}
				lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
				if len(lines) != 2 {
					t.Errorf("%q: stderr is not an error line and a usage hint:\n%s", args, stderr)
					continue
				}
				want := []string{"invalid key", bk.reason, strconv.Quote(bk.key)}
				if strings.Contains(strings.Join(args, " "), "--restore-key") {
					want = append(want, "restore key")
				}
				if !strings.HasPrefix(lines[0], "tiercache: "+args[0]+" ") {
					t.Errorf("%q: error line %q does not name the command", args, lines[0])
				}
				for _, w := range want {
					if !strings.Contains(lines[0], w) {
						t.Errorf("%q: error line %q does not mention %q", args, lines[0], w)
					}
				}
				if lines[1] != "Run 'tiercache "+args[0]+" --help' for usage." {
					t.Errorf("%q: second line %q is not the usage hint", args, lines[1])
				}
			}
		})
	}
	// A bad --key "" falls back to the positional form, which then lacks
	// an argument: still a usage error.
	if _, stderr, code := runCLI(t, e, "push", "--key", "", src); code != 2 || !strings.Contains(stderr, "KEY and at least one PATH") {
		t.Errorf(`push --key "": exit %d, stderr %q`, code, stderr)
	}

	if reqs := log.all()[requestsBefore:]; len(reqs) != 0 {
		t.Errorf("commands with a bad key sent %d requests, e.g. %s", len(reqs), reqs[0])
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused pull created DEST (%v)", err)
	}
	out, _ := mustRun(t, e, "ls", "--json")
	var entries []map[string]any
	decodeJSON(t, out, &entries)
	if len(entries) != 2 || entries[0]["key"] != "good" || entries[1]["key"] != "good" {
		t.Errorf("entries after the refused commands: %v; want only \"good\" in both tiers", entries)
	}
}

// TestKeyNULRejected covers the one bad key the CLI cannot be given: the
// operating system refuses a NUL byte in an argument before tiercache
// starts (and environment variables cannot hold one either), so the
// library, which a program can hand any string, is checked in-process:
// every operation refuses the key with ErrInvalidKey before sending a
// request.
func TestKeyNULRejected(t *testing.T) {
	err := exec.Command(binPath, "pull", "a\x00b", t.TempDir()).Run()
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("running tiercache with a NUL in an argument: %v, want EINVAL from the OS", err)
	}

	m := newMachine(t, bucket(t), machineOpts{})
	ctx := t.Context()
	const key = "a\x00b"
	src := smallSrc(t, "nul")
	checks := map[string]error{}
	_, _, checks["Get"] = m.cache.Get(ctx, key)
	_, checks["Put"] = m.cache.Put(ctx, key, src, "")
	checks["Invalidate"] = m.cache.Invalidate(ctx, key)
	_, _, checks["Restore key"] = m.cache.Restore(ctx, key, nil)
	_, _, checks["Restore prefix"] = m.cache.Restore(ctx, "good", []string{"a\x00"})
	for op, err := range checks {
		if !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("%s with a NUL key: %v, want ErrInvalidKey", op, err)
		} else if !strings.Contains(err.Error(), `\x00`) {
			t.Errorf("%s: error %q does not show the NUL escaped", op, err)
		}
	}
	m.tr.mu.Lock()
	reqs := slices.Clone(m.tr.reqs)
	m.tr.mu.Unlock()
	if len(reqs) != 0 {
		t.Errorf("operations on a NUL key sent requests: %v", reqs)
	}
	if es, err := m.cache.Local().List(ctx); err != nil || len(es) != 0 {
		t.Errorf("local entries: %v, %v", es, err)
	}
}

// TestKeyDotDotConfined covers keys that look like paths out of the
// cache. By the key rules they are valid opaque keys ("/", "..", spaces
// and backslashes are allowed), so they must be accepted and confined:
// each is pushed, listed under its exact name, pulled into its own DEST
// on another machine and removed, and meanwhile nothing appears outside
// the two local tiers and the DESTs, each local tier holds only its own
// layout, and every object stays under the configured prefix with no "."
// or ".." segment. Every key would, if naively joined to a directory,
// land in the test's temporary directory under a name holding "escaped",
// which is what the test looks for.
func TestKeyDotDotConfined(t *testing.T) {
	b := bucket(t)
	root := t.TempDir()
	pushCache, pullCache := filepath.Join(root, "push-cache"), filepath.Join(root, "pull-cache")
	pusher := newEnv(t, b).with("TIERCACHE_DIR", pushCache)
	puller := pusher.with("TIERCACHE_DIR", pullCache)
	keys := []string{
		"..",
		"../",
		".",
		"./escaped-dot",
		"../escaped-up1",
		"../../escaped-up2",
		strings.Repeat("../", 40) + root[1:] + "/escaped-deep",
		root + "/escaped-abs",
		"a/../../escaped-mid",
		"index/../../escaped-layout",
		`..\..\escaped-backslash`,
		" ../escaped-space",
		"~/escaped-tilde",
	}
	for i, k := range keys {
		if err := tiercache.ValidateKey(k); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}

	t.Run("push", func(t *testing.T) {
		for i, k := range keys {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				mustRun(t, pusher, "push", "-q", k, smallSrc(t, "tag-"+strconv.Itoa(i)))
			})
		}
	})
	if t.Failed() {
		checkNothingEscaped(t, filepath.Dir(root), pushCache, pullCache)
		t.FailNow()
	}
	out, _ := mustRun(t, pusher, "ls", "--json")
	var entries []map[string]any
	decodeJSON(t, out, &entries)
	listed := map[string]int{}
	for _, en := range entries {
		k, _ := en["key"].(string)
		listed[k]++
	}
	for _, k := range keys {
		if listed[k] != 2 {
			t.Errorf("ls lists key %q %d times, want 2 (both tiers); all: %v", k, listed[k], listed)
		}
	}
	if len(entries) != 2*len(keys) {
		t.Errorf("ls lists %d entries, want %d", len(entries), 2*len(keys))
	}

	t.Run("pull", func(t *testing.T) {
		for i, k := range keys {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				dest := filepath.Join(root, "dest-"+strconv.Itoa(i))
				mustRun(t, puller, "pull", "--fail-on-miss", k, dest)
				if tag, err := treetest.CheckSmall(dest); err != nil || tag != "tag-"+strconv.Itoa(i) {
					t.Errorf("pulled %q into %s: tag %q, %v", k, dest, tag, err)
				}
			})
		}
	})

	// Confinement, checked while the entries exist: the local tiers hold
	// only their layout, index pointers stay inside, objects stay under
	// the prefix, and nothing named "escaped" exists outside the tiers.
	for _, c := range []string{pushCache, pullCache} {
		checkLocalLayout(t, c)
	}
	checkObjectsConfined(t, b)
	checkNothingEscaped(t, filepath.Dir(root), pushCache, pullCache)

	mustRun(t, pusher, append([]string{"rm", "-q"}, keys...)...)
	out, _ = mustRun(t, pusher, "ls", "--json")
	decodeJSON(t, out, &entries)
	if len(entries) != 0 {
		t.Errorf("entries left after rm: %v", entries)
	}
	if objs := objects(t, b, remotePrefix+"manifests/"); len(objs) != 0 {
		t.Errorf("manifests left after rm: %v", objs)
	}
	checkNothingEscaped(t, filepath.Dir(root), pushCache, pullCache)
}

// checkLocalLayout fails t unless the local tier at dir holds only the
// names of its documented layout, and every index pointer resolves into
// its data/ directory.
func checkLocalLayout(t *testing.T, dir string) {
	t.Helper()
	layout := map[string]bool{"tiercache-local": true, "CACHEDIR.TAG": true, "index": true, "data": true,
		"retired": true, "staging": true, "trash": true, "locks": true, "pulls": true}
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !layout[n.Name()] {
			t.Errorf("local tier %s holds %q, outside its layout", dir, n.Name())
		}
	}
	// Pull records are named by a digest of the paths, never by a key.
	pulls, _ := os.ReadDir(filepath.Join(dir, "pulls"))
	for _, n := range pulls {
		_, err := hex.DecodeString(n.Name())
		temp := strings.HasPrefix(n.Name(), ".") // a record being replaced
		if !n.Type().IsRegular() || err != nil && !temp {
			t.Errorf("local tier %s holds pull record %q, not a file named by a digest", dir, n.Name())
		}
	}
	index, err := os.ReadDir(filepath.Join(dir, "index"))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data") + string(filepath.Separator)
	for _, n := range index {
		p := filepath.Join(dir, "index", n.Name())
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			if strings.HasPrefix(n.Name(), ".") {
				continue // a pointer being swapped
			}
			t.Errorf("index entry %s: %v", p, err)
			continue
		}
		if !strings.HasPrefix(target, data) {
			t.Errorf("index entry %s points at %s, outside %s", p, target, data)
		}
	}
}

// checkObjectsConfined fails t unless every object in bucket b is under the
// configured prefix, in one of remote/s3's three directories, with no
// empty, "." or ".." segment.
func checkObjectsConfined(t *testing.T, b string) {
	t.Helper()
	objs := objects(t, b, "")
	if len(objs) == 0 {
		t.Fatal("no objects in the bucket")
	}
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o, remotePrefix)
		if !ok || !(strings.HasPrefix(rest, "manifests/") || strings.HasPrefix(rest, "data/") || strings.HasPrefix(rest, "access/")) {
			t.Errorf("object %q is outside %smanifests/, data/ and access/", o, remotePrefix)
		}
		for _, seg := range strings.Split(o, "/") {
			if s := strings.TrimSpace(seg); s == "" || s == "." || s == ".." {
				t.Errorf("object %q has segment %q", o, seg)
			}
		}
	}
}

// checkNothingEscaped fails t if any path under dir, outside the skipped
// local tiers (whose file names encode the keys), has "escaped" in its
// name.
func checkNothingEscaped(t *testing.T, dir string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains(skip, p) {
			return filepath.SkipDir
		}
		if strings.Contains(d.Name(), "escaped") {
			t.Errorf("a key escaped its tier: %s exists", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
