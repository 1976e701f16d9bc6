package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var errAge = errors.New("want a duration such as 7d, 36h, 90m or 1d12h")

const day = 24 * time.Hour

// parseAge parses a duration as time.ParseDuration does, plus a leading
// number of days with the suffix d (7d, 1.5d, 1d12h), which Go's
// durations lack and cache ages are usually counted in. It refuses
// negative durations.
func parseAge(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	var d time.Duration
	if i > 0 && i < len(t) && t[i] == 'd' {
		n, err := strconv.ParseFloat(t[:i], 64)
		if err != nil {
			return 0, errAge
		}
		if n*float64(day) > math.MaxInt64 {
			return 0, fmt.Errorf("%s is too long", s)
		}
		d = time.Duration(n * float64(day))
		if t = t[i+1:]; t == "" {
			return d, nil
		}
	}
	rest, err := time.ParseDuration(t)
	if err != nil {
		return 0, errAge
	}
	if rest < 0 {
		return 0, fmt.Errorf("%s is negative", s)
	}
	if d > math.MaxInt64-rest {
		return 0, fmt.Errorf("%s is too long", s)
	}
	return d + rest, nil
}

// formatAge renders d as parseAge reads it, whole days as such.
func formatAge(d time.Duration) string {
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	if d > day {
		return fmt.Sprintf("%dd%s", d/day, d%day)
	}
	return d.String()
}

// ageValue is a flag holding a duration in parseAge's syntax.
type ageValue struct{ d *time.Duration }

func (v ageValue) String() string {
	if v.d == nil || *v.d == 0 {
		return "0"
	}
	return formatAge(*v.d)
}

func (v ageValue) Set(s string) error {
	d, err := parseAge(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (ageValue) Type() string { return "duration" }
