//go:build unix

// These tests check the Unix shape of the trees (symlinks, inode groups,
// every permission bit, nanosecond mtimes); Windows keeps less of each.

package treetest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pair builds two identical Fidelity trees (Fidelity is deterministic).
func pair(t *testing.T) (a, b string) {
	t.Helper()
	a, b = t.TempDir(), t.TempDir()
	Fidelity(t, a, FidelityOptions{SmallFiles: 30})
	Fidelity(t, b, FidelityOptions{SmallFiles: 30})
	return a, b
}

func TestFidelityTreesAreEqual(t *testing.T) {
	a, b := pair(t)
	diffs, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 {
		t.Fatalf("identical builds differ: %q", diffs)
	}
}

func TestFidelityContents(t *testing.T) {
	dir := t.TempDir()
	Fidelity(t, dir, FidelityOptions{BigFiles: true, SmallFiles: 250})
	tr, err := scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	count := func(pred func(string, node) bool) int {
		n := 0
		for rel, nd := range tr {
			if pred(rel, nd) {
				n++
			}
		}
		return n
	}
	checks := []struct {
		what string
		n    int
	}{
		{"small files", count(func(rel string, _ node) bool {
			return strings.HasPrefix(rel, "many/") && strings.HasSuffix(rel, ".txt")
		})},
		{"255-byte names", count(func(rel string, _ node) bool { return len(filepath.Base(rel)) == 255 })},
		{"paths over 256 bytes", count(func(rel string, _ node) bool { return len(rel) > 256 })},
		{"symlinks", count(func(_ string, nd node) bool { return nd.mode&fs.ModeSymlink != 0 })},
		{"read-only dirs", count(func(_ string, nd node) bool { return nd.mode.IsDir() && nd.mode.Perm() == 0o555 })},
		{"read-only files", count(func(_ string, nd node) bool { return nd.mode.IsRegular() && nd.mode.Perm() == 0o444 })},
		{"non-ASCII names", count(func(rel string, _ node) bool { return strings.ContainsFunc(rel, func(r rune) bool { return r > 127 }) })},
		{"empty dirs", count(func(rel string, nd node) bool {
			ents, _ := os.ReadDir(filepath.Join(dir, rel))
			return nd.mode.IsDir() && len(ents) == 0
		})},
		{"sub-microsecond mtimes", count(func(_ string, nd node) bool { return nd.mtime.Nanosecond()%1000 != 0 })},
	}
	for _, c := range checks {
		if c.n == 0 {
			t.Errorf("fidelity tree has no %s", c.what)
		}
	}
	if got := len(tr.peers()[FidelityHardlink]); got != 2 {
		t.Errorf("%s has %d hardlink peers, want 2", FidelityHardlink, got)
	}
	if got := count(func(rel string, _ node) bool {
		return strings.HasPrefix(rel, "many/") && strings.HasSuffix(rel, ".txt")
	}); got != 250 {
		t.Errorf("%d small files, want 250", got)
	}
	for _, name := range []string{"big/random.bin", "big/zero.bin"} {
		if tr[name].size != BigFileSize {
			t.Errorf("%s: size %d, want %d", name, tr[name].size, BigFileSize)
		}
	}
	for _, nd := range tr {
		if nd.mode.IsDir() && nd.mtime.Nanosecond()%1000 == 0 {
			t.Errorf("a directory mtime was disturbed after being set: %v", nd.mtime)
			break
		}
	}
}

func TestFidelityWithoutBigFiles(t *testing.T) {
	dir := t.TempDir()
	Fidelity(t, dir, FidelityOptions{})
	if _, err := os.Lstat(filepath.Join(dir, "big")); !os.IsNotExist(err) {
		t.Fatalf("big/ exists without BigFiles: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "many")); !os.IsNotExist(err) {
		t.Fatalf("many/ exists with SmallFiles 0: %v", err)
	}
}

// keepTimes restores p's mtime (and its parent's) after fn, so a mutation
// shows only the difference it is meant to make.
func keepTimes(t *testing.T, p string, fn func()) {
	t.Helper()
	parent := filepath.Dir(p)
	pinfo, err := os.Lstat(parent)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(parent, 0o755)
	info, statErr := os.Lstat(p)
	fn()
	if statErr == nil {
		if _, err := os.Lstat(p); err == nil {
			if info.Mode()&fs.ModeSymlink != 0 {
				if err := lchtimes(p, info.ModTime()); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(parent, pinfo.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(parent, pinfo.ModTime(), pinfo.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func TestDiffDetects(t *testing.T) {
	cases := []struct {
		name   string
		path   string // relative path the difference must name
		want   string // substring of the difference
		mutate func(t *testing.T, p string)
	}{
		{"extra file", "links/new", "only in b", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.WriteFile(p, nil, 0o644)) })
		}},
		{"missing file", "perm/secret", "only in a", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.Remove(p)) })
		}},
		{"missing empty dir", "empty/emptydir", "only in a", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.Remove(p)) })
		}},
		{"type", "empty/empty.txt", "type file vs dir", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.Remove(p)); must(t, os.Mkdir(p, 0o644)) })
		}},
		{"content same size", "links/target.txt", "content differs", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.WriteFile(p, []byte("LINK TARGET\n"), 0o644)) })
		}},
		{"size", "links/target.txt", "size", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.WriteFile(p, []byte("x"), 0o644)) })
		}},
		{"file mode", "perm/exec.sh", "mode 0755 vs 0744", func(t *testing.T, p string) {
			must(t, os.Chmod(p, 0o744))
		}},
		{"dir mode", FidelityReadOnlyDir, "mode 0555 vs 0755", func(t *testing.T, p string) {
			must(t, os.Chmod(p, 0o755))
		}},
		{"sticky bit", "perm/mod", "mode 0755 vs 01755", func(t *testing.T, p string) {
			must(t, os.Chmod(p, 0o755|fs.ModeSticky))
		}},
		{"file mtime by 1ns", "perm/secret", "mtime", func(t *testing.T, p string) {
			shift(t, p, time.Nanosecond)
		}},
		{"dir mtime by 1ns", "empty/a/b", "mtime", func(t *testing.T, p string) {
			shift(t, p, time.Nanosecond)
		}},
		{"symlink mtime by 1ns", "links/dangling", "mtime", func(t *testing.T, p string) {
			info, err := os.Lstat(p)
			must(t, err)
			must(t, lchtimes(p, info.ModTime().Add(time.Nanosecond)))
		}},
		{"symlink target", "links/rel", "symlink target", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.Remove(p)); must(t, os.Symlink("other.txt", p)) })
		}},
		{"symlink vs file", "links/chain", "type symlink vs file", func(t *testing.T, p string) {
			keepTimes(t, p, func() { must(t, os.Remove(p)); must(t, os.WriteFile(p, nil, 0o644)) })
		}},
		{"hardlink broken", "hard/b.txt", "hardlinked with", func(t *testing.T, p string) {
			keepTimes(t, p, func() {
				data, err := os.ReadFile(p)
				must(t, err)
				must(t, os.Remove(p))
				must(t, os.WriteFile(p, data, 0o644))
			})
		}},
		{"hardlink added", "links/target.txt", "hardlinked with", func(t *testing.T, p string) {
			other := filepath.Join(filepath.Dir(filepath.Dir(p)), "perm", "secret")
			keepTimes(t, other, func() {
				info, err := os.Stat(p)
				must(t, err)
				must(t, os.Remove(other))
				must(t, os.Link(p, other))
				must(t, os.Chtimes(p, info.ModTime(), info.ModTime()))
			})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := pair(t)
			c.mutate(t, filepath.Join(b, filepath.FromSlash(c.path)))
			diffs, err := Diff(a, b)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, d := range diffs {
				if strings.Contains(d, c.path) && strings.Contains(d, c.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no difference naming %q with %q; got %q", c.path, c.want, diffs)
			}
		})
	}
}

func TestAssertEqualReports(t *testing.T) {
	a, b := pair(t)
	AssertEqual(t, a, b) // equal: must not fail t

	keepTimes(t, filepath.Join(b, "perm", "secret"), func() {
		must(t, os.WriteFile(filepath.Join(b, "perm", "secret"), []byte("SECRET\n"), 0o600))
	})
	rec := &recorder{TB: t}
	AssertEqual(rec, a, b)
	if !rec.failed || !strings.Contains(rec.msg, "perm/secret") {
		t.Fatalf("AssertEqual did not report the difference: failed=%v msg=%q", rec.failed, rec.msg)
	}
}

// recorder captures Errorf instead of failing the real test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = strings.TrimSpace(strings.Join([]string{r.msg, fmt.Sprintf(format, args...)}, "\n"))
}

func (r *recorder) Helper() {}

func TestDiffMissingTree(t *testing.T) {
	if _, err := Diff(t.TempDir(), filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("Diff of a missing tree succeeded")
	}
}

func TestSmall(t *testing.T) {
	mk := func(t *testing.T, n int, tag string) string {
		dir := filepath.Join(t.TempDir(), "tree")
		Small(t, dir, n, tag)
		return dir
	}
	t.Run("complete", func(t *testing.T) {
		dir := mk(t, 50, "v1")
		tag, err := CheckSmall(dir)
		if err != nil || tag != "v1" {
			t.Fatalf("CheckSmall = %q, %v; want v1, nil", tag, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		tag, err := CheckSmall(mk(t, 0, "zero"))
		if err != nil || tag != "zero" {
			t.Fatalf("CheckSmall = %q, %v", tag, err)
		}
	})
	tears := []struct {
		name string
		tear func(t *testing.T, dir, other string)
	}{
		{"file from another version", func(t *testing.T, dir, other string) {
			data, err := os.ReadFile(filepath.Join(other, smallPath(7)))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, smallPath(7)), data, 0o644))
		}},
		{"marker from another version", func(t *testing.T, dir, other string) {
			must(t, os.WriteFile(filepath.Join(dir, SmallMarker), []byte("v2"), 0o644))
		}},
		{"missing file", func(t *testing.T, dir, _ string) {
			must(t, os.Remove(filepath.Join(dir, smallPath(3))))
		}},
		{"missing marker", func(t *testing.T, dir, _ string) {
			must(t, os.Remove(filepath.Join(dir, SmallMarker)))
		}},
		{"all files missing", func(t *testing.T, dir, _ string) {
			for i := range 50 {
				must(t, os.Remove(filepath.Join(dir, smallPath(i))))
			}
		}},
		{"extra file", func(t *testing.T, dir, _ string) {
			must(t, os.WriteFile(filepath.Join(dir, "d0", "stray"), nil, 0o644))
		}},
		{"truncated file", func(t *testing.T, dir, _ string) {
			must(t, os.Truncate(filepath.Join(dir, smallPath(9)), 3))
		}},
	}
	for _, c := range tears {
		t.Run(c.name, func(t *testing.T) {
			dir, other := mk(t, 50, "v1"), mk(t, 50, "v2")
			c.tear(t, dir, other)
			if tag, err := CheckSmall(dir); err == nil {
				t.Fatalf("CheckSmall accepted a torn tree (tag %q)", tag)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func shift(t *testing.T, p string, d time.Duration) {
	t.Helper()
	info, err := os.Lstat(p)
	must(t, err)
	must(t, os.Chtimes(p, info.ModTime().Add(d), info.ModTime().Add(d)))
}
