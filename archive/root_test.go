package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Extract leaves the destination's own metadata alone but reports what a
// "./" member says, so a caller restoring into an existing directory can
// decide; archives made by Write have no such member.
func TestExtractReportsRootMember(t *testing.T) {
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 890, time.UTC)
	root := dirM("./")
	root.hdr.Mode = 0o4750 // setuid is dropped, as for every member
	root.hdr.ModTime = mtime
	s := newSandbox(t)
	if err := os.Chmod(s.dest, 0o711); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(s.dest) // 0711 where the system keeps every bit
	if err != nil {
		t.Fatal(err)
	}
	res, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, root, reg("a", "a"))), s.dest, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Root == nil {
		t.Fatal("Root is nil for an archive with a ./ member")
	}
	if res.Root.Mode != 0o750 || !res.Root.ModTime.Equal(mtime) {
		t.Errorf("Root = %v %v, want %v %v", res.Root.Mode, res.Root.ModTime, os.FileMode(0o750), mtime)
	}
	fi, err := os.Stat(s.dest)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != before.Mode() {
		t.Errorf("Extract changed the destination's mode from %v to %v", before.Mode(), fi.Mode())
	}

	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, src, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = Extract(t.Context(), &buf, t.TempDir(), ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Root != nil {
		t.Errorf("Root = %+v for an archive made by Write, which has no ./ member", *res.Root)
	}
}
