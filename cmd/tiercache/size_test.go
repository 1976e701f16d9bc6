package main

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"10GiB", 10 << 30},
		{"10gib", 10 << 30},
		{"10 GiB", 10 << 30},
		{"500MB", 500_000_000},
		{"500mb", 500_000_000},
		{"500M", 500_000_000},
		{"1.5G", 1_500_000_000},
		{"1.5GiB", 3 << 29},
		{"1.5Gi", 3 << 29},
		{"2KiB", 2048},
		{"2k", 2000},
		{"1TB", 1e12},
		{"1TiB", 1 << 40},
		{"1PiB", 1 << 50},
		{"7B", 7},
		{"0.5KiB", 512},
		{"1.0001KB", 1000}, // rounded down to whole bytes
		{" 3 MiB ", 3 << 20},
		{"8388607TiB", 8388607 << 40}, // exact near the int64 limit
	} {
		got, err := parseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "-1GiB", "10XB", "1.2.3G", ".", "ten", "10 G B", "1e9", "9EiB", "8388608TiB", "0x10"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "0 B",
		1023:          "1023 B",
		1024:          "1.00 KiB",
		1536:          "1.50 KiB",
		10 << 20:      "10.0 MiB",
		150 << 20:     "150 MiB",
		3<<30 + 1<<28: "3.25 GiB",
		5 << 40:       "5.00 TiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := formatRate(10<<20, 2*time.Second); got != "5.00 MiB/s" {
		t.Errorf("formatRate = %q", got)
	}
	if got := formatRate(1, 0); got != "- /s" {
		t.Errorf("formatRate(0 duration) = %q", got)
	}
	for d, want := range map[time.Duration]string{
		1234567 * time.Microsecond: "1.23s",
		250 * time.Millisecond:     "250ms",
		90 * time.Second:           "1m30s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
