//go:build unix

package archive

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteNamesUnreadableFile: a file the user may not read fails the
// archive with an error naming it where it is on disk, not by its member
// name (which, for an entry of several paths, starts "0/"). Root reads
// it, and its archive succeeds.
func TestWriteNamesUnreadableFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	secret := filepath.Join(src, "a", "deep", "secret")
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Source{{Dir: src}, {Paths: []string{src}}} {
		_, err := WriteSource(t.Context(), io.Discard, s, WriteOptions{})
		if os.Geteuid() == 0 {
			if err != nil {
				t.Errorf("%+v as root: %v", s, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "open "+secret+": permission denied") {
			t.Errorf("%+v: %v; want it to name %s", s, err, secret)
		}
	}
}
