package tiered

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote/memstore"
)

// pathsSource makes a directory (with files an exclude drops) and a
// file, as a Go job's module cache and a lone config file.
func pathsSource(t *testing.T) (dir, file string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "mod")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Small(t, dir, 10, "mod")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "scratch.log"), []byte("excluded"), 0o644); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(base, "conf.json")
	if err := os.WriteFile(file, []byte(`{"a": 1}`), 0o640); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// checkPulled asserts that dir holds mod's tree but for tmp/, and file
// conf.json's bytes.
func checkPulled(t *testing.T, srcDir, srcFile, dir, file string) {
	t.Helper()
	if tag, err := treetest.CheckSmall(dir); err != nil || tag != "mod" {
		t.Errorf("%s: tag %q, %v", dir, tag, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the excluded tmp/ was restored: %v", err)
	}
	want, _ := os.ReadFile(srcFile)
	got, err := os.ReadFile(file)
	if err != nil || string(got) != string(want) {
		t.Errorf("%s = %q, %v; want %q", file, got, err, want)
	}
	// Windows keeps the write bit only.
	if fi, err := os.Stat(file); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640) {
		t.Errorf("%s mode: %v, %v; want 0640", file, fi, err)
	}
}

// TestPushPullPaths: an entry of a directory and a file, pushed with an
// exclude, restores by position into other paths: downloaded (cold),
// from the local archive (warm), hardlinked (--link), and straight from
// the remote (NoLocal), each one identical.
func TestPushPullPaths(t *testing.T) {
	store := memstore.New()
	srcDir, srcFile := pathsSource(t)
	pusher := newTiered(t, store, Options{})
	names := []string{"~/go/pkg/mod", "./conf.json"}
	res, err := pusher.PushPaths(t.Context(), "k", []string{srcDir, srcFile}, PushOptions{Exclude: []string{"tmp/"}, Names: names})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded || !slices.Equal(res.Entry.Paths, names) {
		t.Fatalf("push: uploaded %v, paths %q; want an upload recording %q", res.Uploaded, res.Entry.Paths, names)
	}
	m, err := store.Stat(t.Context(), "k")
	if err != nil || !slices.Equal(m.Paths, names) {
		t.Fatalf("remote paths %q, %v; want %q", m.Paths, err, names)
	}

	cases := []struct {
		name string
		opts Options
		pull PullOptions
		tier tiercache.Tier
	}{
		{"cold", Options{}, PullOptions{}, tiercache.TierRemote},
		{"link", Options{}, PullOptions{Link: true}, tiercache.TierRemote},
		{"no-local", Options{NoLocal: true}, PullOptions{}, tiercache.TierRemote},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTiered(t, store, tc.opts)
			base := t.TempDir()
			dir, file := filepath.Join(base, "home", "go", "mod"), filepath.Join(base, "etc", "conf.json")
			h, ok, err := c.PullPaths(t.Context(), "k", nil, []string{dir, file}, tc.pull)
			if err != nil || !ok || h.Tier != tc.tier {
				t.Fatalf("pull: ok %v, tier %q, %v", ok, h.Tier, err)
			}
			checkPulled(t, srcDir, srcFile, dir, file)
			if tc.opts.NoLocal {
				return
			}
			// Warm: from the local tier, into paths that already hold
			// older files, which are replaced. (Replaced, not written in
			// place: with --link, the file is the cache's.)
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			h, ok, err = c.PullPaths(t.Context(), "k", nil, []string{dir, file}, tc.pull)
			if err != nil || !ok || h.Tier != tiercache.TierLocal {
				t.Fatalf("warm pull: ok %v, tier %q, %v", ok, h.Tier, err)
			}
			checkPulled(t, srcDir, srcFile, dir, file)
			if tc.pull.Link {
				a, _ := os.Stat(file)
				if h.Copy.Linked == 0 || a == nil {
					t.Errorf("--link restored nothing by hardlink: %+v", h.Copy)
				}
			}
		})
	}
}

// TestPullPathsCountMismatch: KEY holding another number of paths than
// the pull names is skipped, KEY's own entry as a restore-key candidate,
// and reported.
func TestPullPathsCountMismatch(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	srcDir, srcFile := pathsSource(t)
	if _, err := c.PushPaths(t.Context(), "deps-two", []string{srcDir, srcFile}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(t.Context(), "deps-one", srcDir, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	one := []string{filepath.Join(base, "a")}
	three := []string{filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")}
	for _, lookup := range []bool{false, true} {
		for _, nl := range []bool{false, true} {
			cc := c
			if nl {
				cc = newTiered(t, store, Options{NoLocal: true})
			}
			h, ok, err := cc.PullPaths(t.Context(), "deps-two", nil, one, PullOptions{LookupOnly: lookup})
			if ok || err != nil || len(h.Skipped) != 1 ||
				!strings.Contains(h.Skipped[0], "2 paths: "+srcDir+", "+srcFile) || !strings.Contains(h.Skipped[0], "1 path: "+one[0]) {
				t.Errorf("lookup %v, no-local %v: two paths into one: %v, %v, skipped %q; want a miss noting both lists", lookup, nl, ok, err, h.Skipped)
			}
			h, ok, err = cc.PullPaths(t.Context(), "deps-one", nil, three, PullOptions{LookupOnly: lookup})
			if ok || err != nil || len(h.Skipped) != 1 || !strings.Contains(h.Skipped[0], "one directory's tree") {
				t.Errorf("lookup %v, no-local %v: a tree into three paths: %v, %v, skipped %q; want a miss noting it", lookup, nl, ok, err, h.Skipped)
			}
		}
	}
	if _, err := os.Stat(one[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused pull created its path: %v", err)
	}
	// deps-two-b is the newest deps- entry, but holds two paths: the
	// pull of one goes on to deps-one.
	if _, err := c.PushPaths(t.Context(), "deps-two-b", []string{srcDir, srcFile}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	h, ok, err := c.PullPaths(t.Context(), "deps-none", []string{"deps-"}, one, PullOptions{})
	if err != nil || !ok || h.Key != "deps-one" {
		t.Fatalf("restore key: hit %q, ok %v, %v; want deps-one", h.Key, ok, err)
	}
	if len(h.Skipped) != 1 || !strings.Contains(h.Skipped[0], `"deps-two-b" holds 2 paths`) {
		t.Errorf("Skipped = %q, want deps-two-b reported once", h.Skipped)
	}
	h, ok, err = c.PullPaths(t.Context(), "deps-none", []string{"deps-two"}, three, PullOptions{})
	if err != nil || ok || len(h.Skipped) != 2 { // deps-two and deps-two-b
		t.Errorf("a miss after skipping: ok %v, skipped %q, %v; want a miss reporting the skip", ok, h.Skipped, err)
	}
}

// TestPullPathsFileOverDirectory: the entry's file is not put where a
// directory is, which stays as it was, and no other path is touched.
func TestPullPathsFileOverDirectory(t *testing.T) {
	c := newTiered(t, memstore.New(), Options{})
	srcDir, srcFile := pathsSource(t)
	if _, err := c.PushPaths(t.Context(), "k", []string{srcDir, srcFile}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	dir, file := filepath.Join(base, "d"), filepath.Join(base, "f")
	if err := os.MkdirAll(filepath.Join(file, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.PullPaths(t.Context(), "k", nil, []string{dir, file}, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), file+" is a directory") {
		t.Fatalf("pull of a file over a directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(file, "keep")); err != nil {
		t.Errorf("the directory in the way changed: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the first path was restored before the second was refused: %v", err)
	}
}

// TestPushPathsSingleFile: one file is an entry of one path, restored as
// a file; one directory stays one directory's tree, recording no paths.
func TestPushPathsSingleFile(t *testing.T) {
	c := newTiered(t, memstore.New(), Options{})
	srcDir, srcFile := pathsSource(t)
	res, err := c.PushPaths(t.Context(), "file", []string{srcFile}, PushOptions{})
	if err != nil || !slices.Equal(res.Entry.Paths, []string{srcFile}) {
		t.Fatalf("push of a file: paths %q, %v", res.Entry.Paths, err)
	}
	res, err = c.PushPaths(t.Context(), "dir", []string{srcDir}, PushOptions{})
	if err != nil || res.Entry.Paths != nil {
		t.Fatalf("push of a directory: paths %q, %v; want none", res.Entry.Paths, err)
	}
	dst := filepath.Join(t.TempDir(), "x.json")
	if _, ok, err := c.PullPaths(t.Context(), "file", nil, []string{dst}, PullOptions{}); err != nil || !ok {
		t.Fatalf("pull of a file: %v, %v", ok, err)
	}
	if b, err := os.ReadFile(dst); err != nil || string(b) != `{"a": 1}` {
		t.Errorf("%s = %q, %v", dst, b, err)
	}
	if _, err := c.PushPaths(t.Context(), "k", nil, PushOptions{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("push of no path: %v", err)
	}
	if _, err := c.PushPaths(t.Context(), "k", []string{srcDir, filepath.Join(srcDir, "missing")}, PushOptions{}); !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("push of a missing path: %v", err)
	}
	if _, err := c.PushPaths(t.Context(), "k", []string{srcDir}, PushOptions{Exclude: []string{"a//b"}}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("push with a bad exclude: %v", err)
	}
}

// TestPullPathsByName: with Names, an entry recording the pull's names
// in another order restores each path to the path of its name, one
// recording some of them at other positions is skipped (by position a
// path would get another's content), and names that match none of the
// recorded ones (another machine's) restore by position.
func TestPullPathsByName(t *testing.T) {
	store := memstore.New()
	dirs := taggedDirs(t, "node_modules", ".next")
	mods, build := dirs[0], dirs[1]
	c := newTiered(t, store, Options{})
	if _, err := c.PushPaths(t.Context(), "k", []string{mods, build}, PushOptions{Names: []string{"node_modules", ".next"}}); err != nil {
		t.Fatal(err)
	}
	tag := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "tag"))
		return string(b)
	}
	for _, cc := range []*Cache{c, newTiered(t, store, Options{})} { // local, then remote
		base := t.TempDir()
		a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
		if _, ok, err := cc.PullPaths(t.Context(), "k", nil, []string{a, b}, PullOptions{Names: []string{"./.next/", "node_modules"}}); err != nil || !ok {
			t.Fatalf("pull by name: %v, %v", ok, err)
		}
		if tag(a) != ".next" || tag(b) != "node_modules" {
			t.Errorf("reordered names: a holds %q, b %q; want .next and node_modules", tag(a), tag(b))
		}
	}
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	h, ok, err := c.PullPaths(t.Context(), "k", nil, []string{a, b}, PullOptions{Names: []string{".next", "dist"}})
	if err != nil || ok || len(h.Skipped) != 1 || !strings.Contains(h.Skipped[0], `".next" as its path 2`) {
		t.Errorf("a name at another position: %v, %v, skipped %q; want a miss saying so", ok, err, h.Skipped)
	}
	if _, ok, err := c.PullPaths(t.Context(), "k", nil, []string{a, b}, PullOptions{Names: []string{"/Users/x/nm", "/Users/x/next"}}); err != nil || !ok || tag(a) != "node_modules" || tag(b) != ".next" {
		t.Errorf("other names, by position: %v, %v; a holds %q, b %q", ok, err, tag(a), tag(b))
	}
}

// TestPullPathsSubset: an entry recording some of the pull's names (a
// push that found the others missing) restores those by name and leaves
// the others as they are (Hit.Untouched), from either tier, straight from
// the remote and as a lookup; one recording a name the pull does not give
// is skipped.
func TestPullPathsSubset(t *testing.T) {
	store := memstore.New()
	dirs := taggedDirs(t, "bin", "target")
	bin, target := dirs[0], dirs[1]
	names := []string{"~/.cargo/bin/", "~/.cargo/git/db/", "target/"}
	c := newTiered(t, store, Options{})
	if _, err := c.PushPaths(t.Context(), "k", []string{bin, target}, PushOptions{Names: []string{names[0], names[2]}, RecordPaths: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *Cache
		pull PullOptions
	}{
		{"local", c, PullOptions{}},
		{"remote", newTiered(t, store, Options{}), PullOptions{}},
		{"no-local", newTiered(t, store, Options{NoLocal: true}), PullOptions{}},
		{"lookup", newTiered(t, store, Options{}), PullOptions{LookupOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			paths := []string{filepath.Join(base, "bin"), filepath.Join(base, "db"), filepath.Join(base, "target")}
			if err := os.Mkdir(paths[1], 0o755); err != nil {
				t.Fatal(err)
			}
			tc.pull.Names = names
			h, ok, err := tc.c.PullPaths(t.Context(), "k", nil, paths, tc.pull)
			if err != nil || !ok || !slices.Equal(h.Untouched, []string{paths[1]}) {
				t.Fatalf("pull: %v, %v, untouched %q; want a hit leaving %s", ok, err, h.Untouched, paths[1])
			}
			if tc.pull.LookupOnly {
				return
			}
			for i, want := range []string{"bin", "", "target"} {
				if b, _ := os.ReadFile(filepath.Join(paths[i], "tag")); string(b) != want {
					t.Errorf("%s holds %q, want %q", paths[i], b, want)
				}
			}
		})
	}
	base := t.TempDir()
	h, ok, err := c.PullPaths(t.Context(), "k", nil, []string{filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")},
		PullOptions{Names: []string{"~/.cargo/bin/", "~/.cargo/git/db/", "build/"}})
	if err != nil || ok || len(h.Skipped) != 1 {
		t.Errorf("an entry recording a name the pull lacks: %v, %v, skipped %q; want it skipped", ok, err, h.Skipped)
	}
}

// taggedDirs makes a directory of each name, side by side, holding a file
// "tag" with its name, and returns their paths.
func taggedDirs(t *testing.T, names ...string) []string {
	t.Helper()
	src := t.TempDir()
	dirs := make([]string, len(names))
	for i, n := range names {
		dirs[i] = filepath.Join(src, n)
		if err := os.Mkdir(dirs[i], 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirs[i], "tag"), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dirs
}

// TestMatchNames: a pull's names match the recorded ones exactly first;
// then, where the file system folds case, in any case; then with a "\"
// as a separator (a Windows push read elsewhere). Each looser match is
// tried only among the names left, and one that two names share matches
// neither.
func TestMatchNames(t *testing.T) {
	for _, c := range []struct {
		names, recorded []string
		fold            bool
		want            []int
		notWindows      bool // there a\b is a/b, one name
	}{
		{[]string{"beta", "alpha"}, []string{"Alpha", "Beta"}, true, []int{1, 0}, false},
		{[]string{"beta", "alpha"}, []string{"Alpha", "Beta"}, false, []int{-1, -1}, false},
		// Names differing in case alone (a Linux push) stay apart, even
		// where a pull folds: the exact match comes first.
		{[]string{"a", "A"}, []string{"A", "a"}, true, []int{1, 0}, false},
		{[]string{"a", "A"}, []string{"A", "a"}, false, []int{1, 0}, false},
		{[]string{"ab", "AB"}, []string{"Ab", "x"}, true, []int{-1, -1}, false},
		{[]string{"./B/", "c"}, []string{"c", "b"}, true, []int{1, 0}, false},
		// Recorded on Windows, pulled on Linux or macOS.
		{[]string{"~/p2", "~/p1"}, []string{`~\p1`, `~\p2`}, false, []int{1, 0}, false},
		{[]string{"~/P2", "C:/x/p1"}, []string{`C:\X\p1\`, `~\p2`}, true, []int{1, 0}, false},
		{[]string{"b/c", "a"}, []string{"a", `b\c`}, false, []int{1, 0}, false},
		// A name holding "\" as a Linux push recorded it matches itself
		// first, whatever else would match it with "\" as a separator.
		{[]string{"a/b", `a\b`}, []string{`a\b`, "a/b"}, false, []int{1, 0}, true},
		{[]string{"a/b", "x"}, []string{`a\b`, `a\\b`}, false, []int{-1, -1}, false},
	} {
		if c.notWindows && filepath.Separator == '\\' {
			continue
		}
		order, all := matchNames(c.names, c.recorded, c.fold)
		if !slices.Equal(order, c.want) || all != !slices.Contains(c.want, -1) {
			t.Errorf("matchNames(%q, %q, fold %v) = %v, %v; want %v", c.names, c.recorded, c.fold, order, all, c.want)
		}
	}
}

// TestPullPathsByNameAcrossOS: an entry pushed on Windows, recording
// "~\p1" and "~\p2", pulled elsewhere as "~/p2 ~/p1" restores each by
// name; and one recording Alpha and Beta, pulled as "beta alpha", by
// name where the file system folds case (Beta is beta) and by position
// where it does not.
func TestPullPathsByNameAcrossOS(t *testing.T) {
	store := memstore.New()
	c := newTiered(t, store, Options{})
	tag := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "tag"))
		return string(b)
	}
	for _, tc := range []struct {
		key            string
		recorded, pull []string
		swapped        bool
	}{
		{"xos", []string{`~\p1`, `~\p2`}, []string{"~/p2", "~/p1"}, true},
		{"case", []string{"Alpha", "Beta"}, []string{"beta", "alpha"}, foldsCase},
	} {
		dirs := taggedDirs(t, "first", "second")
		if _, err := c.PushPaths(t.Context(), tc.key, dirs, PushOptions{Names: tc.recorded}); err != nil {
			t.Fatal(err)
		}
		base := t.TempDir()
		a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
		if _, ok, err := c.PullPaths(t.Context(), tc.key, nil, []string{a, b}, PullOptions{Names: tc.pull}); err != nil || !ok {
			t.Fatalf("pull %s: %v, %v", tc.key, ok, err)
		}
		want := []string{"first", "second"}
		if tc.swapped {
			want[0], want[1] = want[1], want[0]
		}
		if tag(a) != want[0] || tag(b) != want[1] {
			t.Errorf("%s: a holds %q, b %q; want %q", tc.key, tag(a), tag(b), want)
		}
	}
}
