// Package treetest builds directory trees for tests and compares them.
//
// Fidelity builds the awkward tree every tier must round-trip (unicode and
// maximum-length names, read-only files and directories, every kind of
// symlink, hardlinks, big files, thousands of small files, nanosecond
// mtimes); Diff and AssertEqual compare two trees on everything the design
// promises to keep. Small and CheckSmall make and verify tagged trees so
// concurrency tests can detect a torn tree (one mixing two versions).
//
// It is nobody's public API: only tests import it. It targets Unix (inode
// numbers, nanosecond symlink mtimes); on Windows, Fidelity builds the part
// of its tree Windows can hold, and Diff finds hardlinks by volume and
// file index.
package treetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// onWindows selects the Windows shape of the Fidelity tree.
const onWindows = runtime.GOOS == "windows"

// windowsName reports whether Windows can hold name as it is.
func windowsName(name string) bool {
	return utf8.ValidString(name) && !strings.ContainsAny(name, "\t\"\\<>:|?*") &&
		!strings.HasSuffix(name, " ") && !strings.HasSuffix(name, ".")
}

// FidelityOptions shrinks the Fidelity tree for tests that need speed more
// than coverage.
type FidelityOptions struct {
	// BigFiles adds big/random.bin and big/zero.bin, 32 MiB each.
	BigFiles bool
	// SmallFiles is how many small files go under many/ (a few hundred
	// bytes each, 100 per directory). Zero adds none; 2000 is a realistic
	// module-cache-like load.
	SmallFiles int
}

// BigFileSize is the size of each of the two big files Fidelity adds when
// FidelityOptions.BigFiles is set.
const BigFileSize = 32 << 20

// Paths inside the Fidelity tree that tests may want to refer to.
const (
	// FidelityReadOnlyDir is a 0555 directory holding 0444 files, laid out
	// like a module in Go's module cache.
	FidelityReadOnlyDir = "perm/mod/example.com/m@v1.0.0"
	// FidelityHardlink is one path of a hardlink group of three.
	FidelityHardlink = "hard/a.txt"
)

// fidelityBuilder records what Fidelity creates, so modes and mtimes can be
// applied in a second pass (dirs last, deepest first).
type fidelityBuilder struct {
	t     testing.TB
	root  string
	dirs  []string               // relative paths of every directory created
	modes map[string]fs.FileMode // final modes of files and dirs
	links []string               // symlinks, for Lchtimes
	files []string               // regular files (one per inode), for Chtimes
	seq   int64                  // drives distinct mtimes
}

// Fidelity builds under dir (which must exist and be empty) the fidelity
// tree: unicode names (and one that is not valid UTF-8) and 255-byte
// names; paths longer than 256 bytes; empty files and empty dirs; exec
// (0755), 0600 and read-only (0444) files, and read-only (0555) dirs, as in
// Go's module cache; relative, absolute, dangling, chained and directory
// symlinks; hardlink groups; optionally a 32 MiB random and a 32 MiB zero
// file; opts.SmallFiles small files; nanosecond mtimes (never whole
// microseconds) on files, symlinks and directories, directories set last
// and deepest first so nothing disturbs them. The same options always give
// the same tree, mtimes included.
//
// It registers a cleanup that makes the tree, and every copy of it in the
// test's t.TempDir directories, writable again, so a non-root user can
// remove them.
//
// On Windows the tree leaves out what Windows cannot hold: the names with
// a tab, a quote, a backslash, a trailing space or bytes that are not
// UTF-8, and the symlinks, which need a privilege there (and which Wine
// cannot make at all); modes are what Windows keeps of them (the write
// bit) and mtimes what it keeps of them (100 ns). The tests of symlinks
// on Windows build their own.
func Fidelity(t testing.TB, dir string, opts FidelityOptions) {
	t.Helper()
	mustBeEmptyDir(t, dir)
	// Copies of the tree land in the test's other t.TempDir directories,
	// which share one parent. The testing package removes that parent in
	// a cleanup registered by the first TempDir, so this one runs first.
	tmpRoot := filepath.Dir(t.TempDir())
	t.Cleanup(func() {
		makeWritable(dir)
		makeWritable(tmpRoot)
	})
	b := &fidelityBuilder{t: t, root: dir, modes: map[string]fs.FileMode{}}

	// Unicode and odd-but-legal names. The backslash is an ordinary byte in
	// a Unix file name, and names need not be valid UTF-8.
	b.dir("unicode", 0o755)
	for _, name := range []string{
		"héllo wörld.txt",
		"日本語のファイル.txt",
		"emoji-😀-🚀.txt",
		"e\u0301-combining.txt", // NFD: must not be normalised to é
		"é-precomposed.txt",
		"tab\there",
		"quote'\"and spaces ",
		"back\\slash",
		"latin1-caf\xe9", // not UTF-8: Unix names are bytes
		"-leading-dash",
		".hidden",
	} {
		if onWindows && !windowsName(name) {
			continue
		}
		b.file("unicode/"+name, 0o644, []byte("name: "+name+"\n"))
	}

	// 255-byte names (the usual NAME_MAX), ASCII and multibyte, and a path
	// well over 256 bytes.
	b.dir("long", 0o755)
	ascii255 := strings.Repeat("a", 251) + ".txt"
	b.file("long/"+ascii255, 0o644, []byte("ascii 255\n"))
	multi255 := strings.Repeat("é", 127) + "x" // 127*2+1 bytes
	b.file("long/"+multi255, 0o644, []byte("multibyte 255\n"))
	dir255 := strings.Repeat("d", 255)
	b.dir("long/"+dir255, 0o755)
	b.file("long/"+dir255+"/f", 0o644, []byte("inside a 255-byte dir\n"))
	deep := "long/deep"
	b.dir(deep, 0o755)
	for i := range 8 {
		deep += fmt.Sprintf("/component-%02d-%s", i, strings.Repeat("x", 40))
		b.dir(deep, 0o755)
	}
	b.file(deep+"/"+strings.Repeat("z", 200)+".txt", 0o644, []byte("deep\n"))

	// Empty things.
	b.dir("empty", 0o755)
	b.file("empty/empty.txt", 0o644, nil)
	b.dir("empty/emptydir", 0o755)
	b.dir("empty/a", 0o755)
	b.dir("empty/a/b", 0o755)
	b.dir("empty/a/b/c", 0o700)

	// Permission bits, and a module-cache-like read-only subtree.
	b.dir("perm", 0o755)
	b.file("perm/exec.sh", 0o755, []byte("#!/bin/sh\necho hi\n"))
	b.file("perm/secret", 0o600, []byte("secret\n"))
	b.file("perm/readonly.txt", 0o444, []byte("read only\n"))
	b.file("perm/group-write", 0o664, []byte("g+w\n"))
	b.dir("perm/mod", 0o755)
	b.dir("perm/mod/example.com", 0o755)
	b.dir(FidelityReadOnlyDir, 0o555)
	b.file(FidelityReadOnlyDir+"/go.mod", 0o444, []byte("module example.com/m\n"))
	b.file(FidelityReadOnlyDir+"/m.go", 0o444, []byte("package m\n"))
	b.dir(FidelityReadOnlyDir+"/sub", 0o555)
	b.file(FidelityReadOnlyDir+"/sub/s.go", 0o444, []byte("package sub\n"))
	b.dir(FidelityReadOnlyDir+"/emptyro", 0o555)

	// Symlinks of every kind.
	b.dir("links", 0o755)
	b.file("links/target.txt", 0o644, []byte("link target\n"))
	if !onWindows {
		b.symlink("links/rel", "target.txt")
		b.symlink("links/up", "../unicode/héllo wörld.txt")
		b.symlink("links/abs", "/nonexistent/tiercache/absolute-target")
		b.symlink("links/dangling", "does-not-exist")
		b.symlink("links/dirlink", "../empty")
		b.symlink("links/chain", "rel")
		b.symlink("links/dot", ".")
	}

	// Hardlinks: a group of three across directories, and a read-only pair.
	b.dir("hard", 0o755)
	b.dir("hard/sub", 0o755)
	b.file(FidelityHardlink, 0o644, []byte("shared inode\n"))
	b.link(FidelityHardlink, "hard/b.txt")
	b.link(FidelityHardlink, "hard/sub/c.txt")
	b.file("hard/ro-first", 0o444, []byte("read-only shared inode\n"))
	b.link("hard/ro-first", "hard/sub/ro-second")

	if opts.BigFiles {
		b.dir("big", 0o755)
		rng := rand.NewChaCha8([32]byte{'t', 'i', 'e', 'r'})
		b.streamFile("big/random.bin", 0o644, BigFileSize, func(p []byte) {
			_, _ = rng.Read(p)
		})
		b.streamFile("big/zero.bin", 0o644, BigFileSize, func(p []byte) { clear(p) })
	}

	if opts.SmallFiles > 0 {
		b.dir("many", 0o755)
		for i := range opts.SmallFiles {
			d := fmt.Sprintf("many/d%03d", i/100)
			if i%100 == 0 {
				b.dir(d, 0o755)
			}
			content := bytes.Repeat([]byte(fmt.Sprintf("small file %d\n", i)), 1+i%37)
			b.file(fmt.Sprintf("%s/f%05d.txt", d, i), 0o644, content)
		}
	}

	b.finish()
}

// Symlink creates a symlink at link naming target, for a test that plants
// one, and fails t if it cannot. Under Wine, which has no symlinks, it
// skips t instead: Wine's CreateSymbolicLink even reports success without
// making one, so the link is looked for after.
func Symlink(t testing.TB, target, link string) {
	t.Helper()
	err := os.Symlink(target, link)
	if err == nil {
		_, err = os.Lstat(link)
	}
	if err != nil && UnderWine() {
		t.Skipf("Wine cannot create symlinks, which this test needs: %v", err)
	}
	if err != nil {
		t.Fatalf("treetest: %v", err)
	}
}

// nextTime returns a distinct time with a nanosecond part that is never a
// whole number of microseconds, so a tier truncating to µs is caught.
func (b *fidelityBuilder) nextTime() time.Time {
	b.seq++
	base := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC).Unix()
	return time.Unix(base+b.seq*3607, (b.seq*987_654_321+123)%1_000_000_000|1)
}

func (b *fidelityBuilder) abs(rel string) string {
	return filepath.Join(b.root, filepath.FromSlash(rel))
}

func (b *fidelityBuilder) dir(rel string, mode fs.FileMode) {
	b.t.Helper()
	if err := os.Mkdir(b.abs(rel), 0o700); err != nil {
		b.t.Fatalf("treetest: %v", err)
	}
	b.dirs = append(b.dirs, rel)
	b.modes[rel] = mode
}

func (b *fidelityBuilder) file(rel string, mode fs.FileMode, data []byte) {
	b.t.Helper()
	if err := os.WriteFile(b.abs(rel), data, 0o600); err != nil {
		b.t.Fatalf("treetest: %v", err)
	}
	b.files = append(b.files, rel)
	b.modes[rel] = mode
}

func (b *fidelityBuilder) streamFile(rel string, mode fs.FileMode, size int, fill func([]byte)) {
	b.t.Helper()
	f, err := os.OpenFile(b.abs(rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		b.t.Fatalf("treetest: %v", err)
	}
	buf := make([]byte, 1<<20)
	for written := 0; written < size; written += len(buf) {
		chunk := buf[:min(len(buf), size-written)]
		fill(chunk)
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			b.t.Fatalf("treetest: %v", err)
		}
	}
	if err := f.Close(); err != nil {
		b.t.Fatalf("treetest: %v", err)
	}
	b.files = append(b.files, rel)
	b.modes[rel] = mode
}

func (b *fidelityBuilder) symlink(rel, target string) {
	b.t.Helper()
	if err := os.Symlink(target, b.abs(rel)); err != nil {
		b.t.Fatalf("treetest: %v", err)
	}
	b.links = append(b.links, rel)
}

func (b *fidelityBuilder) link(existing, rel string) {
	b.t.Helper()
	if err := os.Link(b.abs(existing), b.abs(rel)); err != nil {
		b.t.Fatalf("treetest: %v", err)
	}
}

// finish applies modes and mtimes: files and symlinks first, then
// directories deepest first, so no later step bumps a directory's mtime.
func (b *fidelityBuilder) finish() {
	b.t.Helper()
	for _, rel := range b.files {
		if err := os.Chmod(b.abs(rel), b.modes[rel]); err != nil {
			b.t.Fatalf("treetest: %v", err)
		}
		mt := b.nextTime()
		if err := os.Chtimes(b.abs(rel), mt, mt); err != nil {
			b.t.Fatalf("treetest: %v", err)
		}
	}
	for _, rel := range b.links {
		mt := b.nextTime()
		if err := lchtimes(b.abs(rel), mt); err != nil {
			b.t.Fatalf("treetest: %v", err)
		}
	}
	dirs := slices.Clone(b.dirs)
	sortDeepestFirst(dirs)
	for _, rel := range dirs {
		if err := os.Chmod(b.abs(rel), b.modes[rel]); err != nil {
			b.t.Fatalf("treetest: %v", err)
		}
		mt := b.nextTime()
		if err := os.Chtimes(b.abs(rel), mt, mt); err != nil {
			b.t.Fatalf("treetest: %v", err)
		}
	}
}

func sortDeepestFirst(rels []string) {
	sort.SliceStable(rels, func(i, j int) bool {
		return strings.Count(rels[i], "/") > strings.Count(rels[j], "/")
	})
}

func mustBeEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("treetest: %v", err)
	}
	if len(ents) != 0 {
		t.Fatalf("treetest: %s is not empty", dir)
	}
}

// makeWritable gives the owner write permission on every directory under
// root, so a non-root user can delete the tree. Errors are ignored: the
// removal that follows reports whatever is left.
func makeWritable(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

// node is what Diff knows about one path.
type node struct {
	mode   fs.FileMode
	mtime  time.Time
	size   int64
	target string // symlink target
	id     fileID // device and inode
	nlink  uint64
}

// tree maps slash-separated relative paths (the root excluded) to nodes.
type tree map[string]node

func scan(root string) (tree, error) {
	tr := tree{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := node{mode: info.Mode(), mtime: info.ModTime(), size: info.Size()}
		if n.id, n.nlink, err = identity(p, info); err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			if n.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		tr[filepath.ToSlash(rel)] = n
		return nil
	})
	return tr, err
}

// peers returns, for every regular file with other names in the tree, the
// sorted list of its other names.
func (tr tree) peers() map[string][]string {
	groups := map[fileID][]string{}
	for rel, n := range tr {
		if n.mode.IsRegular() && n.nlink > 1 {
			groups[n.id] = append(groups[n.id], rel)
		}
	}
	out := map[string][]string{}
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		sort.Strings(g)
		for _, rel := range g {
			out[rel] = slices.DeleteFunc(slices.Clone(g), func(s string) bool { return s == rel })
		}
	}
	return out
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	default:
		return "special(" + m.Type().String() + ")"
	}
}

// permBits is the part of the mode Diff compares, in Unix notation:
// permissions and sticky, but not setuid/setgid, which tiercache drops on
// purpose.
func permBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// Diff compares the trees under a and b and returns human-readable
// differences, sorted by path; an empty slice means equal. It compares the
// set of paths, their types, file bytes, permission bits (the 0o7777 bits
// less setuid and setgid), symlink targets, hardlink grouping (which paths
// share an inode within each tree) and mtimes to the nanosecond for files,
// directories and symlinks (via Lstat). The roots themselves, owners and
// atimes are not compared. The error reports a tree that cannot be read.
func Diff(a, b string) ([]string, error) {
	ta, err := scan(a)
	if err != nil {
		return nil, fmt.Errorf("treetest: scan %s: %w", a, err)
	}
	tb, err := scan(b)
	if err != nil {
		return nil, fmt.Errorf("treetest: scan %s: %w", b, err)
	}
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }

	paths := make([]string, 0, len(ta)+len(tb))
	for rel := range ta {
		paths = append(paths, rel)
	}
	for rel := range tb {
		if _, ok := ta[rel]; !ok {
			paths = append(paths, rel)
		}
	}
	sort.Strings(paths)
	pa, pb := ta.peers(), tb.peers()

	for _, rel := range paths {
		na, okA := ta[rel]
		nb, okB := tb[rel]
		switch {
		case !okB:
			add("%q: only in a (%s)", rel, typeName(na.mode))
			continue
		case !okA:
			add("%q: only in b (%s)", rel, typeName(nb.mode))
			continue
		}
		if typeName(na.mode) != typeName(nb.mode) {
			add("%q: type %s vs %s", rel, typeName(na.mode), typeName(nb.mode))
			continue
		}
		if na.mode&fs.ModeSymlink == 0 && permBits(na.mode) != permBits(nb.mode) {
			add("%q: mode %#o vs %#o", rel, permBits(na.mode), permBits(nb.mode))
		}
		if !na.mtime.Equal(nb.mtime) {
			add("%q: mtime %s vs %s", rel, na.mtime.UTC().Format(time.RFC3339Nano), nb.mtime.UTC().Format(time.RFC3339Nano))
		}
		switch {
		case na.mode&fs.ModeSymlink != 0:
			if na.target != nb.target {
				add("%q: symlink target %q vs %q", rel, na.target, nb.target)
			}
		case na.mode.IsRegular():
			if na.size != nb.size {
				add("%q: size %d vs %d", rel, na.size, nb.size)
			} else if same, err := sameContent(filepath.Join(a, rel), filepath.Join(b, rel)); err != nil {
				return nil, err
			} else if !same {
				add("%q: content differs", rel)
			}
			if !slices.Equal(pa[rel], pb[rel]) {
				add("%q: hardlinked with %q vs %q", rel, pa[rel], pb[rel])
			}
		}
	}
	return diffs, nil
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	bufA, bufB := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		nA, errA := io.ReadFull(fa, bufA)
		nB, errB := io.ReadFull(fb, bufB)
		if !bytes.Equal(bufA[:nA], bufB[:nB]) {
			return false, nil
		}
		endA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		if errA != nil && !endA {
			return false, errA
		}
		if errB != nil && !endB {
			return false, errB
		}
		if endA || endB {
			return endA == endB, nil
		}
	}
}

// AssertEqual fails t, listing the first 20 differences, unless the trees
// under a and b are equal as Diff defines it.
func AssertEqual(t testing.TB, a, b string) {
	t.Helper()
	diffs, err := Diff(a, b)
	if err != nil {
		t.Fatalf("treetest: %v", err)
	}
	if len(diffs) == 0 {
		return
	}
	shown := diffs[:min(len(diffs), 20)]
	t.Errorf("trees differ (a=%s, b=%s): %d difference(s):\n  %s", a, b, len(diffs), strings.Join(shown, "\n  "))
}

// Small names.
const (
	// SmallMarker is the name of the file whose content is the tag.
	SmallMarker = "MARKER"
	// smallCount holds the tag and the file count, so a tree that lost
	// files is told from a smaller one.
	smallCount = "COUNT"
	smallDirs  = 4
)

func smallPath(i int) string {
	return fmt.Sprintf("d%d/f%05d.txt", i%smallDirs, i)
}

// smallContent embeds the tag, the file's own path and the file count, so a
// file from another version, a misplaced file or a missing one shows.
func smallContent(tag string, n int, rel string) []byte {
	return []byte(fmt.Sprintf("tag=%q n=%d path=%s\n", tag, n, rel))
}

func countContent(tag string, n int) []byte {
	return []byte(fmt.Sprintf("tag=%q n=%d\n", tag, n))
}

// Small builds under dir (created if missing) a quick tree of n small files
// spread over a few subdirectories, a file SmallMarker whose content is
// tag, and a file recording tag and n. Every file's content embeds tag, so
// CheckSmall can tell a complete tree from one mixing two versions.
func Small(t testing.TB, dir string, n int, tag string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("treetest: %v", err)
	}
	for d := range min(n, smallDirs) {
		if err := os.Mkdir(filepath.Join(dir, fmt.Sprintf("d%d", d)), 0o755); err != nil {
			t.Fatalf("treetest: %v", err)
		}
	}
	for i := range n {
		rel := smallPath(i)
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel)), smallContent(tag, n, rel), 0o644); err != nil {
			t.Fatalf("treetest: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, smallCount), countContent(tag, n), 0o644); err != nil {
		t.Fatalf("treetest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, SmallMarker), []byte(tag), 0o644); err != nil {
		t.Fatalf("treetest: %v", err)
	}
}

// CheckSmall verifies that the tree under dir is exactly one made by Small:
// the marker, the count file and all n files with the content for the
// marker's tag, nothing else. It returns the tag, or an error describing
// the tear.
func CheckSmall(dir string) (tag string, err error) {
	raw, err := os.ReadFile(filepath.Join(dir, SmallMarker))
	if err != nil {
		return "", fmt.Errorf("treetest: small tree %s: %w", dir, err)
	}
	tag = string(raw)
	fail := func(format string, args ...any) (string, error) {
		return tag, fmt.Errorf("treetest: small tree %s (tag %q): %s", dir, tag, fmt.Sprintf(format, args...))
	}
	count, err := os.ReadFile(filepath.Join(dir, smallCount))
	if err != nil {
		return fail("%v", err)
	}
	n := -1
	if i := bytes.LastIndex(count, []byte(" n=")); i >= 0 {
		if _, err := fmt.Sscanf(string(count[i+1:]), "n=%d", &n); err != nil {
			n = -1
		}
	}
	if n < 0 || !bytes.Equal(count, countContent(tag, n)) {
		return fail("%s is %q, not for this tag (torn tree?)", smallCount, count)
	}
	seen := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == SmallMarker || rel == smallCount {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: unexpected %s", rel, d.Type())
		}
		var i int
		if _, err := fmt.Sscanf(path.Base(rel), "f%d.txt", &i); err != nil || i >= n || smallPath(i) != rel {
			return fmt.Errorf("%s: unexpected file", rel)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if want := smallContent(tag, n, rel); !bytes.Equal(data, want) {
			return fmt.Errorf("%s: content %q, want %q (torn tree?)", rel, data, want)
		}
		seen++
		return nil
	})
	if err != nil {
		return fail("%v", err)
	}
	if seen != n {
		return fail("%d files, want %d", seen, n)
	}
	return tag, nil
}
