package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/tiered"
)

// fakeClock advances by step at every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1e9, 0), step: 2 * time.Second}
	p := &progress{w: &buf, interval: 5 * time.Second, now: clock.now}
	for i := int64(1); i <= 10; i++ {
		p.transfer(tiered.Progress{Op: "download", Key: "k", Done: i << 20, Total: 10 << 20})
	}
	p.finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// 2 s per update from the start, a line every 5 s or more: after 6,
	// 12 and 18 s.
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	if want := `tiercache: download "k": 4.00 MiB of 10.0 MiB (40%), 683 KiB/s, ETA 9s`; lines[0] != want {
		t.Errorf("line = %q, want %q", lines[0], want)
	}
	// An upload's total is unknown.
	buf.Reset()
	clock.step = 3 * time.Second
	p.transfer(tiered.Progress{Op: "upload", Key: "k", Done: 0, Total: -1})
	p.transfer(tiered.Progress{Op: "upload", Key: "k", Done: 6 << 20, Total: -1})
	p.transfer(tiered.Progress{Op: "upload", Key: "k", Done: 12 << 20, Total: -1})
	if want := "tiercache: upload \"k\": 12.0 MiB, 2.00 MiB/s\n"; buf.String() != want {
		t.Errorf("upload line = %q, want %q", buf.String(), want)
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1e9, 0), step: 500 * time.Millisecond}
	p := &progress{w: &buf, tty: true, interval: 5 * time.Second, now: clock.now}
	for i := int64(1); i <= 4; i++ {
		p.transfer(tiered.Progress{Op: "download", Key: "bar-key", Done: i << 20, Total: 8 << 20})
	}
	p.finish()
	out := buf.String()
	if !strings.Contains(out, `download "bar-key": 4.00 MiB of 8.00 MiB, 2.67 MiB/s, ETA 2s`) || !strings.Contains(out, "\r") {
		t.Errorf("bar output: %q", out)
	}
}

// TestProgressNoRateAtFirst: neither the bar nor the plain lines show a
// rate or an ETA before a second of the transfer has passed, however
// much the first reads delivered; both do afterwards.
func TestProgressNoRateAtFirst(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var buf bytes.Buffer
		clock := &fakeClock{t: time.Unix(1e9, 0), step: 100 * time.Millisecond}
		// interval 0: a plain line at every update, to see each reading.
		p := &progress{w: &buf, tty: tty, interval: 0, now: clock.now}
		// 9 updates, 0.8 s: a burst of 512 MiB, as when the first reads
		// come from a buffer.
		for i := int64(1); i <= 9; i++ {
			p.transfer(tiered.Progress{Op: "download", Key: "k", Done: i << 26, Total: 4 << 30})
		}
		early := buf.String()
		if !strings.Contains(early, "MiB of 4.00 GiB") {
			t.Errorf("tty %v: no byte counts in the first second: %q", tty, early)
		}
		if strings.Contains(early, "/s") || strings.Contains(early, "ETA") {
			t.Errorf("tty %v: a rate or ETA in the first second: %q", tty, early)
		}
		buf.Reset()
		for i := int64(10); i <= 13; i++ {
			p.transfer(tiered.Progress{Op: "download", Key: "k", Done: i << 26, Total: 4 << 30})
		}
		p.finish()
		if late := buf.String(); !strings.Contains(late, "/s") || !strings.Contains(late, "ETA") {
			t.Errorf("tty %v: no rate or ETA after a second: %q", tty, late)
		}
	}
}

func TestProgressQuietAndNil(t *testing.T) {
	a := newApp(func(string) string { return "" })
	a.flags.quiet = true
	p := a.newProgress(io.Discard)
	if p != nil {
		t.Fatal("quiet progress is not nil")
	}
	// A nil progress ignores calls.
	p.transfer(tiered.Progress{Op: "download", Key: "k", Done: 1, Total: 2})
	p.finish()
}
