package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// versionDir returns the local version directory key's entry points at.
func versionDir(t *testing.T, e env, name string) string {
	t.Helper()
	pointer := filepath.Join(e["TIERCACHE_DIR"], "index", name)
	readPointer := os.Readlink
	if runtime.GOOS == "windows" {
		// There a pointer is a file holding the target (see package local).
		readPointer = func(p string) (string, error) {
			b, err := os.ReadFile(p)
			return string(b), err
		}
	}
	target, err := readPointer(pointer)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(e["TIERCACHE_DIR"], "index", target)
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestFsck(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "bad-meta", smallTree(t, "a"))
	mustCLI(t, e, "push", "grown", smallTree(t, "b"))
	mustCLI(t, e, "push", "sound", smallTree(t, "c"))

	r := mustCLI(t, e, "fsck", "--deep")
	if r.stdout != "" || !strings.Contains(r.stderr, "fsck: local tier: 3 entries (3 verified), no problem; no remote tier") {
		t.Fatalf("clean fsck: stdout %q stderr %q", r.stdout, r.stderr)
	}
	var out struct {
		Local struct {
			Entries, Verified int
			Problems          []map[string]any
		} `json:"local"`
		Remote     *struct{} `json:"remote"`
		Problems   int       `json:"problems"`
		Unrepaired int       `json:"unrepaired"`
	}
	decode(t, mustCLI(t, e, "fsck", "--json"), &out)
	if out.Local.Entries != 3 || out.Local.Problems == nil || len(out.Local.Problems) != 0 || out.Remote != nil || out.Problems != 0 {
		t.Fatalf("clean fsck --json: %+v", out)
	}

	badMeta := versionDir(t, e, "bad-meta")
	if err := writeString(filepath.Join(badMeta, "meta.json"), "{"); err != nil {
		t.Fatal(err)
	}
	// One byte flipped in the local archive: same size, so only a deep
	// check reads it.
	grownArchive := filepath.Join(versionDir(t, e, "grown"), "archive.tar.zst")
	flipByte(t, grownArchive, 40)

	r = cli(t, e, "fsck")
	if r.code != exitFailure {
		t.Fatalf("fsck of a broken entry: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	if got := lines(r.stdout); len(got) != 1 || !strings.HasPrefix(got[0], "local: broken-entry: "+badMeta+": ") || strings.Contains(got[0], "[repaired]") {
		t.Errorf("problem lines: %q", got)
	}
	if !strings.HasSuffix(r.stderr, "tiercache: fsck: 1 problem found; 'tiercache fsck --repair' removes them\n") {
		t.Errorf("error line: %q", r.stderr)
	}

	r = cli(t, e, "fsck", "--deep")
	want := `local: archive-mismatch: ` + grownArchive + ` (key "grown"): `
	if got := lines(r.stdout); r.code != exitFailure || len(got) != 2 || !strings.HasPrefix(got[1], want) {
		t.Errorf("fsck --deep: exit %d, lines %q; want the second to start with %q", r.code, got, want)
	}

	// Read-only: the repair is refused, nothing changes.
	r = cli(t, e, "--read-only", "fsck", "--repair")
	if r.code != exitFailure || !strings.Contains(r.stderr, "read-only") {
		t.Errorf("read-only repair: exit %d stderr %q", r.code, r.stderr)
	}
	if r := cli(t, e.with("TIERCACHE_READ_ONLY", "true"), "fsck", "--deep"); r.code != exitFailure || len(lines(r.stdout)) != 2 {
		t.Errorf("read-only check: exit %d, stdout %q; want the 2 problems still there", r.code, r.stdout)
	}

	r = mustCLI(t, e, "fsck", "--deep", "--repair")
	got := lines(r.stdout)
	if len(got) != 2 || !strings.HasSuffix(got[0], "[repaired]") || !strings.HasSuffix(got[1], "[repaired]") {
		t.Errorf("repair lines: %q", got)
	}
	if !strings.Contains(r.stderr, "2 problems, all repaired") {
		t.Errorf("repair summary: %q", r.stderr)
	}
	r = mustCLI(t, e, "fsck", "--deep")
	if !strings.Contains(r.stderr, "1 entry (1 verified), no problem") {
		t.Errorf("fsck after repair: %q", r.stderr)
	}
	// The repaired keys miss; the sound one still hits.
	mustCLI(t, e, "pull", "--fail-on-miss", "sound", filepath.Join(t.TempDir(), "d"))
	if r := cli(t, e, "pull", "--fail-on-miss", "grown", filepath.Join(t.TempDir(), "d")); r.code != exitMiss {
		t.Errorf("pull of a repaired key: exit %d, want a miss", r.code)
	}
}

func TestFsckGrace(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "k", smallTree(t, "a"))
	// A version nobody points at, as a push killed mid-commit leaves.
	orphan := filepath.Join(e["TIERCACHE_DIR"], "data", "k-00000000000000aa")
	if err := os.MkdirAll(filepath.Join(orphan, "tree"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e, "fsck")                  // young: maybe a push committing right now
	mustCLI(t, e, "fsck", "--grace", "1d") // days, as prune's ages take them
	r := cli(t, e, "fsck", "--grace", "0")
	if got := lines(r.stdout); r.code != exitFailure || len(got) != 1 || !strings.HasPrefix(got[0], "local: orphan-version: "+orphan+": ") {
		t.Fatalf("fsck --grace 0: exit %d, lines %q", r.code, got)
	}
	mustCLI(t, e, "fsck", "--grace", "0", "--repair")
	if _, err := os.Lstat(orphan); !os.IsNotExist(err) {
		t.Fatalf("orphan survived the repair: %v", err)
	}
	if r := cli(t, e, "fsck", "--grace", "-1s"); r.code != exitUsage {
		t.Errorf("negative grace: exit %d, want %d", r.code, exitUsage)
	}
	if r := cli(t, e, "fsck", "extra"); r.code != exitUsage {
		t.Errorf("an argument: exit %d, want %d", r.code, exitUsage)
	}
}

// flipByte inverts the byte at offset off of the file at path, which may
// be read-only.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
