package tiercache

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateKey(t *testing.T) {
	good := []string{
		"a", "gomod-0123456789abcdef", "../../etc/passwd", "a/b/c", "..", ".", " spaced key ",
		"ünïcödé-キー", "back\\slash", strings.Repeat("k", MaxKeyLen), "%2e%2e", "C:\\x",
	}
	for _, k := range good {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	bad := []string{
		"", strings.Repeat("k", MaxKeyLen+1), "nul\x00byte", "new\nline", "cr\r", "tab\t", "del\x7f",
		"c1\u0085", "bidi\u202e", "ls\u2028", "bad\xffutf8",
	}
	for _, k := range bad {
		err := ValidateKey(k)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestStatsOf(t *testing.T) {
	if _, err := StatsOf(nil, ErrNotFound); !errors.Is(err, ErrNotFound) {
		t.Fatalf("error not passed through: %v", err)
	}
	s, err := StatsOf(nil, nil)
	if err != nil || s.Entries != 0 || !s.Oldest.IsZero() || !s.OldestAccess.IsZero() {
		t.Fatalf("empty stats = %+v, %v", s, err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	s, _ = StatsOf([]Entry{
		{Key: "a", Size: 1, Created: t0, LastAccess: t0.Add(3 * time.Hour)},
		{Key: "b", Size: 2, Created: t0.Add(time.Hour), LastAccess: t0.Add(2 * time.Hour)},
	}, nil)
	if !s.Oldest.Equal(t0) || !s.Newest.Equal(t0.Add(time.Hour)) || !s.OldestAccess.Equal(t0.Add(2*time.Hour)) || s.Bytes != 3 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestValidatePaths(t *testing.T) {
	many := func(n, size int) []string {
		p := make([]string, n)
		for i := range p {
			p[i] = strings.Repeat("x", size)
		}
		return p
	}
	ok := map[string][]string{
		"none":              nil,
		"most paths":        many(MaxPaths, MaxPathsLen/MaxPaths),
		"longest paths":     many(MaxPathsLen/MaxPathLen, MaxPathLen),
		"legacy most paths": many(LegacyMaxPaths, MaxPathLen),
	}
	for name, p := range ok {
		if err := ValidatePaths(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string][]string{
		"too many":  many(MaxPaths+1, 1),
		"too long":  many(1, MaxPathLen+1),
		"too large": many(MaxPathsLen/MaxPathLen+1, MaxPathLen),
		"empty":     {"a", ""},
		"NUL":       {"a\x00b"},
	}
	for name, p := range bad {
		if err := ValidatePaths(p); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

// TestScopeErrorSaysScope: a bad scope's error calls it a scope, not a
// key, and says why.
func TestScopeErrorSaysScope(t *testing.T) {
	err := ValidateScope("a\nb")
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), `scope "a\nb" has control character U+000A`) || strings.Contains(err.Error(), "key") {
		t.Errorf("ValidateScope: %v", err)
	}
}
