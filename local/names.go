package local

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime"
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
// On Windows two more bytes are escaped that could stand for themselves:
// a '.' ending the key, since Windows strips trailing dots, and the first
// byte of a key whose name would begin with a device name (nul, con, aux,
// prn, com1-9 or lpt1-9, alone or before a '.'), since Windows opens the
// device for such a name whatever follows the dot. Both still decode to
// the same key, so the map stays injective.
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
		case runtime.GOOS == "windows" && (i == 0 && deviceStem(key) || i > 0 && i == len(key)-1 && c == '.'):
			escapeByte(&b, c)
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.' && i > 0:
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte('!')
			b.WriteByte(c - 'A' + 'a')
		default:
			escapeByte(&b, c)
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

// escapeByte writes c as '_' and two lower-case hex digits.
func escapeByte(b *strings.Builder, c byte) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('_')
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&0xf])
}

// deviceStem reports whether key, up to its first '.' after the first
// byte, is a Windows device name as nameOf would write it (lower case:
// upper-case letters are escaped anyway).
func deviceStem(key string) bool {
	stem := key
	if i := strings.IndexByte(key[1:], '.'); i >= 0 {
		stem = key[:i+1]
	}
	switch stem {
	case "con", "prn", "aux", "nul":
		return true
	}
	return len(stem) == 4 && (stem[:3] == "com" || stem[:3] == "lpt") && '1' <= stem[3] && stem[3] <= '9'
}
