package tiered

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode"

	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote/memstore"
)

// TestSecuritySkipNoteEscapesRecordedPaths: the paths an entry records
// come from whoever pushed it, and the note of a pull that skips the
// entry names them. A path holding a line break must not start a line
// of its own in that note: a CI runner would read one that starts with
// "::" from the job's log as a workflow command (an annotation, a mask,
// stop-commands), and an escape sequence would drive the terminal.
func TestSecuritySkipNoteEscapesRecordedPaths(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows names hold no control characters")
	}
	store := memstore.New()
	base := t.TempDir()
	evil := filepath.Join(base, "mod\n::error title=pwned::forged\x1b[2J")
	if err := os.Mkdir(evil, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Small(t, evil, 3, "evil")
	file := filepath.Join(base, "conf")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newTiered(t, store, Options{}).PushPaths(t.Context(), "deps", []string{evil, file}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another machine pulls into one path: the entry is skipped, noted.
	for _, lookup := range []bool{false, true} {
		h, ok, err := newTiered(t, store, Options{}).PullPaths(t.Context(), "deps", nil, []string{filepath.Join(t.TempDir(), "d")}, PullOptions{LookupOnly: lookup})
		if ok || err != nil || len(h.Skipped) != 1 {
			t.Fatalf("lookup %v: ok %v, %v, skipped %q; want a miss noting the entry", lookup, ok, err, h.Skipped)
		}
		note := h.Skipped[0]
		if i := strings.IndexFunc(note, unicode.IsControl); i >= 0 {
			t.Errorf("lookup %v: the note holds the control character %q of a recorded path: %q", lookup, note[i], note)
		}
		if !strings.Contains(note, `::error title=pwned::forged`) {
			t.Errorf("lookup %v: the note %q does not name the recorded path", lookup, note)
		}
	}
}
