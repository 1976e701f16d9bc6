package s3

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tiercache/tiercache"
)

// awkwardKeys are keys that break naive mappings onto object names.
var awkwardKeys = []string{
	"a", "a/b", "a//b", "/abs", "a/", "a%2Fb", "a%b", "%", "%%", "%25",
	".", "..", "../x", "x/../y", "./x", "a/./b", " ..", ". ", "  .", "\u00a0..",
	`a\b`, `..\x`, "a~b", "~", "~/", "a~/b", "ключ/日本語", "emoji😀/x",
	"\ufffe", "\uffff", "\ufffd", "a b", "a+b", "a?b#c", "a&b=c", "<x>", `"q"`,
	strings.Repeat("a", 199), strings.Repeat("a", 200), strings.Repeat("a", 201),
	strings.Repeat("a", 198) + ".json", strings.Repeat("a", 199) + "~",
	strings.Repeat("a", 199) + ".", strings.Repeat("a", 199) + "..",
	strings.Repeat("é", 100), strings.Repeat("日", 70), strings.Repeat("😀", 60),
	strings.Repeat("/", 100), strings.Repeat("x", 512),
}

// checkEncoding asserts the properties every encoded key must have.
func checkEncoding(t *testing.T, key string) {
	t.Helper()
	enc := encodeKey(key)
	if !utf8.ValidString(enc) {
		t.Errorf("enc(%q) = %q is not valid UTF-8", key, enc)
	}
	if strings.HasPrefix(enc, "/") || strings.Contains(enc, "//") {
		t.Errorf("enc(%q) = %q has a leading or double slash", key, enc)
	}
	for _, name := range []string{enc, enc + manifestSuffix, enc + "/" + newDataID()} {
		for seg := range strings.SplitSeq(name, "/") {
			trimmed := strings.TrimSpace(seg)
			if trimmed == "" || trimmed == "." || trimmed == ".." {
				t.Errorf("enc(%q) = %q has segment %q", key, enc, seg)
			}
			if len(seg) > 255 {
				t.Errorf("enc(%q) has a %d-byte segment", key, len(seg))
			}
		}
	}
	if strings.ContainsAny(strings.ReplaceAll(enc, "~/", ""), "~/\\") {
		t.Errorf("enc(%q) = %q has a raw '~', '/' or '\\' outside a break", key, enc)
	}
	if strings.ContainsRune(enc, 0xFFFE) || strings.ContainsRune(enc, 0xFFFF) {
		t.Errorf("enc(%q) = %q has a character XML cannot carry", key, enc)
	}
	got, ok := decodeKey(enc)
	if !ok || got != key {
		t.Errorf("decode(enc(%q)) = %q, %v", key, got, ok)
	}
}

func TestKeyEncodingProperties(t *testing.T) {
	seen := map[string]string{}
	for _, key := range awkwardKeys {
		checkEncoding(t, key)
		enc := encodeKey(key)
		if other, dup := seen[enc]; dup {
			t.Errorf("enc(%q) == enc(%q) == %q", key, other, enc)
		}
		seen[enc] = key
		// Prefix preservation, for every byte prefix that is valid UTF-8.
		for i := 1; i <= len(key); i++ {
			p := key[:i]
			if !utf8.ValidString(p) {
				continue
			}
			if ep := encodeKey(p); !strings.HasPrefix(enc, ep) {
				t.Errorf("enc(%q) = %q is not a prefix of enc(%q) = %q", p, ep, key, enc)
			}
		}
	}
	// No object name may be a "directory" of another: MinIO refuses to
	// store a/b when a is an object.
	var all []string
	for _, key := range awkwardKeys {
		enc := encodeKey(key)
		all = append(all, manifestsDir+enc+manifestSuffix, accessDir+enc, dataDir+enc+"/0000000000000000-0000000000000000.tar.zst")
	}
	for _, a := range all {
		for _, b := range all {
			if a != b && strings.HasPrefix(b, a+"/") {
				t.Errorf("object %q would be a parent of %q", a, b)
			}
		}
	}
}

func TestKeyEncodingRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune{'a', 'b', '/', '.', '%', '~', '\\', ' ', 'é', '日', '😀', 0xFFFE, '2', 'F'}
	seen := map[string]string{}
	for range 3000 {
		var b strings.Builder
		n := 1 + rng.IntN(300)
		for b.Len() < n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		key := b.String()
		if len(key) > tiercache.MaxKeyLen {
			continue
		}
		checkEncoding(t, key)
		enc := encodeKey(key)
		if other, dup := seen[enc]; dup && other != key {
			t.Fatalf("enc(%q) == enc(%q)", key, other)
		}
		seen[enc] = key
		cut := rng.IntN(len(key)) + 1
		if p := key[:cut]; utf8.ValidString(p) && !strings.HasPrefix(enc, encodeKey(p)) {
			t.Fatalf("enc(%q) is not a prefix of enc(%q)", p, key)
		}
	}
}

func FuzzKeyEncoding(f *testing.F) {
	for _, k := range awkwardKeys {
		f.Add(k, 1)
	}
	f.Fuzz(func(t *testing.T, key string, cut int) {
		if tiercache.ValidateKey(key) != nil {
			return
		}
		checkEncoding(t, key)
		if cut = cut % (len(key) + 1); cut > 0 {
			p := key[:cut]
			if ep, _ := encodePrefix(p); !strings.HasPrefix(encodeKey(key), ep) {
				t.Fatalf("encodePrefix(%q) = %q is not a prefix of enc(%q)", p, ep, key)
			}
		}
	})
}

func TestDecodeRejectsForeignNames(t *testing.T) {
	for _, enc := range []string{
		"", "a/b", "a~b", "%2f", "%2", "%zz", "a%41", // %41 is 'A', which is never escaped
		"a~/", "a\\b", "%00", "%FF", ".", "%2E%2E/x",
	} {
		if key, ok := decodeKey(enc); ok {
			t.Errorf("decodeKey(%q) = %q, want rejection", enc, key)
		}
	}
}

func TestNamesForLongKeys(t *testing.T) {
	s := &Store{prefix: "ci/"}
	if _, err := s.namesFor(strings.Repeat("k", tiercache.MaxKeyLen)); err != nil {
		t.Fatalf("512-byte plain key: %v", err)
	}
	// Every byte escaped: 1536 bytes, too long for an S3 object name.
	_, err := s.namesFor(strings.Repeat("/", tiercache.MaxKeyLen))
	if !errors.Is(err, tiercache.ErrInvalidKey) {
		t.Fatalf("over-long encoded key: %v, want ErrInvalidKey", err)
	}
	for _, bad := range []string{"", "a\x00b", "a\nb", strings.Repeat("k", tiercache.MaxKeyLen+1)} {
		if _, err := s.namesFor(bad); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("namesFor(%q): %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestValidDataID(t *testing.T) {
	for range 100 {
		if id := newDataID(); !validDataID(id) {
			t.Fatalf("newDataID() = %q is not valid", id)
		}
	}
	for _, bad := range []string{"", "x.tar.zst", "0000000000000000-000000000000000g.tar.zst",
		"0000000000000000_0000000000000000.tar.zst", "0000000000000000-0000000000000000.tar.gz",
		"../00000000000000-0000000000000000.tar.zst"} {
		if validDataID(bad) {
			t.Errorf("validDataID(%q) = true", bad)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "ci": "ci/", "ci/": "ci/", "a/b": "a/b/", "team x/cache/": "team x/cache/"} {
		got, err := validatePrefix(in)
		if err != nil || got != want {
			t.Errorf("validatePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/ci", "a//b", "../x", "a/./b", "a/ .. /b", "a\x00", strings.Repeat("s", 256)} {
		if _, err := validatePrefix(bad); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("validatePrefix(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
}
