package archive

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
)

// TestInspectMatchesExtract checks that Inspect reports what Write wrote
// and Extract reads, to the byte, and refuses what Extract refuses with
// the same error, writing nothing.
func TestInspectMatchesExtract(t *testing.T) {
	data := validArchive(t)
	got, err := Inspect(t.Context(), bytes.NewReader(data), ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := extractBytes(t, data, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ArchiveSize != want.ArchiveSize || got.SHA256 != want.SHA256 || got.Files != want.Files || got.Size != want.Size || got.Size == 0 {
		t.Errorf("Inspect = %+v, Extract = %+v", got, want)
	}

	for _, n := range []int{0, 13, len(data) / 2, len(data) - 1} {
		if _, err := Inspect(t.Context(), bytes.NewReader(data[:n]), ExtractOptions{}); !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("cut at %d of %d: %v, want ErrIntegrity", n, len(data), err)
		}
	}
	for name, opts := range map[string]ExtractOptions{
		"entries": {MaxEntries: want.Files - 1},
		"bytes":   {MaxBytes: want.Size - 1},
	} {
		if _, err := Inspect(t.Context(), bytes.NewReader(data), opts); !errors.Is(err, tiercache.ErrLimitExceeded) {
			t.Errorf("%s one below the archive's: %v, want ErrLimitExceeded", name, err)
		}
	}
	if _, err := Inspect(t.Context(), bytes.NewReader(data), ExtractOptions{MaxBytes: -1}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("negative MaxBytes: %v, want ErrInvalidArgument", err)
	}

	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			data := c.archive(t, s)
			_, err := Inspect(t.Context(), bytes.NewReader(data), c.opts)
			// What only this system refuses (on Windows, a name like
			// C:/x, relative on Unix) is an intact archive to Inspect.
			var ee *EntryError
			if _, xerr := Extract(t.Context(), bytes.NewReader(data), s.dest, c.opts); errors.As(xerr, &ee) && ee.System {
				if err != nil {
					t.Fatalf("Inspect: %v; want it to accept what only this system refuses (%v)", err, xerr)
				}
				return
			}
			s.checkOutside(t)
			if !errors.Is(err, c.want) || !errors.As(err, &ee) || !strings.Contains(ee.Name, c.entry) {
				t.Fatalf("err = %v, want %v naming member %q", err, c.want, c.entry)
			}
			s.checkOutside(t)
		})
	}
}
