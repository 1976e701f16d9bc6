package local

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxNameLen bounds the file name a key maps to. It stays well under the
// usual 255-byte limit so the suffixes the layout appends (a version's
// "-<unique>", a lock file's ".lock") always fit.
const maxNameLen = 200

// hashSep separates the readable prefix from the SHA-256 in the names of
// long keys. escape never produces it, so a hashed name cannot equal the
// name of a short key.
const hashSep = '~'

// nameOf maps a key onto a file name, injectively and safely:
//
//   - a-z, 0-9 and '-' stand for themselves, and so does '.' except as the
//     first byte (so no name is ".", ".." or hidden);
//   - an upper-case letter becomes '!' and the letter in lower case (as in
//     Go's module cache), so names stay distinct on case-insensitive file
//     systems;
//   - every other byte becomes '_' and two lower-case hex digits.
//
// The result is a single path component of lower-case ASCII that decodes
// back to the key, so distinct keys get distinct names. When it would be
// longer than maxNameLen, the name is a prefix of it, hashSep and the
// SHA-256 of the whole key: still a safe single component, distinct for
// distinct keys short of a SHA-256 collision, and the key stored in each
// entry's metadata is checked anyway.
func nameOf(key string) string {
	var b strings.Builder
	b.Grow(len(key) + 8)
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.' && i > 0:
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte('!')
			b.WriteByte(c - 'A' + 'a')
		default:
			const hexDigits = "0123456789abcdef"
			b.WriteByte('_')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	name := b.String()
	if len(name) <= maxNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(key))
	prefix := maxNameLen - 1 - 2*len(sum)
	return name[:prefix] + string(hashSep) + hex.EncodeToString(sum[:])
}
