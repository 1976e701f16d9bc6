//go:build unix

package archive

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/internal/treetest"
)

// needTools finds the zstd CLI and GNU tar. A missing tool fails the test
// in CI (where the setup must install them: the Debian packages zstd and
// tar) and skips it on a developer machine.
func needTools(t *testing.T) (zstdBin, tarBin string) {
	t.Helper()
	var missing []string
	zstdBin, err := exec.LookPath("zstd")
	if err != nil {
		missing = append(missing, "zstd")
	}
	tarBin, err = exec.LookPath("tar")
	if err == nil {
		out, verr := exec.Command(tarBin, "--version").Output()
		if verr != nil || !bytes.Contains(out, []byte("GNU tar")) {
			missing = append(missing, "GNU tar (found a tar that is not GNU)")
		}
	} else {
		missing = append(missing, "tar")
	}
	if len(missing) > 0 {
		msg := "interop test needs " + strings.Join(missing, " and ") + " on PATH (Debian: apt-get install -y zstd tar)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return zstdBin, tarBin
}

// pipe runs first | second and fails t on any error.
func pipe(t *testing.T, stdin io.Reader, stdout io.Writer, first, second *exec.Cmd) {
	t.Helper()
	var errA, errB bytes.Buffer
	first.Stdin, first.Stderr = stdin, &errA
	second.Stdout, second.Stderr = stdout, &errB
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	first.Stdout, second.Stdin = w, r
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r.Close()
	errFirst, errSecond := first.Wait(), second.Wait()
	if errFirst != nil || errSecond != nil {
		t.Fatalf("%v: %v %s; %v: %v %s", first.Args, errFirst, errA.String(), second.Args, errSecond, errB.String())
	}
}

// TestGNUTarExtractsOurArchives checks the interoperability promise:
// `zstd -d | tar -x` restores what Write stored, exactly.
func TestGNUTarExtractsOurArchives(t *testing.T) {
	zstdBin, tarBin := needTools(t)
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 200})
	name, _ := writeFile(t, src, WriteOptions{Level: 19})
	treetest.AssertEqual(t, src, gnuExtract(t, zstdBin, tarBin, name))
}

// gnuExtract restores the archive file name with `zstd -d | tar -x` into
// a new directory and returns it.
func gnuExtract(t *testing.T, zstdBin, tarBin, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dest := filepath.Join(t.TempDir(), "gnu")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsutil.RemoveAll(dest) })
	// -p keeps exact modes for a non-root user too (root gets it by default).
	pipe(t, f, io.Discard, exec.Command(zstdBin, "-d", "-c"), exec.Command(tarBin, "-x", "-p", "-f", "-", "-C", dest))
	return dest
}

// TestExtractReadsGNUTarArchives checks the other direction: an archive
// made by GNU tar (POSIX format, with its "./" root member, atime/ctime
// records and high-resolution mtimes) extracts identically.
func TestExtractReadsGNUTarArchives(t *testing.T) {
	zstdBin, tarBin := needTools(t)
	src := t.TempDir()
	treetest.Fidelity(t, src, treetest.FidelityOptions{SmallFiles: 200})
	var archive bytes.Buffer
	pipe(t, nil, &archive,
		exec.Command(tarBin, "--format=posix", "-c", "-f", "-", "-C", src, "."),
		exec.Command(zstdBin, "-q", "-c", "-3"))

	s := newSandbox(t)
	res, err := Extract(t.Context(), &archive, s.dest, ExtractOptions{StrictSymlinks: false})
	if err != nil {
		t.Fatalf("Extract of a GNU tar archive: %v", err)
	}
	if res.Files == 0 {
		t.Fatal("no members extracted")
	}
	treetest.AssertEqual(t, src, s.dest)
	s.checkOutside(t)
}
