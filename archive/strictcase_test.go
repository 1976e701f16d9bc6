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
	"github.com/tiercache/tiercache/internal/treetest"
)

// setFoldingNames makes Extract and Inspect treat destinations as this
// system's would if it folded names (fold true: macOS, Windows) or not,
// for the rest of t.
func setFoldingNames(t *testing.T, fold bool) {
	t.Helper()
	old := foldingNames
	foldingNames = fold
	t.Cleanup(func() { foldingNames = old })
}

// foldingEscapes are archives whose symlinks all stay inside the tree
// when names are compared byte for byte, but where one (the member named
// by the key's suffix after "@") leaves it on a destination that takes
// two spellings of a name for one file.
var foldingEscapes = map[string][]member{
	"other case of a symlink to the root@x": {
		dirM("d/"),
		symlinkM("d/up", ".."), // d/.. is the root: allowed
		symlinkM("x", "D/UP/.."),
	},
	"other case of a later symlink@x": {
		symlinkM("x", "B/.."),
		symlinkM("b", "."),
	},
	"NFD spelling of an NFC directory holding a symlink@x": {
		dirM("caf\u00e9/"),
		symlinkM("caf\u00e9/up", ".."),
		symlinkM("x", "cafe\u0301/up/.."),
	},
	"NFC spelling of an NFD symlink@x": {
		symlinkM("cafe\u0301", "."),
		symlinkM("x", "caf\u00e9/.."),
	},
	"Kelvin sign for k@x": {
		dirM("k/"),
		symlinkM("k/up", ".."),
		symlinkM("x", "\u212a/up/.."),
	},
}

// TestStrictSymlinksFoldedNames: with StrictSymlinks, on a destination
// that may fold names, a symlink that resolves outside through another
// spelling of a symlink's name is refused, by Inspect and Extract alike
// (under Wine, which creates no symlinks, Inspect only).
func TestStrictSymlinksFoldedNames(t *testing.T) {
	setFoldingNames(t, true)
	for key, ms := range foldingEscapes {
		name, entry, _ := strings.Cut(key, "@")
		t.Run(name, func(t *testing.T) {
			data := archiveOf(t, ms...)
			_, err := Inspect(t.Context(), bytes.NewReader(data), ExtractOptions{StrictSymlinks: true})
			checkStrictRefusal(t, "Inspect", err, entry)

			s := newSandbox(t)
			_, err = Extract(t.Context(), bytes.NewReader(data), s.dest, ExtractOptions{StrictSymlinks: true})
			skipWineNoSymlink(t, err)
			checkStrictRefusal(t, "Extract", err, entry)
			s.checkOutside(t)
		})
	}
}

func checkStrictRefusal(t *testing.T, op string, err error, entry string) {
	t.Helper()
	var ee *EntryError
	if !errors.Is(err, tiercache.ErrUnsafeArchive) || !errors.As(err, &ee) || ee.Name != entry || !strings.Contains(ee.Reason, "StrictSymlinks") {
		t.Fatalf("%s: err = %v, want ErrUnsafeArchive naming member %q under StrictSymlinks", op, err, entry)
	}
}

// TestExtractRefusesHostileArchivesFolded: where names may fold,
// everything refused byte for byte is still refused.
func TestExtractRefusesHostileArchivesFolded(t *testing.T) {
	setFoldingNames(t, true)
	testHostile(t, false)
}

// TestStrictSymlinksFoldedNamesByteExact: where names are not folded (as
// on Linux), the same archives pass: there "D/UP" is another, missing
// name, and x stays inside.
func TestStrictSymlinksFoldedNamesByteExact(t *testing.T) {
	setFoldingNames(t, false)
	for key, ms := range foldingEscapes {
		name, _, _ := strings.Cut(key, "@")
		t.Run(name, func(t *testing.T) {
			if _, err := Inspect(t.Context(), bytes.NewReader(archiveOf(t, ms...)), ExtractOptions{StrictSymlinks: true}); err != nil {
				t.Fatalf("Inspect: %v", err)
			}
		})
	}
}

// TestStrictSymlinksFoldedNamesStillInside: folding refuses no more than
// it must; symlinks that stay inside whichever spelling the destination
// takes still extract.
func TestStrictSymlinksFoldedNamesStillInside(t *testing.T) {
	setFoldingNames(t, true)
	cases := map[string][]member{
		"through a symlink, then back down": {dirM("a/"), symlinkM("a/s", "../b"), symlinkM("c", "a/s/../a")},
		"other case, no climb after it": {
			dirM("d/"),
			symlinkM("d/up", ".."),
			symlinkM("x", "D/UP/d"),
		},
		"other case of a plain directory, then a climb": {
			dirM("d/"),
			symlinkM("l", "."),
			symlinkM("x", "D/.."),
		},
		"non-ASCII names and targets without a climb": {
			dirM("docs/"),
			symlinkM("\u65e5\u672c", "docs"),
			symlinkM("x", "\u65e5\u672c/caf\u00e9"),
			symlinkM("docs/up", "../\u65e5\u672c"),
		},
	}
	for name, ms := range cases {
		t.Run(name, func(t *testing.T) {
			data := archiveOf(t, ms...)
			if _, err := Inspect(t.Context(), bytes.NewReader(data), ExtractOptions{StrictSymlinks: true}); err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			s := newSandbox(t)
			if _, err := Extract(t.Context(), bytes.NewReader(data), s.dest, ExtractOptions{StrictSymlinks: true}); err != nil {
				skipWineNoSymlink(t, err)
				t.Fatalf("Extract: %v", err)
			}
		})
	}
}

// foldsCase reports whether the file system holding dir takes names
// that differ only in case for one file.
func foldsCase(t *testing.T, dir string) bool {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(dir, "probe"))
	_, err := os.Stat(filepath.Join(dir, "PROBE"))
	return err == nil
}

// TestExtractCaseCollisions: on a destination that folds case (Windows,
// macOS by default), two members whose names differ only in case are one
// file, and Extract refuses one of them, naming it and saying why: the
// later one with one writer; with several, either, as they race.
func TestExtractCaseCollisions(t *testing.T) {
	if !foldsCase(t, t.TempDir()) {
		t.Skip("the temporary directory's file system tells names apart by case")
	}
	cases := []struct {
		name         string
		ms           []member
		entry, other string
	}{
		{"files", []member{reg("a", "1"), reg("A", "2")}, "A", "a"},
		{"directories", []member{dirM("d/"), dirM("D/")}, "D/", "d/"},
		{"file under a directory's other case", []member{dirM("d/"), reg("d/f", "1"), reg("D/f", "2")}, "D/f", "d/f"},
		{"hardlink", []member{reg("a", "1"), reg("b", "2"), hardlinkM("B", "a")}, "B", "b"},
	}
	for _, c := range cases {
		for _, writers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s, %d writers", c.name, writers), func(t *testing.T) {
				if writers > 1 && treetest.UnderWine() {
					t.Skip("Wine folds case above a file system that does not, so two writers creating a and A at once can both succeed")
				}
				s := newSandbox(t)
				_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, c.ms...)), s.dest, ExtractOptions{Writers: writers})
				var ee *EntryError
				if !errors.Is(err, tiercache.ErrUnsafeArchive) || !errors.As(err, &ee) || !strings.Contains(ee.Reason, "case") ||
					ee.Name != c.entry && (writers == 1 || ee.Name != c.other) {
					t.Fatalf("err = %v, want ErrUnsafeArchive naming member %q and the case collision", err, c.entry)
				}
				s.checkOutside(t)
			})
		}
	}
}

// refuseSymlinks makes Extract's symlink creation fail for the rest of t
// as a system without symlinks does.
func refuseSymlinks(t *testing.T) {
	t.Helper()
	old := symlinkAt
	refused := syscall.EPERM
	if runtime.GOOS == "windows" {
		refused = syscall.Errno(1314) // ERROR_PRIVILEGE_NOT_HELD
	}
	symlinkAt = func(*os.Root, string, string, bool) error { return &os.LinkError{Op: "symlinkat", Err: refused} }
	t.Cleanup(func() { symlinkAt = old })
}

// TestSkippedSymlinkFoldedNames: with SkipSymlinks, nothing is created
// at or below a skipped symlink's name in another case where the
// destination may fold names; where it does not, that is another name.
func TestSkippedSymlinkFoldedNames(t *testing.T) {
	refuseSymlinks(t)
	cases := []struct {
		name  string
		ms    []member
		entry string
	}{
		{"below it", []member{symlinkM("s", "t"), reg("S/f", "x")}, "S/f"},
		{"over it", []member{symlinkM("d/s", "t"), reg("d/S", "x")}, "d/S"},
		{"directory over it", []member{symlinkM("s", "t"), dirM("S/")}, "S/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setFoldingNames(t, true)
			s := newSandbox(t)
			_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, c.ms...)), s.dest, ExtractOptions{SkipSymlinks: true})
			var ee *EntryError
			// Where symlinks wait for the end (Windows), none is skipped yet.
			if !errors.Is(err, tiercache.ErrUnsafeArchive) || !errors.As(err, &ee) || ee.Name != c.entry || !strings.Contains(ee.Reason, "skipped symlink") && !(deferSymlinks && strings.Contains(ee.Reason, "is the symlink")) {
				t.Fatalf("err = %v, want ErrUnsafeArchive naming member %q and the skipped symlink", err, c.entry)
			}
		})
		if foldsCase(t, t.TempDir()) {
			continue
		}
		t.Run(c.name+", byte-exact", func(t *testing.T) {
			setFoldingNames(t, false)
			s := newSandbox(t)
			if _, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, c.ms...)), s.dest, ExtractOptions{SkipSymlinks: true}); err != nil {
				t.Fatalf("Extract: %v", err)
			}
		})
	}
}

// TestStrictSymlinksShortNames: NTFS with 8.3 names (the default
// on many system volumes) also takes "LONGDI~1" for "longdirectory":
// another spelling of a symlink's parent the folding check does not
// consider.
func TestStrictSymlinksShortNames(t *testing.T) {
	setFoldingNames(t, true)
	data := archiveOf(t,
		dirM("longdirectory/"),
		symlinkM("longdirectory/up", ".."), // longdirectory/.. is the root: allowed
		symlinkM("x", "LONGDI~1/up/.."),
	)
	_, err := Inspect(t.Context(), bytes.NewReader(data), ExtractOptions{StrictSymlinks: true})
	checkStrictRefusal(t, "Inspect", err, "x")
}
