package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/tiered"
)

// TestHintDamagedEntry: the hint after a damaged remote entry says what
// clears it, true to what the pull did about it.
func TestHintDamagedEntry(t *testing.T) {
	damaged := fmt.Errorf("extract %q: %w", "k", tiercache.ErrIntegrity)
	for _, c := range []struct {
		err       error
		want, not string
	}{
		{&tiered.RemoteError{Err: &tiered.CorruptError{Key: "k", Err: damaged, Removed: true}}, "the next push stores", "rm"},
		{&tiered.RemoteError{Err: &tiered.CorruptError{Key: "k", Err: damaged, Kept: tiercache.ErrReadOnly}}, "writable job's pull, or 'tiercache rm KEY'", "next push"},
		{&tiered.RemoteError{Err: &tiered.CorruptError{Key: "k", Err: damaged, Kept: errors.New("access denied")}}, "'tiercache rm KEY'", "next push"},
		{damaged, "'tiercache rm KEY'", "next push"},
		// A name only this system refuses: other systems restore it.
		{fmt.Errorf("extract %q: %w", "k", &archive.EntryError{Name: "aux", Reason: "reserved", Err: tiercache.ErrUnsafeArchive, System: true}), "a key of its own", "rm"},
		{fmt.Errorf("extract %q: %w", "k", &archive.EntryError{Name: "../x", Reason: "climbs", Err: tiercache.ErrUnsafeArchive}), "'tiercache rm KEY'", "key of its own"},
	} {
		got := hint(c.err)
		if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
			t.Errorf("hint(%v) = %q, want it to say %q and not %q", c.err, got, c.want, c.not)
		}
	}
}
