package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
)

// windowsInvalidNames are member names Windows cannot hold as they are,
// with the component Extract must blame.
var windowsInvalidNames = []string{
	"CON", "con", "nul.txt", "Aux.tar.gz", "PRN", "NUL .txt", "com1", "LPT9.log", "COM¹", "lpt³.x", "CONIN$", "conout$",
	"dir/NUL", "trailing.", "trailing ", "dir./f", "a:b", "file:stream", "C:/abs", "lt<", "gt>", `quote"`,
	"pipe|", "what?", "star*", "tab\there", "bell\x07", "nl\nx",
}

func TestWindowsNameProblem(t *testing.T) {
	for _, name := range windowsInvalidNames {
		bad := false
		for _, comp := range strings.Split(name, "/") {
			if windowsNameProblem(comp) != "" {
				bad = true
			}
		}
		if !bad {
			t.Errorf("%q: no problem found", name)
		}
	}
	for _, ok := range []string{
		"CONSOLE", "nul-ish", "com", "COM10", "LPT0x", "auxiliary.txt", "x.CON", "a.b.c", ".hidden", "..x",
		"e\u0301", "日本語", "emoji-😀", "COM", "lpt", "sp ace", "dot.ted", "-dash", "del\x7f",
	} {
		if why := windowsNameProblem(ok); why != "" {
			t.Errorf("%q refused: %s", ok, why)
		}
	}
}

// TestExtractWindowsNames: on Windows a name it cannot hold is refused,
// naming the member, before anything is written under it; elsewhere the
// same names are ordinary and extract.
func TestExtractWindowsNames(t *testing.T) {
	for _, name := range windowsInvalidNames {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, reg(name, "x"))), s.dest, ExtractOptions{})
			if runtime.GOOS != "windows" {
				if err != nil {
					t.Fatalf("Extract: %v", err)
				}
				return
			}
			var ee *EntryError
			if !errors.Is(err, tiercache.ErrUnsafeArchive) || !errors.As(err, &ee) || ee.Name != name || !ee.System {
				t.Fatalf("err = %v (system %v), want ErrUnsafeArchive naming %q, refused by this system alone", err, ee != nil && ee.System, name)
			}
			// The archive is intact all the same, and Linux restores
			// it: Inspect (fsck) does not judge it by this system.
			if _, err := Inspect(t.Context(), bytes.NewReader(archiveOf(t, reg(name, "x"))), ExtractOptions{}); err != nil {
				t.Errorf("Inspect: %v; want the archive accepted", err)
			}
			if names := s.destNames(t); len(names) != 0 {
				t.Errorf("refused member left %q", names)
			}
			s.checkOutside(t)
		})
	}
	// A hardlink may not name one either.
	if runtime.GOOS == "windows" {
		s := newSandbox(t)
		_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, reg("f", "x"), hardlinkM("aux.c", "f"))), s.dest, ExtractOptions{})
		if !errors.Is(err, tiercache.ErrUnsafeArchive) || !errMentions(err, "aux.c") {
			t.Fatalf("hardlink named aux.c: err = %v, want ErrUnsafeArchive naming it", err)
		}
	}
}

// TestExtractSymlinkOnWindows: a symlink is restored where the process
// may create one; where it may not, the error names the member and says
// why.
func TestExtractSymlinkOnWindows(t *testing.T) {
	if runtime.GOOS != "windows" {
		t.Skip("Windows only: symlinks need no privilege elsewhere")
	}
	s := newSandbox(t)
	_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, dirM("d/"), reg("d/f", "x"), symlinkM("l", "d/f"))), s.dest, ExtractOptions{})
	if err != nil {
		if !errMentions(err, "l") || !strings.Contains(err.Error(), "cannot create the symlink") ||
			!strings.Contains(err.Error(), "privilege") && !strings.Contains(err.Error(), "does not support symlinks") {
			t.Fatalf("err = %v, want one naming the member and the reason", err)
		}
		return
	}
	target, err := os.Readlink(filepath.Join(s.dest, "l"))
	if err != nil || target != `d\f` {
		t.Fatalf("symlink l = %q, %v; want d\\f", target, err)
	}
	// The link's own mtime is the member's (tarBytes gives every member
	// this one).
	if fi, err := os.Lstat(filepath.Join(s.dest, "l")); err != nil || !fi.ModTime().Equal(time.Unix(1_600_000_000, 0)) {
		t.Errorf("symlink l: mtime %v, %v; want the member's", fi.ModTime(), err)
	}
}

// TestLchtimes: lchtimes sets the mtime of the name it is given inside
// the root, and of a symlink itself, never its target. Under Wine, which
// cannot make symlinks, only the first part runs: the open relative to
// the parent directory and the setting of times through it.
func TestLchtimes(t *testing.T) {
	if runtime.GOOS == "plan9" || runtime.GOARCH == "wasm" {
		t.Skip("symlink times are left as created on this platform")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	// Whole 100 ns, which Windows keeps.
	mt := time.Date(2009, 11, 10, 23, 0, 0, 123456700, time.UTC)
	if err := lchtimes(root, "sub/f", mt); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "sub", "f"))
	if err != nil || !fi.ModTime().Equal(mt) {
		t.Fatalf("file mtime %v, %v; want %v", fi.ModTime(), err, mt)
	}

	link := filepath.Join(dir, "sub", "l")
	err = os.Symlink("f", link)
	if err == nil {
		_, err = os.Lstat(link)
	}
	if err != nil {
		t.Skipf("no symlink to set the time of (Wine has none; Windows needs a privilege): %v", err)
	}
	lt := mt.Add(-time.Hour)
	if err := lchtimes(root, "sub/l", lt); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.ModTime().Equal(lt) {
		t.Errorf("symlink mtime %v, %v; want %v", fi.ModTime(), err, lt)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "sub", "f")); err != nil || !fi.ModTime().Equal(mt) {
		t.Errorf("the target's mtime became %v, %v; want %v kept", fi.ModTime(), err, mt)
	}
}

// TestRoundTripOnWindows: the fidelity tree in its Windows shape survives
// Write and Extract, and Write stores the modes Windows reports as a Unix
// umask of 022 would leave them.
func TestRoundTripOnWindows(t *testing.T) {
	if runtime.GOOS != "windows" {
		t.Skip("Windows only: roundtrip_test.go covers Unix")
	}
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 200})
	var buf bytes.Buffer
	wres, err := Write(t.Context(), &buf, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int64{}
	dec, err := zstd.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[strings.TrimSuffix(hdr.Name, "/")] = hdr.Mode
	}
	wantModes := map[string]int64{
		"perm/exec.sh":                           0o644, // Windows keeps no exec bit
		"perm/readonly.txt":                      0o444,
		"perm":                                   0o755,
		treetest.FidelityReadOnlyDir:             0o555,
		treetest.FidelityReadOnlyDir + "/go.mod": 0o444,
	}
	if treetest.UnderWine() {
		t.Log("a read-only directory's mode is not checked: Wine keeps no read-only attribute on directories")
		delete(wantModes, treetest.FidelityReadOnlyDir)
	}
	for name, want := range wantModes {
		if got, ok := modes[name]; !ok || got != want {
			t.Errorf("%s stored with mode %o (present %v), want %o", name, got, ok, want)
		}
	}

	s := newSandbox(t)
	xres, err := Extract(t.Context(), bytes.NewReader(buf.Bytes()), s.dest, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wres.Index = IndexInfo{} // only Write appends an index
	if xres != wres {
		t.Errorf("Extract result %+v, Write result %+v", xres, wres)
	}
	treetest.AssertEqual(t, src, s.dest)
	if fi, err := os.Lstat(filepath.Join(s.dest, filepath.FromSlash(treetest.FidelityReadOnlyDir), "go.mod")); err != nil || fi.Mode().Perm()&0o200 != 0 {
		t.Errorf("read-only file extracted writable: %v, %v", fi.Mode(), err)
	}
}
