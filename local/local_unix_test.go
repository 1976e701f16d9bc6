//go:build unix

package local

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tiercache/tiercache"
)

func TestSetuidDroppedAndSpecialFilesRefused(t *testing.T) {
	c := open(t, Options{})
	src := srcDir(t)
	f := filepath.Join(src, "tool")
	if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o755|fs.ModeSetuid|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	p, err := c.Put(t.Context(), "k", src, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(p, "tool"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Fatalf("cached mode %v, want 0755 without setuid/setgid", fi.Mode())
	}

	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(t.Context(), "fifo", src, ""); !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), "fifo is a FIFO") {
		t.Fatalf("Put of a tree with a FIFO: %v, want ErrInvalidArgument naming it and its type", err)
	}
	if _, ok, _ := c.Get(t.Context(), "fifo"); ok {
		t.Fatal("refused Put left an entry")
	}
	if n := names(t, c.stagingDir); len(n) != 0 {
		t.Fatalf("refused Put left staging %q", n)
	}
}

// TestOpenDanglingSymlinkRoot: a root that is a symlink to nothing is
// refused saying so, not with mkdir's bare "file exists".
func TestOpenDanglingSymlinkRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "cache")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), root); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, Options{}); err == nil || !strings.Contains(err.Error(), "is a symlink to") {
		t.Errorf("Open of a dangling symlink: %v; want an error saying so", err)
	}
}
