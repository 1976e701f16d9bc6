package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// countLstats sets the lstatted hook for the rest of the test and
// returns the count of lstats per member name.
func countLstats(t *testing.T) map[string]int {
	t.Helper()
	seen := map[string]int{}
	lstatted = func(rel string) { seen[rel]++ }
	t.Cleanup(func() { lstatted = nil })
	return seen
}

// excludeTree makes, below dir, a tree where every kind of exclude
// leaves something out, and returns the tree's root.
func excludeTree(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "tree")
	for name, body := range map[string]string{
		"keep/f.txt":  "kept",
		"locked.db":   "excluded by name",
		"cache/big":   "excluded with its directory",
		"sub/cache/x": "excluded with its directory, deeper",
		"sub/a.tmp":   "excluded by a glob",
		"logs":        "a file: logs/ matches only a directory",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestWriteExcludedNeverLstat: an entry an exclude leaves out is never
// lstat'ed, a directory left out by a pattern ending in "/" included (its
// listing tells it is one): on Windows lstat opens the file, and fails
// on one another process holds without sharing. What is kept is lstat'ed
// once.
func TestWriteExcludedNeverLstat(t *testing.T) {
	root := excludeTree(t, t.TempDir())
	ex, err := NewExclude([]string{"locked.db", "cache/", "*.tmp", "logs/"})
	if err != nil {
		t.Fatal(err)
	}
	kept := []string{"keep", "keep/f.txt", "logs", "sub"}
	for _, c := range []struct {
		name   string
		src    Source
		prefix string
	}{
		{"Dir", Source{Dir: root, Exclude: ex}, ""},
		{"Paths", Source{Paths: []string{root}, Exclude: ex}, "0/"},
	} {
		want := map[string]int{}
		for _, k := range kept {
			want[c.prefix+k] = 1
		}
		if c.prefix != "" {
			want["0"] = 1 // the path itself, which no pattern matches
		}
		seen := countLstats(t)
		var buf bytes.Buffer
		res, err := WriteSource(t.Context(), &buf, c.src, WriteOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !maps.Equal(seen, want) {
			t.Errorf("%s: Write lstat'ed %v, want %v", c.name, seen, want)
		}
		if got := memberNames(t, buf.Bytes()); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
			t.Errorf("%s: members %q, want %q", c.name, got, slices.Sorted(maps.Keys(want)))
		}
		if res.Files != int64(len(want)) {
			t.Errorf("%s: Files = %d, want %d", c.name, res.Files, len(want))
		}
		clear(seen)
		if _, err := Measure(t.Context(), c.src); err != nil {
			t.Fatalf("%s: Measure: %v", c.name, err)
		}
		if !maps.Equal(seen, want) {
			t.Errorf("%s: Measure lstat'ed %v, want %v", c.name, seen, want)
		}
	}
}

// TestWriteExcludeUnknownType: where the listing does not give an
// entry's type (DT_UNKNOWN), a pattern ending in "/" needs an lstat to
// tell a directory, which leaves it out, from a file, which is archived
// (lstat'ed once all the same); a pattern for any type needs none.
func TestWriteExcludeUnknownType(t *testing.T) {
	root := excludeTree(t, t.TempDir())
	ex, err := NewExclude([]string{"locked.db", "cache/", "logs/"})
	if err != nil {
		t.Fatal(err)
	}
	top, err := openSourceDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer top.close()
	for _, c := range []struct {
		name  string
		stats int
		files int64
	}{
		{"locked.db", 0, 0},
		{"cache", 1, 0},
		{"logs", 1, 1},
	} {
		seen := countLstats(t)
		aw := newArchiveWriter(t.Context(), ex) // no tar writer: Measure's
		if err := aw.member(top, c.name, c.name, fsutil.TypeUnknown); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if seen[c.name] != c.stats || aw.files != c.files {
			t.Errorf("%s of unknown type: lstat'ed %d times, %d members; want %d, %d", c.name, seen[c.name], aw.files, c.stats, c.files)
		}
	}
}

// memberNames lists the members of the archive arc, a directory's
// without its trailing "/".
func memberNames(t *testing.T, arc []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(decompressAll(t, arc)))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(hdr.Name, "/"))
	}
}
