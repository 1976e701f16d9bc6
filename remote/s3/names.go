package s3

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tiercache/tiercache"
)

// Object layout under the configured prefix P:
//
//	P manifests/<enc key>.json       the commit point: Meta + data object id
//	P data/<enc key>/<id>.tar.zst    immutable archive, one per Put
//	P access/<enc key>               zero-byte marker; LastModified = last access
//
// A Put uploads a new, uniquely named data object and then overwrites the
// manifest, so readers (manifest first, then the object it names) see a
// complete old or new version. Keeping the three kinds under separate
// top-level prefixes lets one LIST each serve List and Prune.
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
// the encoding injective (drop the breaks, unescape) and means no object
// name is ever a "directory" prefix of another: MinIO refuses to store
// a/b when a is an object.
//
// Every choice depends only on the bytes before it, so the encoding is
// prefix-preserving: enc(p) is a prefix of enc(k) whenever p is a prefix of
// k. List(prefix) is therefore one ListObjectsV2 with Prefix = enc(prefix).
//
// segMax leaves room for the "~" and the ".json" suffix within 255 bytes.
const segMax = 199

// maxObjectName is the longest object name S3 accepts, in bytes.
const maxObjectName = 1024

// encodeKey returns enc(key) for a valid key.
func encodeKey(key string) string {
	enc, _ := encodePrefix(key)
	return enc
}

// encodePrefix encodes s up to its first invalid UTF-8 byte and reports
// whether it encoded all of s.
func encodePrefix(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s) + 8)
	cur := 0 // bytes in the current segment
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return b.String(), false
			}
		}
		unit := encodeRune(r, cur == 0)
		if cur+len(unit) > segMax {
			b.WriteString("~/")
			cur = 0
			unit = encodeRune(r, true)
		}
		b.WriteString(unit)
		cur += len(unit)
	}
	return b.String(), true
}

func encodeRune(r rune, segStart bool) string {
	switch {
	case r == '%', r == '/', r == '\\', r == '~', r == 0xFFFE, r == 0xFFFF,
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
	if tiercache.ValidateKey(key) != nil || encodeKey(key) != enc {
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

// names holds the object names of one key.
type names struct {
	key      string
	enc      string
	manifest string
	dataDir  string // ends in "/"
	marker   string
}

// data returns the name of the data object with the given id.
func (n names) data(id string) string { return n.dataDir + id }

// namesFor validates key and returns its object names, or an error
// wrapping tiercache.ErrInvalidKey when the key breaks the key rules or is
// too long for S3 once encoded.
func (s *Store) namesFor(key string) (names, error) {
	if err := tiercache.ValidateKey(key); err != nil {
		return names{}, err
	}
	enc := encodeKey(key)
	n := names{
		key:      key,
		enc:      enc,
		manifest: s.prefix + manifestsDir + enc + manifestSuffix,
		dataDir:  s.prefix + dataDir + enc + "/",
		marker:   s.prefix + accessDir + enc,
	}
	if l := len(n.dataDir) + dataIDLen; l > maxObjectName { // the longest of the names
		return names{}, fmt.Errorf("%w: key %q is %d bytes once encoded as an S3 object name, the limit is %d",
			tiercache.ErrInvalidKey, key, l, maxObjectName)
	}
	return n, nil
}

// A data object id is "<16 hex digits of Unix nanoseconds>-<16 random hex
// digits>.tar.zst": unique without coordination, and sorting by name
// roughly sorts by upload start.
const dataIDLen = 16 + 1 + 16 + len(dataSuffix)

func newDataID() string {
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%016x-%016x%s", uint64(time.Now().UnixNano()), binary.BigEndian.Uint64(r[:]), dataSuffix)
}

// validDataID reports whether id has the form newDataID produces; a
// manifest naming anything else is corrupt, and a data object named
// otherwise is not ours.
func validDataID(id string) bool {
	if len(id) != dataIDLen || id[16] != '-' || !strings.HasSuffix(id, dataSuffix) {
		return false
	}
	for i, c := range []byte(id[:33]) {
		if i == 16 {
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
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
	if !utf8.ValidString(p) || len(p) > 512 || strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: S3 prefix %q must be relative valid UTF-8 of at most 512 bytes", tiercache.ErrInvalidArgument, p)
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
