package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPullShapeInTheWay: pulling an entry into one PATH that holds the
// other kind of thing (a file where the entry holds a directory, a
// directory where it holds a file) exits 1 with a message naming PATH,
// which is left as it was.
func TestPullShapeInTheWay(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "tree", smallTree(t, "shape"))
	srcFile := filepath.Join(t.TempDir(), "conf.json")
	if err := writeString(srcFile, "conf"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e, "push", "file", srcFile)

	file := filepath.Join(t.TempDir(), "dst")
	if err := writeString(file, "in the way"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dst")
	if err := os.MkdirAll(filepath.Join(dir, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, path, want string }{
		{"tree", file, file + " is not a directory; the entry holds a directory there"},
		{"file", dir, dir + " is a directory; the entry holds a file there"},
	} {
		// --lookup-only answers as the pull would.
		for _, args := range [][]string{{"pull", tc.key, tc.path}, {"pull", "--lookup-only", tc.key, tc.path}} {
			r := cli(t, e, args...)
			if r.code != 1 || !strings.Contains(r.stderr, `tiercache: pull "`+tc.key+`": restoring into `+tc.path+": "+tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want exit 1 saying %q", args, r.code, r.stderr, tc.want)
			}
		}
	}
	if got := readFile(t, file); got != "in the way" {
		t.Errorf("the file in the way now holds %q", got)
	}
	if names, err := os.ReadDir(dir); err != nil || len(names) != 1 || names[0].Name() != "keep" {
		t.Errorf("the directory in the way changed: %v, %v", names, err)
	}
}
