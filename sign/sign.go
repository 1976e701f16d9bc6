// Package sign signs cache entries with Ed25519 and checks them against
// trusted public keys, so that a job that can write the bucket but holds
// no signing key cannot make a trusted job restore its tree (see the
// README's "Cache poisoning").
//
// A signature covers every field of an entry's metadata that says what
// the entry is: its scope and key, description, paths, tree size and file
// count, the archive's size and SHA-256, and where its index lies with the
// index's SHA-256 (see Fields). A reader checks the signature before it
// trusts any byte of the archive; the SHA-256 it verifies while reading
// then covers every byte. Times are not covered: they only order entries.
//
// Keys are text, one line each, safe to keep in CI secrets and variables:
//
//	tiercache-ed25519-private:<base64 of the 32-byte seed>
//	tiercache-ed25519-public:<base64 of the 32-byte public key>
package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/tiercache/tiercache"
)

// The text forms of keys.
const (
	privatePrefix = "tiercache-ed25519-private:"
	publicPrefix  = "tiercache-ed25519-public:"
)

// Errors a check fails with: each wraps ErrUntrusted.
var (
	// ErrUntrusted is wrapped by every reason an entry is not trusted.
	ErrUntrusted = errors.New("untrusted entry")
	// ErrUnsigned: the entry has no signature.
	ErrUnsigned = fmt.Errorf("%w: not signed", ErrUntrusted)
	// ErrUnknownSigner: signed by a key that is not trusted.
	ErrUnknownSigner = fmt.Errorf("%w: signed by a key that is not trusted", ErrUntrusted)
	// ErrBadSignature: the signature does not match the entry's fields
	// (they were edited after signing, or the signature was).
	ErrBadSignature = fmt.Errorf("%w: bad signature", ErrUntrusted)
)

// GenerateKey returns a new key pair in text form.
func GenerateKey() (private, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return privatePrefix + base64.StdEncoding.EncodeToString(priv.Seed()), FormatPublicKey(pub), nil
}

// FormatPublicKey returns the text form of pub.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return publicPrefix + base64.StdEncoding.EncodeToString(pub)
}

// Fingerprint is a short name of pub for messages: the first 16 hex
// digits of its SHA-256.
func Fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// ParsePrivateKey parses a private key's text form (surrounding white
// space ignored). The error never quotes the text: it is a secret.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, privatePrefix)
	if !ok {
		if strings.HasPrefix(s, publicPrefix) {
			return nil, errors.New("this is a public key; signing needs the private key keygen wrote")
		}
		return nil, fmt.Errorf("not a tiercache private key (one starts with %q)", privatePrefix)
	}
	seed, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("private key: not %d bytes of base64", ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKeys parses one or more public keys' text forms, separated
// by commas or white space (several keys at once let a new key roll out
// before the old one is retired).
func ParsePublicKeys(s string) ([]ed25519.PublicKey, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	if len(fields) == 0 {
		return nil, errors.New("no public key given")
	}
	keys := make([]ed25519.PublicKey, 0, len(fields))
	for i, f := range fields {
		rest, ok := strings.CutPrefix(f, publicPrefix)
		if !ok {
			if strings.HasPrefix(f, privatePrefix) {
				// Never echo it: a private key in the wrong place is
				// still a secret.
				return nil, fmt.Errorf("key %d is a private key; trusted keys are the public ones (.pub)", i+1)
			}
			// Not echoed either: it may be a secret pasted raw.
			return nil, fmt.Errorf("key %d is not a tiercache public key (one starts with %q)", i+1, publicPrefix)
		}
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %d: not %d bytes of base64 after %q", i+1, ed25519.PublicKeySize, publicPrefix)
		}
		keys = append(keys, ed25519.PublicKey(b))
	}
	return keys, nil
}

// Fields are what a signature covers.
type Fields struct {
	Scope       string
	Key         string
	Description string
	Paths       []string
	Size        int64
	Files       int64
	ArchiveSize int64
	// SHA256 is the archive's, lowercase hex.
	SHA256 string
	// IndexOffset, IndexLength and IndexSHA256 locate the archive's index
	// frame and give its digest; zero without an index.
	IndexOffset int64
	IndexLength int64
	IndexSHA256 string
}

// domain starts every signed message, so a signature made here means
// nothing elsewhere, and the format can change by changing it.
const domain = "tiercache signed entry v1"

// Message is the byte string a signature of f signs: the domain, then
// each field in a fixed order, strings and the path list length-prefixed
// and integers as 8 bytes big-endian, so that no two Fields give the same
// message.
func Message(f Fields) []byte {
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(n int64) { b = binary.BigEndian.AppendUint64(b, uint64(n)) }
	str(domain)
	str(f.Scope)
	str(f.Key)
	str(f.Description)
	b = binary.AppendUvarint(b, uint64(len(f.Paths)))
	for _, p := range f.Paths {
		str(p)
	}
	num(f.Size)
	num(f.Files)
	num(f.ArchiveSize)
	str(f.SHA256)
	num(f.IndexOffset)
	num(f.IndexLength)
	str(f.IndexSHA256)
	return b
}

// Sign signs f with priv.
func Sign(priv ed25519.PrivateKey, f Fields) *tiercache.Signature {
	return &tiercache.Signature{
		Key: []byte(priv.Public().(ed25519.PublicKey)),
		Sig: ed25519.Sign(priv, Message(f)),
	}
}

// Trust is a set of trusted public keys.
type Trust struct{ keys []ed25519.PublicKey }

// NewTrust returns a Trust of keys, which must not be empty and must
// each be a public key (ed25519.PublicKeySize bytes): Verify looks up
// the key a signature names, which whoever wrote the entry chose, and a
// key of another length would make ed25519.Verify panic. The keys are
// copied.
func NewTrust(keys []ed25519.PublicKey) (*Trust, error) {
	if len(keys) == 0 {
		return nil, errors.New("no trusted key")
	}
	own := make([]ed25519.PublicKey, len(keys))
	for i, k := range keys {
		switch len(k) {
		case ed25519.PublicKeySize:
			own[i] = bytes.Clone(k)
		case ed25519.PrivateKeySize:
			// Never echoed: it is likely a secret.
			return nil, fmt.Errorf("trusted key %d is %d bytes, a private key's size; trusted keys are the public ones", i+1, len(k))
		default:
			return nil, fmt.Errorf("trusted key %d is %d bytes, not a public key's %d", i+1, len(k), ed25519.PublicKeySize)
		}
	}
	return &Trust{keys: own}, nil
}

// Verify checks that sig signs f and was made by a trusted key. The error
// wraps ErrUnsigned, ErrUnknownSigner or ErrBadSignature (each wraps
// ErrUntrusted) and names the signer's fingerprint.
func (t *Trust) Verify(f Fields, sig *tiercache.Signature) error {
	if sig == nil {
		return ErrUnsigned
	}
	var key ed25519.PublicKey
	for _, k := range t.keys {
		if k.Equal(ed25519.PublicKey(sig.Key)) {
			key = k
			break
		}
	}
	if key == nil {
		return fmt.Errorf("%w (%s)", ErrUnknownSigner, Fingerprint(sig.Key))
	}
	if len(sig.Sig) != ed25519.SignatureSize || !ed25519.Verify(key, Message(f), sig.Sig) {
		return fmt.Errorf("%w by key %s: the entry changed after it was signed", ErrBadSignature, Fingerprint(sig.Key))
	}
	return nil
}
