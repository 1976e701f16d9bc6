package tiercache

import (
	"errors"
	"strings"
	"testing"
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
	if err != nil || s.Entries != 0 || !s.Oldest.IsZero() {
		t.Fatalf("empty stats = %+v, %v", s, err)
	}
}
