package archive

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tiercache/tiercache"
)

func TestExcludeMatch(t *testing.T) {
	cases := []struct {
		pat  string
		rel  string
		dir  bool
		want bool
	}{
		{"*.o", "a.o", false, true},
		{"*.o", "x/y/a.o", false, true},
		{"*.o", "a.c", false, false},
		{"node_modules", "web/node_modules", true, true},
		{"node_modules", "node_modules", true, true},
		{"cache/", "cache", true, true},
		{"cache/", "cache", false, false},
		{"cache/", "x/cache", true, true},
		{"build/tmp", "build/tmp", true, true},
		{"build/tmp", "x/build/tmp", true, false},
		{"/out", "out", true, true},
		{"/out", "x/out", true, false},
		{"a/**/b", "a/b", false, true},
		{"a/**/b", "a/x/y/b", false, true},
		{"a/**/b", "c/a/b", false, false},
		{"logs/**", "logs", true, false},
		{"logs/**", "logs/x", false, true},
		{"logs/**", "logs/x/y", false, true},
		{"**/tmp", "tmp", true, true},
		{"**/tmp", "a/b/tmp", true, true},
		{"?.txt", "a.txt", false, true},
		{"?.txt", "ab.txt", false, false},
		{"[ab].txt", "b.txt", false, true},
		{"!keep", "!keep", false, true},
		{"./*.log", "x.log", false, true},
	}
	for _, c := range cases {
		e, err := NewExclude([]string{c.pat})
		if err != nil {
			t.Fatalf("NewExclude(%q): %v", c.pat, err)
		}
		if got := e.Match(c.rel, c.dir); got != c.want {
			t.Errorf("%q matches %q (dir %v) = %v, want %v", c.pat, c.rel, c.dir, got, c.want)
		}
	}
	for _, bad := range []string{"", "/", "a//b", "a/../b", "[z-a"} {
		if _, err := NewExclude([]string{bad}); !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), bad) {
			t.Errorf("NewExclude(%q) = %v, want ErrInvalidArgument naming it", bad, err)
		}
	}
	var none *Exclude
	if none.Match("a", false) {
		t.Error("a nil Exclude matched")
	}
}

// TestWriteSourcePaths archives a directory and a file as one stream:
// members 0/... and 1, excludes applied below each path, symlinks (read
// through the parent's handle) kept, a symlinked path followed, and
// Measure agreeing with what was written.
func TestWriteSourcePaths(t *testing.T) {
	base := t.TempDir()
	mod := filepath.Join(base, "mod")
	for _, d := range []string{"mod/a/sub", "mod/skip", "mod/a/obj", "other"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"mod/a/x.go":       "package a\n",
		"mod/a/x.o":        "object",
		"mod/a/sub/y.go":   "package sub\n",
		"mod/skip/big.bin": "excluded dir",
		"mod/a/obj/z":      "excluded by a dir-only pattern",
		"other/conf.json":  `{"k": 1}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(base, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Symlinks off Windows only: under Wine a symlink is created but not
	// listed.
	withLink := runtime.GOOS != "windows"
	if withLink {
		if err := os.Symlink("x.go", filepath.Join(mod, "a", "link")); err != nil {
			t.Fatal(err)
		}
	}
	// The file path is reached through a symlink, which is followed
	// (not on Windows, where Wine cannot follow a link to an absolute
	// path).
	conf := filepath.Join(base, "other", "conf.json")
	if runtime.GOOS != "windows" {
		conf = filepath.Join(base, "conf-link")
		if err := os.Symlink(filepath.Join(base, "other", "conf.json"), conf); err != nil {
			t.Fatal(err)
		}
	}
	ex, err := NewExclude([]string{"*.o", "/skip", "obj/"})
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Paths: []string{mod, conf}, Exclude: ex}
	var buf bytes.Buffer
	res, err := WriteSource(t.Context(), &buf, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shape, err := Measure(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	if shape != res.Shape {
		t.Errorf("Measure = %s, WriteSource = %s", shape, res.Shape)
	}
	dest := t.TempDir()
	got, err := Extract(t.Context(), bytes.NewReader(buf.Bytes()), dest, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Shape != res.Shape {
		t.Errorf("extracted %s, wrote %s", got.Shape, res.Shape)
	}
	var names []string
	err = filepath.WalkDir(dest, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dest {
			rel, _ := filepath.Rel(dest, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0", "0/a", "0/a/link", "0/a/sub", "0/a/sub/y.go", "0/a/x.go", "1"}
	if !withLink {
		want = slices.DeleteFunc(want, func(n string) bool { return n == "0/a/link" })
	}
	if !slices.Equal(names, want) {
		t.Errorf("members %q, want %q", names, want)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "1")); err != nil || string(b) != files["other/conf.json"] {
		t.Errorf("member 1 = %q, %v; want the file the symlinked path names", b, err)
	}
	if target, err := os.Readlink(filepath.Join(dest, "0", "a", "link")); withLink && (err != nil || target != "x.go") {
		t.Errorf("0/a/link -> %q, %v; want x.go", target, err)
	}
	if res.Files != int64(len(want)) {
		t.Errorf("Files = %d, want %d", res.Files, len(want))
	}
}

// TestWriteSourceHardlinkAcrossPaths: a file with a name in each of two
// paths is stored once, the second name as a hardlink to the first.
func TestWriteSourceHardlinkAcrossPaths(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Write stores each name of a hardlinked file on its own on Windows (see the package documentation)")
	}
	base := t.TempDir()
	for _, d := range []string{"p", "q"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "p", "f"), []byte("shared"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(base, "p", "f"), filepath.Join(base, "q", "g")); err != nil {
		t.Fatal(err)
	}
	// The third path is the file itself: a path is always stored as a
	// file of its own, never as a hardlink, which ExtractOptions.Paths
	// refuses there.
	var buf bytes.Buffer
	res, err := WriteSource(t.Context(), &buf, Source{Paths: []string{filepath.Join(base, "p"), filepath.Join(base, "q"), filepath.Join(base, "q", "g")}}, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != 2*int64(len("shared")) {
		t.Errorf("Size = %d, want the shared file counted once in the trees and once as path 2", res.Size)
	}
	dest := t.TempDir()
	if _, err := Extract(t.Context(), &buf, dest, ExtractOptions{Paths: 3}); err != nil {
		t.Fatal(err)
	}
	a, err1 := os.Stat(filepath.Join(dest, "0", "f"))
	b, err2 := os.Stat(filepath.Join(dest, "1", "g"))
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		t.Errorf("0/f and 1/g are not one file: %v %v", err1, err2)
	}
}

func TestWriteSourceInvalid(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "missing")
	cases := map[string]Source{
		"missing": {Paths: []string{base, missing}},
		"empty":   {},
		"both":    {Dir: base, Paths: []string{base}},
	}
	for name, src := range cases {
		var buf bytes.Buffer
		_, err := WriteSource(t.Context(), &buf, src, WriteOptions{})
		if !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
		if name == "missing" && (err == nil || !strings.Contains(err.Error(), missing)) {
			t.Errorf("%s: %v does not name %s", name, err, missing)
		}
		if _, err := Measure(t.Context(), src); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("Measure %s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
}

// TestWriteExcludeDir: a Source's Dir with excludes, the classic layout.
func TestWriteExcludeDir(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"keep.txt": "k", "drop.tmp": "d", "sub/drop.tmp": "d", "sub/keep": "k"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ex, err := NewExclude([]string{"*.tmp"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := WriteSource(t.Context(), &buf, Source{Dir: dir, Exclude: ex}, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Size != 2 {
		t.Errorf("wrote %s, want 3 members (keep.txt, sub, sub/keep) of 2 bytes", res.Shape)
	}
}

// TestExtractPaths: with ExtractOptions.Paths, only the members 0 to
// Paths-1 (directories or files) and what is below them get in, and each
// must be there.
func TestExtractPaths(t *testing.T) {
	good := archiveOf(t, dirM("0/"), reg("0/a", "x"), reg("1", "file"))
	if _, err := Extract(t.Context(), bytes.NewReader(good), t.TempDir(), ExtractOptions{Paths: 2}); err != nil {
		t.Fatalf("a two-path archive: %v", err)
	}
	refused := map[string][]member{
		"a member beyond the paths": {dirM("0/"), reg("1", "f"), reg("2", "extra")},
		"a name outside the paths":  {dirM("0/"), reg("1", "f"), reg("etc/passwd", "x")},
		"a leading zero":            {dirM("0/"), reg("1", "f"), reg("01/x", "x")},
		"a symlink as a path":       {symlinkM("0", "/etc"), reg("1", "f")},
		"a hardlink as a path":      {reg("0", "f"), hardlinkM("1", "0")},
		"a negative path":           {dirM("0/"), reg("1", "f"), reg("-1", "x")},
	}
	for name, members := range refused {
		s := newSandbox(t)
		_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, members...)), s.dest, ExtractOptions{Paths: 2})
		if !errors.Is(err, tiercache.ErrUnsafeArchive) {
			t.Errorf("%s: err = %v, want ErrUnsafeArchive", name, err)
		}
		s.checkOutside(t)
	}
	missing := archiveOf(t, dirM("0/"), reg("0/a", "x"))
	_, err := Extract(t.Context(), bytes.NewReader(missing), t.TempDir(), ExtractOptions{Paths: 2})
	if !errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), "path 1") {
		t.Errorf("an archive lacking path 1: err = %v, want ErrIntegrity naming path 1", err)
	}
	if _, err := Inspect(t.Context(), bytes.NewReader(missing), ExtractOptions{Paths: 2}); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("Inspect of an archive lacking path 1: err = %v, want ErrIntegrity", err)
	}
}

// TestExtractSkipSymlinks: where the system refuses symlinks (played
// here by an EPERM, which symlink(2) returns on a file system without
// them), extraction fails naming the member, or with SkipSymlinks skips
// and counts them; a member below a skipped symlink is still refused.
func TestExtractSkipSymlinks(t *testing.T) {
	old := symlinkAt
	refused := syscall.EPERM
	if runtime.GOOS == "windows" {
		refused = syscall.Errno(1314) // ERROR_PRIVILEGE_NOT_HELD
	}
	symlinkAt = func(*os.Root, string, string, bool) error { return &os.LinkError{Op: "symlinkat", Err: refused} }
	t.Cleanup(func() { symlinkAt = old })
	arc := archiveOf(t, dirM("d/"), reg("d/f", "x"), symlinkM("d/l1", "f"), symlinkM("l2", "d"), reg("z", "y"))
	_, err := Extract(t.Context(), bytes.NewReader(arc), t.TempDir(), ExtractOptions{})
	if err == nil || !strings.Contains(err.Error(), `"d/l1"`) || !strings.Contains(err.Error(), "cannot create the symlink") {
		t.Errorf("without SkipSymlinks: %v, want an error naming d/l1 and why", err)
	}
	dest := t.TempDir()
	res, err := Extract(t.Context(), bytes.NewReader(arc), dest, ExtractOptions{SkipSymlinks: true})
	if err != nil || res.SkippedSymlinks != 2 || res.FirstSkipped != "d/l1" || res.Files != 5 {
		t.Fatalf("SkipSymlinks: %+v, %v; want 2 skipped, d/l1 first, 5 members read", res, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "z")); err != nil || string(b) != "y" {
		t.Errorf("z after the skipped symlinks: %q, %v", b, err)
	}
	below := archiveOf(t, symlinkM("l", "elsewhere"), reg("l/x", "x"))
	if _, err := Extract(t.Context(), bytes.NewReader(below), t.TempDir(), ExtractOptions{SkipSymlinks: true}); !errors.Is(err, tiercache.ErrUnsafeArchive) {
		t.Errorf("a member below a skipped symlink: %v, want ErrUnsafeArchive", err)
	}
}
