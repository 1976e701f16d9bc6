package archive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/tiercache/tiercache"
)

// TestLinkIsDir: the kind of Windows symlink decided from the finished
// tree, whatever came first in the stream.
func TestLinkIsDir(t *testing.T) {
	kinds := map[string]kind{
		"pkg": kindDir, "pkg/lib": kindDir, "pkg/lib/x": kindFile, "pkg/data": kindDir,
		"b": kindImplicitDir, "b/c": kindDir,
		"f": kindFile, "data": kindFile,
	}
	links := map[string]string{
		"b/up":    "../pkg",
		"p":       "pkg/lib",
		"l1":      "l2",
		"l2":      "pkg",
		"lf":      "f",
		"abs":     "/etc",
		"loop1":   "loop2",
		"loop2":   "loop1",
		"self":    "self",
		"outside": "../x",
	}
	for name := range links {
		kinds[name] = kindSymlink
	}
	lookup := func(p string) (kind, string, bool) {
		k, ok := kinds[p]
		return k, links[p], ok
	}
	cases := []struct {
		name, target string
		dir          bool
	}{
		{"a/later", "../pkg/lib", true}, // later in the stream: the lookup knows the whole tree
		{"b/c/l", "../../pkg/lib/x", false},
		{"b/c/l", "../..", true}, // the destination itself
		{"l", ".", true},
		{"b/c/l", "./../c/", true},
		{"l", "pkg/", true},
		{"l", "f", false},
		// Chains, each ".." climbing from where the links led.
		{"l", "l1", true},
		{"l", "l1/lib", true},
		{"l", "b/up/lib/x", false},
		{"l", "p/../data", true}, // pkg/lib/.. is pkg; the lexical answer, data, is a file
		{"l", "b/up/..", true},
		{"l", "lf", false},
		{"l", "lf/", true}, // a file taken for a directory: nowhere
		// Leading nowhere: a file symlink, or a directory one for a
		// target ending in a separator.
		{"l", "missing", false},
		{"l", "missing/", true},
		{"l", "pkg/missing/x", false},
		{"l", "f/x", false},
		{"l", "f/x/", true},
		{"l", "..", false},
		{"l", "../", true},
		{"b/l", "../../pkg", false},
		{"l", "outside", false},
		{"l", "outside/sub/", true},
		{"l", "/usr/lib", false},
		{"l", "/usr/lib/", true},
		{"l", "//server/share", false},
		{"l", "C:/Windows", false},
		{"l", "C:/Windows/", true},
		{"l", "C:pkg", false},
		{"l", "abs/x", false},
		{"l", "loop1", false},
		{"l", "loop1/", true},
		{"l", "self/x", false},
	}
	for _, c := range cases {
		if got := linkIsDir(c.name, c.target, lookup); got != c.dir {
			t.Errorf("linkIsDir(%q, %q) = %v, want %v", c.name, c.target, got, c.dir)
		}
	}
	// A chain longer than the system follows leads nowhere.
	for i := range maxSymlinkHops + 1 {
		n := fmt.Sprintf("c%d", i)
		kinds[n], links[n] = kindSymlink, fmt.Sprintf("c%d", i+1)
	}
	kinds[fmt.Sprintf("c%d", maxSymlinkHops+1)] = kindDir
	if linkIsDir("l", "c1", lookup) != true || linkIsDir("l", "c0", lookup) != false {
		t.Errorf("chains of %d and %d links: want a directory, then nothing", maxSymlinkHops, maxSymlinkHops+1)
	}
}

// setDeferSymlinks makes Extract create symlinks at the end, as on
// Windows, for the rest of t.
func setDeferSymlinks(t *testing.T, deferred bool) {
	t.Helper()
	old := deferSymlinks
	deferSymlinks = deferred
	t.Cleanup(func() { deferSymlinks = old })
}

// recordSymlinkKinds makes symlinkAt record the kind each symlink is
// created with, by its name's last component, for the rest of t.
func recordSymlinkKinds(t *testing.T) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	old := symlinkAt
	symlinkAt = func(root *os.Root, target, name string, dir bool) error {
		got[name] = dir
		return old(root, target, name, dir)
	}
	t.Cleanup(func() { symlinkAt = old })
	return got
}

// TestExtractDeferredSymlinkKinds: where symlinks have a kind (Windows),
// each is created once the tree is in, with the kind of what its target
// is then, whichever way the stream is decoded and written.
func TestExtractDeferredSymlinkKinds(t *testing.T) {
	setDeferSymlinks(t, true)
	arc := archiveOf(t,
		symlinkM("a/later", "../pkg/lib"), // target later in the stream
		symlinkM("a/chain", "later/../data"),
		symlinkM("a/tofile", "../pkg/lib/x"),
		symlinkM("a/missing", "nothing"),
		symlinkM("a/slash", "nothing/"),
		reg("pkg/lib/x", "x"),
		dirM("pkg/data/"),
		reg("pkg/data/y", "y"),
		dirM("b/"),
		symlinkM("b/up", "../pkg"), // target before it, through ".."
	)
	want := map[string]bool{"later": true, "chain": true, "tofile": false, "missing": false, "slash": true, "up": true}
	for _, opts := range []ExtractOptions{{Writers: 1, Decoders: 1}, {Writers: 4, Decoders: 4}, {StrictSymlinks: true}} {
		t.Run(fmt.Sprintf("writers %d, decoders %d, strict %v", opts.Writers, opts.Decoders, opts.StrictSymlinks), func(t *testing.T) {
			got := recordSymlinkKinds(t)
			s := newSandbox(t)
			if _, err := Extract(t.Context(), bytes.NewReader(arc), s.dest, opts); err != nil {
				skipWineNoSymlink(t, err)
				t.Fatalf("Extract: %v", err)
			}
			for base, dir := range want {
				if d, ok := got[base]; !ok || d != dir {
					t.Errorf("symlink %s: created: %v, as a directory symlink: %v; want a directory symlink: %v", base, ok, d, dir)
				}
			}
			// Through the links, once the tree is in.
			for name, body := range map[string]string{"a/later/x": "x", "a/chain/y": "y", "b/up/lib/x": "x", "a/tofile": "x"} {
				if b, err := os.ReadFile(filepath.Join(s.dest, name)); err != nil || string(b) != body {
					t.Errorf("%s: %q, %v; want %q", name, b, err, body)
				}
			}
			s.checkOutside(t)
		})
	}
}

// TestDeferredSymlinkNames: a symlink created at the end still takes its
// name at once: nothing is created at or below it, in another case
// either where names may fold; a collision is an error naming the later
// member, never a skip.
func TestDeferredSymlinkNames(t *testing.T) {
	setDeferSymlinks(t, true)
	cases := []struct {
		name  string
		fold  bool
		ms    []member
		entry string
	}{
		{"below it", false, []member{symlinkM("s", "d"), reg("s/f", "x"), dirM("d/")}, "s/f"},
		{"over it", false, []member{symlinkM("s", "d"), dirM("s/")}, "s/"},
		{"below it in another case", true, []member{symlinkM("s", "d"), reg("S/f", "x"), dirM("d/")}, "S/f"},
		{"over it in another case", true, []member{symlinkM("d/s", "."), reg("d/S", "x")}, "d/S"},
		{"directory over it in another case", true, []member{symlinkM("s", "d"), dirM("S/"), dirM("d/")}, "S/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setFoldingNames(t, c.fold)
			got := recordSymlinkKinds(t)
			s := newSandbox(t)
			_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, c.ms...)), s.dest, ExtractOptions{SkipSymlinks: true})
			var ee *EntryError
			if !errors.Is(err, tiercache.ErrUnsafeArchive) || !errors.As(err, &ee) || ee.Name != c.entry || !strings.Contains(ee.Reason, "symlink") {
				t.Fatalf("err = %v, want ErrUnsafeArchive naming member %q and the symlink", err, c.entry)
			}
			if len(got) != 0 {
				t.Errorf("symlinks created despite the refusal: %v", got)
			}
			if names := s.destNames(t); strings.Contains(strings.Join(names, " "), "S") {
				t.Errorf("destination holds %v: the other case of the symlink's name was created", names)
			}
		})
	}
}

// TestDeferredSymlinksRefused: where the system refuses symlinks, the
// deferred ones fail on the first in the stream, or with SkipSymlinks
// are skipped and counted, the rest of the tree in place.
func TestDeferredSymlinksRefused(t *testing.T) {
	setDeferSymlinks(t, true)
	refused := syscall.EPERM
	if runtime.GOOS == "windows" {
		refused = syscall.Errno(1314) // ERROR_PRIVILEGE_NOT_HELD
	}
	old := symlinkAt
	symlinkAt = func(*os.Root, string, string, bool) error { return &os.LinkError{Op: "symlinkat", Err: refused} }
	t.Cleanup(func() { symlinkAt = old })
	arc := archiveOf(t, symlinkM("l2", "d"), dirM("d/"), reg("d/f", "x"), symlinkM("d/l1", "f"))
	if _, err := Extract(t.Context(), bytes.NewReader(arc), t.TempDir(), ExtractOptions{}); err == nil || !errMentions(err, "l2") || !strings.Contains(err.Error(), "cannot create the symlink") {
		t.Errorf("without SkipSymlinks: %v, want an error naming l2 and why", err)
	}
	dest := t.TempDir()
	res, err := Extract(t.Context(), bytes.NewReader(arc), dest, ExtractOptions{SkipSymlinks: true})
	if err != nil || res.SkippedSymlinks != 2 || res.FirstSkipped != "l2" {
		t.Fatalf("SkipSymlinks: %+v, %v; want 2 skipped, l2 first", res, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "d", "f")); err != nil || string(b) != "x" {
		t.Errorf("d/f: %q, %v", b, err)
	}
}
