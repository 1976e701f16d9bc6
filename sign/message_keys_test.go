package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
)

// decodeMessage parses a Message back into Fields, failing unless the
// bytes are exactly one message: that it succeeds and gives back the
// Fields encoded is what makes the encoding injective.
func decodeMessage(b []byte) (Fields, error) {
	var f Fields
	var err error
	uv := func() uint64 {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			err = fmt.Errorf("bad length")
			return 0
		}
		b = b[k:]
		return n
	}
	str := func() string {
		n := uv()
		if err != nil || n > uint64(len(b)) {
			err = fmt.Errorf("short string")
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	num := func() int64 {
		if len(b) < 8 {
			err = fmt.Errorf("short number")
			return 0
		}
		n := int64(binary.BigEndian.Uint64(b))
		b = b[8:]
		return n
	}
	if d := str(); d != domain {
		return f, fmt.Errorf("domain %q", d)
	}
	f.Scope, f.Key, f.Description = str(), str(), str()
	if n := uv(); n > 0 {
		for range n {
			f.Paths = append(f.Paths, str())
		}
	}
	f.Size, f.Files, f.ArchiveSize = num(), num(), num()
	f.SHA256 = str()
	f.IndexOffset, f.IndexLength = num(), num()
	f.IndexSHA256 = str()
	if err == nil && len(b) != 0 {
		err = fmt.Errorf("%d bytes left over", len(b))
	}
	return f, err
}

// TestMessageInjective: every message decodes back to the Fields it
// encodes, so no two Fields share one; the pairs a concatenation
// without lengths would confuse give different messages.
func TestMessageInjective(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, r.IntN(4))
		for i := range b {
			b[i] = "ab\x00,/"[r.IntN(5)]
		}
		return string(b)
	}
	for range 2000 {
		f := Fields{Scope: word(), Key: word(), Description: word(), SHA256: word(), IndexSHA256: word(),
			Size: r.Int64N(3) - 1, Files: r.Int64N(3), ArchiveSize: r.Int64(), IndexOffset: r.Int64N(2), IndexLength: r.Int64N(2)}
		for range r.IntN(3) {
			f.Paths = append(f.Paths, word())
		}
		got, err := decodeMessage(Message(f))
		if err != nil || !reflect.DeepEqual(got, f) {
			t.Fatalf("Message(%+v) decodes to %+v, %v", f, got, err)
		}
	}
	pairs := [][2]Fields{
		{{Scope: "a", Key: "bc"}, {Scope: "ab", Key: "c"}},
		{{Key: "k", Description: "d"}, {Key: "kd"}},
		{{Paths: []string{"a", "b"}}, {Paths: []string{"ab"}}},
		{{Paths: []string{"a"}}, {Paths: []string{"a", ""}}},
		{{Description: "x", Paths: nil}, {Paths: []string{"x"}}},
		{{SHA256: "ab", IndexSHA256: ""}, {SHA256: "", IndexSHA256: "ab"}},
		{{IndexOffset: 0, IndexLength: 0}, {IndexOffset: 0, IndexLength: 1}},
	}
	for _, p := range pairs {
		if bytes.Equal(Message(p[0]), Message(p[1])) {
			t.Errorf("%+v and %+v give one message", p[0], p[1])
		}
	}
	if !bytes.Contains(Message(Fields{}), []byte(domain)) {
		t.Error("a message lacks the domain")
	}
}

// TestNewTrustRefusesMalformedKeys: a Trust holds only well-formed
// public keys. A key of another length would make Verify panic once a
// signature names it (its Key is whatever the bucket says), and a
// 64-byte one is a private key, which the error must not quote.
func TestNewTrustRefusesMalformedKeys(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]ed25519.PublicKey{
		"short":   pub[:31],
		"empty":   {},
		"private": ed25519.PublicKey(priv),
	} {
		trust, err := NewTrust([]ed25519.PublicKey{pub, k})
		if err == nil {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("%s key: NewTrust accepted it, and Verify of a signature naming it panics: %v", name, p)
					}
				}()
				err := trust.Verify(fields(), &tiercache.Signature{Key: k, Sig: make([]byte, ed25519.SignatureSize)})
				t.Errorf("%s key: NewTrust accepted it (Verify: %v)", name, err)
			}()
			continue
		}
		for _, secret := range []string{hex.EncodeToString(priv), base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(priv)} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s key: the error quotes the key: %v", name, err)
			}
		}
	}
}

// TestParsePublicKeysSeparators: keys separated by any white space or
// commas, as the doc says, including what an editor or a web page
// leaves (a form feed, a no-break space); a duplicate is harmless.
func TestParsePublicKeysSeparators(t *testing.T) {
	_, a := keyPair(t)
	_, b := keyPair(t)
	for _, sep := range []string{",", "\n", "\r\n", " , ", "\t", "\v", "\f", "\u00a0", "\u2003"} {
		keys, err := ParsePublicKeys(a + sep + b + sep)
		if err != nil || len(keys) != 2 {
			t.Errorf("two keys separated by %q: %d keys, %v", sep, len(keys), err)
		}
	}
	keys, err := ParsePublicKeys(a + "\n" + a)
	if err != nil || len(keys) != 2 {
		t.Errorf("a duplicate key: %v, %v", keys, err)
	}
}
