package s3

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tiercache/tiercache"
)

// The object layout (see the package doc). Keeping the three kinds under
// separate top-level prefixes lets one LIST each serve List and Prune.
const (
	manifestsDir   = "manifests/"
	dataDir        = "data/"
	accessDir      = "access/"
	manifestSuffix = ".json"
	dataSuffix     = ".tar.zst"
)

// Key encoding.
//
// enc(key) keeps the key's UTF-8 as is, except that it percent-escapes
// (%XX per byte, uppercase hex):
//   - '%' (the escape character), '/', '\' and '~' (used for breaks below);
//   - U+FFFE and U+FFFF, which XML 1.0 cannot carry, so LIST responses
//     would mangle them;
//   - a '.' or a white-space rune at the start of a path segment, so no
//     segment is ever "." or ".." (MinIO rejects those even padded with
//     spaces).
//
// With '/' escaped, an encoded key would be one path segment, but MinIO
// stores objects as files and limits a segment to 255 bytes, while keys may
// be 512 bytes. So a segment is closed with "~/" before it would exceed
// segMax bytes. A raw '~' only ever appears in such a break, which makes
// the encoding injective (drop the breaks, unescape), and a raw '/' only
// ever follows a '~', so no object name is ever a "directory" prefix of
// another (MinIO refuses to store a/b when a is an object): every name
// ends in something other than '~'.
//
// Every choice depends only on the bytes before it, so the encoding is
// prefix-preserving: enc(p) is a prefix of enc(k) whenever p is a prefix of
// k. List(prefix) is therefore one ListObjectsV2 with Prefix = enc(prefix)
// (or its leading part, for long keys: see Stems).
//
// segMax leaves room for the "~" and the ".json" suffix within 255 bytes.
const segMax = 199

// maxObjectName is the longest object name S3 accepts, in bytes.
const maxObjectName = 1024

// maxPrefixLen is the longest Config.Prefix accepted (with its trailing
// "/"), so that every key has room for its names whatever the prefix.
const maxPrefixLen = 256

// Stems.
//
// A key's stem is enc(key) when that fits in maxStem bytes (the full
// form): every key of up to 230 bytes, and 512-byte keys with few escaped
// characters. A 512-byte key of escaped characters ("/" x 512 encodes to
// over 1536 bytes) does not fit in an S3 object name, so its stem takes
// the fallback form
//
//	enc(c) + "~~/" + hex(SHA-256(key))
//
// where c is the longest leading part of the key whose encoding fits in
// maxCut bytes (cut between runes). maxStem is a constant, not derived
// from the configured prefix, so a key's stem never depends on the prefix.
//
// Injectivity: a full stem never holds "~~" (its raw '~'s are all followed
// by '/'), and every fallback stem does, so the two forms never collide.
// Full stems are injective because enc is. A fallback stem ends with the
// SHA-256 of the whole key, so two fallback stems are equal only for keys
// with equal SHA-256: the same key, or a SHA-256 collision. As a defence against the latter (and against manifests
// planted under a fallback name), the manifest records the full key and
// readers compare it with the key asked for (see parseManifest).
//
// The fallback keeps the properties of names: "~~/" ends the last segment
// of enc(c) (at most segMax+2 bytes) and starts a 64-byte hex segment; the
// only raw '/' added follows a '~'. It also keeps prefix lookups possible:
// c depends only on the key's leading bytes (enc is prefix-preserving and
// its length grows with the input), so every key starting with a prefix p
// has a stem starting with encodeUpTo(p, maxCut) (see List).
const (
	// maxStem: the longest name is P data/<stem>/<id>.
	maxStem        = maxObjectName - maxPrefixLen - len(dataDir) - 1 - dataIDLen
	fallbackMarker = "~~/"
	hashHexLen     = 2 * sha256.Size
	maxCut         = maxStem - len(fallbackMarker) - hashHexLen
	// maxUnitLen is the longest encoding of one rune: an escaped 3-byte
	// rune (U+FFFE, or a white space such as U+3000 at a segment's start);
	// 4-byte runes are never escaped. A rune may also need a 2-byte break.
	maxUnitLen = 9
)

// encodeKey returns enc(key) for a valid key, whatever its length.
func encodeKey(key string) string {
	enc, _ := encodeUpTo(key, math.MaxInt)
	return enc
}

// encodePrefix encodes s up to its first invalid UTF-8 byte and reports
// whether it encoded all of s.
func encodePrefix(s string) (string, bool) {
	return encodeUpTo(s, math.MaxInt)
}

// encodeUpTo returns the encoding of the longest leading part of s that
// ends between runes, has no invalid UTF-8 and encodes to at most budget
// bytes, and reports whether that part is all of s.
func encodeUpTo(s string, budget int) (enc string, complete bool) {
	var b strings.Builder
	b.Grow(min(len(s)+8, budget))
	cur := 0 // bytes in the current segment
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return b.String(), false
			}
		}
		unit := encodeRune(r, cur == 0)
		brk := ""
		if cur+len(unit) > segMax {
			brk = "~/"
			unit = encodeRune(r, true)
		}
		if b.Len()+len(brk)+len(unit) > budget {
			return b.String(), false
		}
		if brk != "" {
			b.WriteString(brk)
			cur = 0
		}
		b.WriteString(unit)
		cur += len(unit)
	}
	return b.String(), true
}

func encodeRune(r rune, segStart bool) string {
	switch {
	case r == 0, r == '%', r == '/', r == '\\', r == '~', r == 0xFFFE, r == 0xFFFF,
		segStart && (r == '.' || unicode.IsSpace(r)):
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		var out strings.Builder
		for _, c := range buf[:n] {
			fmt.Fprintf(&out, "%%%02X", c)
		}
		return out.String()
	default:
		return string(r)
	}
}

// stemFor returns the stem of a valid key: enc(key), or the fallback form
// when that is longer than maxStem.
func stemFor(key string) string {
	if enc, all := encodeUpTo(key, maxStem); all {
		return enc
	}
	cut, _ := encodeUpTo(key, maxCut)
	sum := sha256.Sum256([]byte(key))
	return cut + fallbackMarker + hex.EncodeToString(sum[:])
}

// parseStem checks that stem is exactly what stemFor produces for some
// valid key, so that objects tiercache did not write are ignored rather
// than misread. For a full stem it returns the key; for a fallback stem
// it returns the key's leading part c and full = false.
func parseStem(stem string) (key string, full, ok bool) {
	i := len(stem) - hashHexLen - len(fallbackMarker)
	if !strings.Contains(stem, "~~") {
		if len(stem) > maxStem {
			return "", false, false
		}
		key, ok = decodeKey(stem)
		return key, true, ok
	}
	if i < 0 || stem[i:i+len(fallbackMarker)] != fallbackMarker || !isLowerHex(stem[i+len(fallbackMarker):]) {
		return "", false, false
	}
	enc := stem[:i]
	// enc(c) is the longest encoding within maxCut, so the key's next
	// rune (there is one) did not fit: enc(c) is longer than
	// maxCut - maxUnitLen - len("~/").
	if len(enc) > maxCut || len(enc) <= maxCut-maxUnitLen-2 {
		return "", false, false
	}
	c, ok := decodeKey(enc)
	return c, false, ok
}

// decodeKey inverts encodeKey. It accepts only canonical encodings of
// valid keys, so objects that tiercache did not write are ignored rather
// than misread.
func decodeKey(enc string) (string, bool) {
	s := strings.ReplaceAll(enc, "~/", "")
	if strings.ContainsAny(s, "/\\~") {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	key := b.String()
	if tiercache.ValidateStoredKey(key) != nil || encodeKey(key) != enc {
		return "", false
	}
	return key, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// names holds the object names of one key.
type names struct {
	// key is the key, or "" when only a fallback stem is known (Prune
	// and List read such names from listings); then the manifest tells
	// the key.
	key      string
	label    string // the key, or the known leading part of it, for errors
	stem     string
	manifest string
	dataDir  string // ends in "/"
	marker   string
}

// data returns the name of the data object with the given id.
func (n names) data(id string) string { return n.dataDir + id }

// namesFor validates key and returns its object names, or an error
// wrapping tiercache.ErrInvalidKey when the key breaks the key rules.
// Every valid key has names that fit S3's limits.
func (s *Store) namesFor(key string) (names, error) {
	if err := tiercache.ValidateStoredKey(key); err != nil {
		return names{}, err
	}
	n := s.namesOf(stemFor(key))
	n.key, n.label = key, key
	return n, nil
}

// namesForStem returns the object names of a stem read from a listing,
// or false if tiercache would never have written that stem.
func (s *Store) namesForStem(stem string) (names, bool) {
	key, full, ok := parseStem(stem)
	if !ok {
		return names{}, false
	}
	n := s.namesOf(stem)
	if full {
		n.key, n.label = key, key
	} else {
		n.label = key + "…"
	}
	return n, true
}

func (s *Store) namesOf(stem string) names {
	return names{
		stem:     stem,
		manifest: s.prefix + manifestsDir + stem + manifestSuffix,
		dataDir:  s.prefix + dataDir + stem + "/",
		marker:   s.prefix + accessDir + stem,
	}
}

// A data object id is "<T>-<R>-<S>.tar.zst" where T is the upload's start
// in Unix nanoseconds, R is random and S is the tree size of the entry
// (remote.Meta.Size), each 16 lowercase hex digits. It is unique without
// coordination, sorting by name roughly sorts by upload start, and Prune
// reads the entry's tree size from a listing instead of a GET per entry.
const dataIDLen = 3*16 + 2 + len(dataSuffix)

func newDataID(treeSize int64) string {
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%016x-%016x-%016x%s", uint64(time.Now().UnixNano()), binary.BigEndian.Uint64(r[:]), uint64(treeSize), dataSuffix)
}

// parseDataID returns the tree size recorded in id, or false if id does
// not have exactly the form newDataID produces: a manifest naming
// anything else is corrupt, and a data object named otherwise is not ours.
func parseDataID(id string) (treeSize int64, ok bool) {
	if len(id) != dataIDLen || id[16] != '-' || id[33] != '-' || !strings.HasSuffix(id, dataSuffix) {
		return 0, false
	}
	if !isLowerHex(id[:16]) || !isLowerHex(id[17:33]) || !isLowerHex(id[34:50]) {
		return 0, false
	}
	size, err := strconv.ParseInt(id[34:50], 16, 64) // fails above MaxInt64
	if err != nil {
		return 0, false
	}
	return size, true
}

// validatePrefix checks the configured object-name prefix and returns it
// ending in "/" (or empty). MinIO rejects names with empty, "." or ".."
// segments and segments over 255 bytes.
func validatePrefix(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if !utf8.ValidString(p) || strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: S3 prefix %q must be relative valid UTF-8", tiercache.ErrInvalidArgument, p)
	}
	if len(p) > maxPrefixLen {
		return "", fmt.Errorf("%w: S3 prefix %q is %d bytes with its trailing \"/\"; at most %d leaves room for the names of every key within S3's %d-byte limit",
			tiercache.ErrInvalidArgument, p, len(p), maxPrefixLen, maxObjectName)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		t := strings.TrimSpace(seg)
		if t == "" || t == "." || t == ".." || len(seg) > 255 {
			return "", fmt.Errorf("%w: S3 prefix %q has an empty, \".\", \"..\" or over-long segment", tiercache.ErrInvalidArgument, p)
		}
		for _, r := range seg {
			if unicode.IsControl(r) {
				return "", fmt.Errorf("%w: S3 prefix %q has a control character", tiercache.ErrInvalidArgument, p)
			}
		}
	}
	return p, nil
}
