//go:build unix

package tiered

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStageSweepNeverFollowsSymlinks: a stage or a lock file that is a
// symlink is never followed. Unix only: Wine's symlinks are not
// Windows's, so the Windows behaviour cannot be tested here.
func TestStageSweepNeverFollowsSymlinks(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(t.TempDir(), "precious")
	writeTree(t, target)
	// A dead stage that is a symlink to a directory: removed as a link.
	link := filepath.Join(parent, ".tiercache-pull-777")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link+stageLockExt, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A lock file that is a symlink is neither locked nor removed, and
	// the old stage it names is kept with it.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(parent, ".tiercache-pull-888")
	writeTree(t, stage)
	age(t, stage, 2*locklessStageAge)
	if err := os.Symlink(victim, stage+stageLockExt); err != nil {
		t.Fatal(err)
	}
	// A dangling lock symlink beside an old lock-less stage: nothing is
	// created through it.
	nowhere := filepath.Join(t.TempDir(), "nowhere")
	stage2 := filepath.Join(parent, ".tiercache-pull-889")
	writeTree(t, stage2)
	age(t, stage2, 2*locklessStageAge)
	if err := os.Symlink(nowhere, stage2+stageLockExt); err != nil {
		t.Fatal(err)
	}

	sweep(t, parent)
	mustBeGone(t, link)
	mustBeGone(t, link+stageLockExt)
	for _, f := range []string{"a/b/c/d/e.txt", "a/f.txt", "g.txt"} {
		if b, err := os.ReadFile(filepath.Join(target, filepath.FromSlash(f))); err != nil || string(b) != f {
			t.Errorf("symlink target's %s: %q, %v", f, b, err)
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Errorf("lock symlink's target: %q, %v", b, err)
	}
	mustExist(t, stage+stageLockExt)
	mustExist(t, filepath.Join(stage, "g.txt"))
	mustExist(t, filepath.Join(stage2, "g.txt"))
	mustBeGone(t, nowhere)
}
