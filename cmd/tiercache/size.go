package main

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// sizeUnits maps a size suffix (lower-cased) onto its multiplier. SI
// suffixes are powers of 1000 and IEC ones powers of 1024, as their
// standards say; a bare letter is the SI unit (1.5G = 1.5 GB), like disk
// vendors and `ls --si`.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "kib": 1 << 10, "ki": 1 << 10,
	"m": 1e6, "mb": 1e6, "mib": 1 << 20, "mi": 1 << 20,
	"g": 1e9, "gb": 1e9, "gib": 1 << 30, "gi": 1 << 30,
	"t": 1e12, "tb": 1e12, "tib": 1 << 40, "ti": 1 << 40,
	"p": 1e15, "pb": 1e15, "pib": 1 << 50, "pi": 1 << 50,
}

var errSize = errors.New("want a size such as 500MB, 10GiB, 1.5G or 1048576")

// parseSize parses a human size: a non-negative decimal number and an
// optional unit (B, KB/K, KiB, MB/M, MiB, GB/G, GiB, TB/T, TiB, PB/P, PiB,
// case-insensitive), with an optional space between. A fractional result
// is rounded down to whole bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if !ok || num == "" || num == "." || strings.Count(num, ".") > 1 {
		return 0, errSize
	}
	// Exact arithmetic: float64 would misround large byte counts.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, errSize
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size is larger than %d bytes", int64(math.MaxInt64))
	}
	return n.Int64(), nil
}

// sizeValue is a flag holding a human size.
type sizeValue struct{ n *int64 }

func (v sizeValue) String() string {
	if v.n == nil || *v.n == 0 {
		return "0"
	}
	return formatBytes(*v.n)
}

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	if n == 0 && strings.Trim(s, "0. \tbBkKmMgGtTpPeEiI") != "" {
		// 0 would mean no limit: refuse a size too small to be one.
		return fmt.Errorf("%q is less than one byte", s)
	}
	*v.n = n
	return nil
}

func (sizeValue) Type() string { return "size" }

// formatBytes renders n bytes in IEC units with three significant digits
// at most ("512 B", "1.5 KiB", "120 MiB", "3.25 GiB").
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for math.Abs(f) >= unit && i < len(suffixes)-1 {
		f /= unit
		i++
	}
	switch {
	case math.Abs(f) >= 100:
		return fmt.Sprintf("%.0f %s", f, suffixes[i])
	case math.Abs(f) >= 10:
		return fmt.Sprintf("%.1f %s", f, suffixes[i])
	default:
		return fmt.Sprintf("%.2f %s", f, suffixes[i])
	}
}

// formatRate renders a throughput of n bytes over d.
func formatRate(n int64, d time.Duration) string {
	if d <= 0 {
		return "- /s"
	}
	return formatBytes(int64(float64(n)/d.Seconds())) + "/s"
}

// formatDuration renders d for humans: milliseconds below a second, then
// seconds with two decimals, then minutes and seconds.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}
