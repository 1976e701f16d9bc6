package tiercache

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLen is the longest key accepted, in bytes.
const MaxKeyLen = 512

// ValidateKey checks the key rules: a key is 1 to MaxKeyLen bytes of valid
// UTF-8 with no control characters (C0, DEL, C1) and no Unicode format or
// line/paragraph separator characters that would make logs ambiguous.
// Everything else, including "/", "..", spaces and non-ASCII letters, is
// allowed: keys are opaque, and every tier maps them injectively onto names
// that cannot escape its root. The error wraps ErrInvalidKey and says why.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key is %d bytes, the limit is %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	if why := textProblem(key); why != "" {
		return fmt.Errorf("%w: key %s", ErrInvalidKey, why)
	}
	return nil
}

// textProblem says what makes s unfit for a key or a scope (invalid
// UTF-8, or a control or format character, which could forge lines in
// logs), quoting it; "" if nothing does.
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%q is not valid UTF-8", s)
	}
	for i, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			return fmt.Sprintf("%q has control character %U at byte %d", s, r, i)
		}
	}
	return ""
}

// MaxPaths is the most paths one entry may record (see Entry.Paths),
// MaxPathLen the longest of them and MaxPathsLen all of them together, in
// bytes: they are kept with the entry's metadata, which is read whole.
// LegacyMaxPaths was MaxPaths before it was raised: a remote tier records
// an entry of more paths in a format that releases from before pass over
// (as a newer tiercache's), since they refuse to store it locally.
const (
	MaxPaths       = 1024
	MaxPathLen     = 4096
	MaxPathsLen    = 256 << 10
	LegacyMaxPaths = 64
)

// ValidatePaths checks the paths an entry records (see Entry.Paths): at
// most MaxPaths, each 1 to MaxPathLen bytes without a NUL byte, MaxPathsLen
// bytes in all. A violation returns an error wrapping ErrInvalidArgument.
func ValidatePaths(paths []string) error {
	if len(paths) > MaxPaths {
		return fmt.Errorf("%w: %d paths, the limit is %d", ErrInvalidArgument, len(paths), MaxPaths)
	}
	total := 0
	for _, p := range paths {
		switch {
		case p == "":
			return fmt.Errorf("%w: an empty path", ErrInvalidArgument)
		case len(p) > MaxPathLen:
			return fmt.Errorf("%w: path %.40q... is %d bytes, the limit is %d", ErrInvalidArgument, p, len(p), MaxPathLen)
		case strings.IndexByte(p, 0) >= 0:
			return fmt.Errorf("%w: path %q holds a NUL byte", ErrInvalidArgument, p)
		}
		total += len(p)
	}
	if total > MaxPathsLen {
		return fmt.Errorf("%w: %d paths take %d bytes, the limit is %d", ErrInvalidArgument, len(paths), total, MaxPathsLen)
	}
	return nil
}
