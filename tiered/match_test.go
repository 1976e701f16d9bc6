package tiered

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote/memstore"
)

func TestMatchName(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"**/node_modules", "node_modules", true},
		{"**/node_modules", "packages/a/node_modules", true},
		{"**/node_modules", "packages/a/node_modules/x", false},
		{"packages/*/dist", "packages/a/dist", true},
		{"packages/*/dist", "packages/a/b/dist", false},
		{"packages/*/dist/", "packages/a/dist", true},
		{"a/**", "a/b/c", true},
		{"a/**", "a", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"*.lock", ".yarn.lock", true},
		{"[ab]", "c", false},
	} {
		if got := matchName(splitPattern(c.pat), strings.Split(c.name, "/")); got != c.want {
			t.Errorf("matchName(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
	// A recorded name made to be slow against many "**" still takes
	// time in proportion to pattern times name.
	long := strings.Repeat("a/", 2000) + "b"
	start := time.Now()
	if matchName(splitPattern("**/a/**/a/**/a/**/a/**/c"), strings.Split(long, "/")) {
		t.Error("matched a name it does not match")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("matching took %v", d)
	}
}

func TestCheckPatterns(t *testing.T) {
	for _, bad := range [][]string{nil, {""}, {"/abs"}, {"~/x"}, {"a/../b"}, {"./a"}, {"a//b"}, {"[a"}, {`a\b`}} {
		if err := CheckPatterns(bad); err == nil {
			t.Errorf("CheckPatterns(%q) = nil, want an error", bad)
		}
	}
	if err := CheckPatterns([]string{"**/node_modules", "packages/*/dist/", "a/**"}); err != nil {
		t.Error(err)
	}
}

// TestMatchPaths: matched directories are taken whole (no name inside
// another), symlinks are neither followed nor matched, and directories
// no pattern reaches below are not walked.
func TestMatchPaths(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"node_modules/x/node_modules", "packages/a/node_modules", "packages/b/src", "other"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Wine makes no symlinks: the rest is checked there too.
	if err := os.Symlink(filepath.Join(root, "packages", "a", "node_modules"), filepath.Join(root, "packages", "b", "node_modules")); err != nil && !treetest.UnderWine() {
		t.Fatal(err)
	}
	// Unreadable, but no pattern reaches below it: not walked. (Root
	// reads it anyway.)
	if err := os.Chmod(filepath.Join(root, "other"), 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(root, "other"), 0o755) })
	// A user other than root cannot read it, and "**" reaches below it:
	// passed over, and said.
	got, err := MatchPaths(root, []string{"**/node_modules", "packages/*/src"})
	var ue *UnreadableError
	if err != nil && !(errors.As(err, &ue) && slices.Equal(ue.Names, []string{"other"})) {
		t.Fatal(err)
	}
	want := []string{"node_modules", "packages/a/node_modules", "packages/b/src"}
	if !slices.Equal(got, want) {
		t.Errorf("MatchPaths = %q, want %q", got, want)
	}
	got, err = MatchPaths(root, []string{"packages/*/src"})
	if err != nil || !slices.Equal(got, []string{"packages/b/src"}) {
		t.Errorf("MatchPaths with a pattern that does not reach other/: %q, %v", got, err)
	}
	if err := os.Chmod(filepath.Join(root, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A negation leaves out a whole match, and nothing below it is
	// matched instead.
	got, err = MatchPaths(root, []string{"**/node_modules", "!node_modules", "packages/*/src"})
	if err != nil || !slices.Equal(got, []string{"packages/a/node_modules", "packages/b/src"}) {
		t.Errorf("MatchPaths with !node_modules: %q, %v", got, err)
	}
	if _, err := MatchPaths(root, []string{"!node_modules"}); err == nil {
		t.Error("MatchPaths with negations alone: no error")
	}
}

// TestResolveMatched: an entry's recorded paths go below the root, each
// matched by the pull's own patterns, or the entry is refused.
func TestResolveMatched(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "packages", "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	linked := true
	evil := filepath.Join(root, "packages", "evil")
	err := os.Symlink(t.TempDir(), evil)
	if fi, lerr := os.Lstat(evil); err == nil && (lerr != nil || fi.Mode()&os.ModeSymlink == 0) {
		err = fmt.Errorf("%s is not a symlink: %v, %v", evil, fi, lerr)
	}
	if err != nil {
		if !treetest.UnderWine() {
			t.Fatal(err)
		}
		linked = false // Wine makes no symlinks: the rest is checked there too
	}
	if err := os.WriteFile(filepath.Join(root, "packages", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveMatched(root, []string{"**/node_modules", "!packages/a/node_modules"})([]string{"packages/a/node_modules"}); err == nil {
		t.Error("a recorded path a negation leaves out: not refused")
	}
	resolve := ResolveMatched(root, []string{"**/node_modules", "out"})
	got, err := resolve([]string{"node_modules", "packages/a/node_modules", "packages/new/node_modules", "out"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, "node_modules"), filepath.Join(root, "packages", "a", "node_modules"),
		filepath.Join(root, "packages", "new", "node_modules"), filepath.Join(root, "out")}
	if !slices.Equal(got, want) {
		t.Errorf("resolved %q, want %q", got, want)
	}
	for _, bad := range [][]string{
		{"../node_modules"}, {"/node_modules"}, {"a/../node_modules"}, {"./node_modules"}, {"a//node_modules"},
		{"node_modules/"}, {""}, {"."}, {"src"}, {"out/node_modules/x"},
		{"node_modules", "node_modules/x/node_modules"}, {"out", "out"},
		{"packages/evil/node_modules"}, {"packages/file/node_modules"}, {"packages/evil"},
	} {
		if !linked && strings.Contains(bad[0], "evil") {
			continue
		}
		if got, err := resolve(bad); err == nil {
			t.Errorf("recorded %q resolved to %q, want it refused", bad, got)
		}
	}
}

// TestPullResolved: a push of matched paths restores into a new
// checkout where none of them exists yet, remote and local; an entry of
// one directory's tree, or one recording a path the patterns do not
// match, is skipped with a note, nothing written.
func TestPullResolved(t *testing.T) {
	store := memstore.New()
	src := t.TempDir()
	for _, d := range []string{"packages/a/node_modules", "node_modules"} {
		p := filepath.Join(src, filepath.FromSlash(d))
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		treetest.Small(t, p, 5, d)
	}
	pats := []string{"**/node_modules"}
	names, err := MatchPaths(src, pats)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(src, filepath.FromSlash(n))
	}
	pusher := newTiered(t, store, Options{})
	if _, err := pusher.PushPaths(t.Context(), "k", paths, PushOptions{Names: names, RecordPaths: true}); err != nil {
		t.Fatal(err)
	}
	// One matched directory alone is recorded too.
	if _, err := pusher.PushPaths(t.Context(), "one", paths[:1], PushOptions{Names: names[:1], RecordPaths: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := pusher.Push(t.Context(), "tree", paths[0], PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pusher.PushPaths(t.Context(), "other", paths[:1], PushOptions{Names: []string{"elsewhere"}, RecordPaths: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *Cache
	}{
		{"remote", newTiered(t, store, Options{})},
		{"local", pusher},
		{"no local", newTiered(t, store, Options{NoLocal: true})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, key := range []string{"k", "one"} {
				dst := t.TempDir()
				h, ok, err := tc.c.PullPaths(t.Context(), key, nil, nil, PullOptions{Resolve: ResolveMatched(dst, pats)})
				if err != nil || !ok {
					t.Fatalf("pull %s: %v, %v (%q)", key, ok, err, h.Skipped)
				}
				want := names
				if key == "one" {
					want = names[:1]
				}
				if len(h.Paths) != len(want) {
					t.Errorf("pull %s: Hit.Paths %q", key, h.Paths)
				}
				for i, n := range want {
					if tag, err := treetest.CheckSmall(filepath.Join(dst, filepath.FromSlash(n))); err != nil || tag != n {
						t.Errorf("pull %s: %s: tag %q, %v", key, n, tag, err)
					}
					if i < len(h.Paths) && h.Paths[i] != filepath.Join(dst, filepath.FromSlash(n)) {
						t.Errorf("pull %s: Hit.Paths[%d] = %q", key, i, h.Paths[i])
					}
				}
			}
			for _, key := range []string{"tree", "other"} {
				dst := t.TempDir()
				h, ok, err := tc.c.PullPaths(t.Context(), key, nil, nil, PullOptions{Resolve: ResolveMatched(dst, pats)})
				if err != nil || ok || len(h.Skipped) == 0 {
					t.Errorf("pull %s: ok %v, %v, skipped %q; want a miss, skipped", key, ok, err, h.Skipped)
				}
				if ents, _ := os.ReadDir(dst); len(ents) != 0 {
					t.Errorf("pull %s wrote %d entries", key, len(ents))
				}
			}
			// A lookup reports where the paths would go, writing nothing.
			dst := t.TempDir()
			h, ok, err := tc.c.PullPaths(t.Context(), "k", nil, nil, PullOptions{Resolve: ResolveMatched(dst, pats), LookupOnly: true})
			if err != nil || !ok || len(h.Paths) != len(names) {
				t.Errorf("lookup: %v, %v, paths %q", ok, err, h.Paths)
			}
			if ents, _ := os.ReadDir(dst); len(ents) != 0 {
				t.Errorf("lookup wrote %d entries", len(ents))
			}
		})
	}
}

// TestApart: a path is refused if the file system finds it inside one
// placed before, through a symlink that path brought, or (where the file
// system folds case) under another spelling.
func TestApart(t *testing.T) {
	root := t.TempDir()
	x := filepath.Join(root, "x")
	if err := os.MkdirAll(filepath.Join(x, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	var placed placedSet
	placed.add(x)
	if err := placed.apart(filepath.Join(root, "y", "node_modules")); err != nil {
		t.Errorf("a path beside: %v", err)
	}
	if err := placed.apart(filepath.Join(x, "sub", "new")); err == nil {
		t.Error("a path inside: not refused")
	}
	if err := placed.apart(x); err == nil {
		t.Error("the same path: not refused")
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(x, "link")); err == nil {
		if err := placed.apart(filepath.Join(x, "link", "node_modules")); err == nil {
			t.Error("a path through a symlink inside a placed one: not refused")
		}
	} else if !treetest.UnderWine() {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "X")); err == nil {
		// Case folds here (Wine, macOS, Windows).
		if err := placed.apart(filepath.Join(root, "X", "sub", "node_modules")); err == nil {
			t.Error("a path inside under another case: not refused")
		}
	}
}

// FuzzResolveMatched: whatever an entry records, the paths a pull takes
// lie below the root, none inside another, and each is a name one of the
// patterns matches.
func FuzzResolveMatched(f *testing.F) {
	for _, seed := range [][2]string{
		{"node_modules\npackages/a/node_modules", "**/node_modules"},
		{"../x\n/abs", "**"},
		{"a/./b\na//b\na/b/", "a/**"},
		{"x\nX/y", "**"},
		{"a\\..\\b", "*"},
	} {
		f.Add(seed[0], seed[1])
	}
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, recorded, patterns string) {
		pats := strings.Split(patterns, "\n")
		if CheckPatterns(pats) != nil {
			return
		}
		names := strings.Split(recorded, "\n")
		got, err := ResolveMatched(root, pats)(names)
		if err != nil {
			return
		}
		for i, p := range got {
			rel, err := filepath.Rel(root, p)
			if err != nil || !filepath.IsLocal(rel) {
				t.Fatalf("%q resolved to %q, outside %s", names[i], p, root)
			}
			if filepath.ToSlash(rel) != names[i] {
				t.Fatalf("%q resolved to %q", names[i], rel)
			}
			if !newGlobs(pats).match(strings.Split(names[i], "/")) {
				t.Fatalf("%q matches none of %q", names[i], pats)
			}
			for j, q := range got[:i] {
				if r, err := filepath.Rel(q, p); err == nil && filepath.IsLocal(r) || p == q {
					t.Fatalf("%q lies inside %q", names[i], names[j])
				}
				if r, err := filepath.Rel(p, q); err == nil && filepath.IsLocal(r) {
					t.Fatalf("%q lies inside %q", names[j], names[i])
				}
			}
		}
	})
}

// TestMatchPathsPassesOverUnreadable: a directory that cannot be read
// (root reads every one, so the walk is made to meet one) is passed
// over, with what else matched, and named in an *UnreadableError; a
// pattern that does not reach below it never asks.
func TestMatchPathsPassesOverUnreadable(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/node_modules", "locked/node_modules", "b/node_modules"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	walk := matchWalk
	t.Cleanup(func() { matchWalk = walk })
	matchWalk = func(r string, fn fs.WalkDirFunc) error {
		return walk(r, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && filepath.Base(p) == "locked" {
				// As WalkDir does when ReadDir fails: fn again, with
				// the error.
				if err := fn(p, d, nil); err != nil {
					return err
				}
				return fn(p, d, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission})
			}
			return fn(p, d, err)
		})
	}
	got, err := MatchPaths(root, []string{"**/node_modules"})
	var ue *UnreadableError
	if !errors.As(err, &ue) || !slices.Equal(ue.Names, []string{"locked"}) || !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("err = %v; want an *UnreadableError naming locked", err)
	}
	if want := []string{"a/node_modules", "b/node_modules"}; !slices.Equal(got, want) {
		t.Errorf("MatchPaths = %q, want %q", got, want)
	}
	if got, err := MatchPaths(root, []string{"a/*"}); err != nil || !slices.Equal(got, []string{"a/node_modules"}) {
		t.Errorf("a pattern that does not reach it: %q, %v", got, err)
	}
}
