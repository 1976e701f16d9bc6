package s3

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/tiertest"
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
	// Keys whose encoding is too long for an S3 name (fallback stems).
	strings.Repeat("/", 512), strings.Repeat("%", 512), strings.Repeat("é", 256),
	strings.Repeat("~", 511) + "a", strings.Repeat("~", 511) + "b",
	strings.Repeat("日", 170) + "~~", strings.Repeat("\ufffe", 170) + "xy",
	mixedKey(512),
}

// mixedKey returns an n-byte key mixing plain characters and escaped
// ones of every length, so its encoding is much longer than the key.
func mixedKey(n int) string {
	const parts = "a/%.~\\ é日😀\ufffe\u3000"
	var b strings.Builder
	for b.Len() < n {
		for _, r := range parts {
			if b.Len()+utf8.RuneLen(r) <= n { // 'a' always fits
				b.WriteRune(r)
			}
		}
	}
	return b.String()
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
	for _, name := range []string{enc, enc + manifestSuffix, enc + "/" + newDataID(0)} {
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
	f.Add(strings.Repeat("/", 512), 300)
	f.Add(mixedKey(512), 400)
	f.Fuzz(func(t *testing.T, key string, cut int) {
		if tiercache.ValidateKey(key) != nil {
			return
		}
		checkEncoding(t, key)
		checkStem(t, key)
		if cut = cut % (len(key) + 1); cut > 0 {
			p := key[:cut]
			if ep, _ := encodePrefix(p); !strings.HasPrefix(encodeKey(key), ep) {
				t.Fatalf("encodePrefix(%q) = %q is not a prefix of enc(%q)", p, ep, key)
			}
			// List(p) lists this prefix of the stems.
			if lp, _ := encodeUpTo(p, maxCut); !strings.HasPrefix(stemFor(key), lp) {
				t.Fatalf("listing prefix %q of %q is not a prefix of stem %q", lp, p, stemFor(key))
			}
		}
		// Changing the last byte changes the stem.
		other := key[:len(key)-1] + string(key[len(key)-1]^1)
		if tiercache.ValidateKey(other) == nil && stemFor(other) == stemFor(key) {
			t.Fatalf("keys %q and %q share stem %q", key, other, stemFor(key))
		}
	})
}

// checkStem asserts the properties of a key's stem and of the object
// names built from it with the longest prefix allowed.
func checkStem(t *testing.T, key string) {
	t.Helper()
	stem := stemFor(key)
	full := encodeKey(key)
	switch {
	case len(full) <= maxStem && stem != full:
		t.Fatalf("key %q fits but has stem %q, not its encoding", key, stem)
	case len(full) > maxStem && !strings.HasSuffix(stem, fallbackMarker+sha(([]byte)(key))):
		t.Fatalf("over-long key %q has stem %q, not the fallback form", key, stem)
	case len(stem) > maxStem:
		t.Fatalf("stem of %q is %d bytes, over %d", key, len(stem), maxStem)
	}
	got, isFull, ok := parseStem(stem)
	switch {
	case !ok:
		t.Fatalf("parseStem(%q) rejects the stem of %q", stem, key)
	case isFull != (stem == full):
		t.Fatalf("parseStem(%q): full = %v", stem, isFull)
	case isFull && got != key:
		t.Fatalf("parseStem(%q) = %q, want %q", stem, got, key)
	case !isFull && (!strings.HasPrefix(key, got) || !strings.HasPrefix(stem, encodeKey(got)+fallbackMarker)):
		t.Fatalf("parseStem(%q) = %q, not the encoded leading part of %q", stem, got, key)
	}
	// Full stems never hold the fallback marker's "~~".
	if isFull && strings.Contains(stem, "~~") {
		t.Fatalf("full stem %q holds \"~~\"", stem)
	}
	prefix := strings.Repeat("p/", maxPrefixLen/2)
	s := &Store{prefix: prefix}
	n, err := s.namesFor(key)
	if err != nil {
		t.Fatalf("namesFor(%q): %v", key, err)
	}
	for _, name := range []string{n.manifest, n.marker, n.data(newDataID(1 << 40))} {
		if len(name) > maxObjectName {
			t.Fatalf("name of %q is %d bytes, over S3's %d", key, len(name), maxObjectName)
		}
		if !utf8.ValidString(name) || strings.Contains(name, "//") || strings.HasPrefix(name, "/") {
			t.Fatalf("name %q of %q is invalid UTF-8 or has an empty segment", name, key)
		}
		for seg := range strings.SplitSeq(strings.TrimPrefix(name, prefix), "/") {
			if tr := strings.TrimSpace(seg); tr == "" || tr == "." || tr == ".." || len(seg) > 255 {
				t.Fatalf("name %q of %q has segment %q (%d bytes)", name, key, seg, len(seg))
			}
		}
	}
	// What listings parse back.
	if got, ok := stemOf(n.manifest, prefix+manifestsDir, manifestSuffix); !ok || got != stem {
		t.Fatalf("stemOf(%q) = %q, %v", n.manifest, got, ok)
	}
	if got, ok := stemOf(n.marker, prefix+accessDir, ""); !ok || got != stem {
		t.Fatalf("stemOf(%q) = %q, %v", n.marker, got, ok)
	}
	if got, id, size, ok := s.dataStemOf(n.data(newDataID(77))); !ok || got != stem || size != 77 || !strings.HasSuffix(id, dataSuffix) {
		t.Fatalf("dataStemOf(data of %q) = %q, %q, %d, %v", key, got, id, size, ok)
	}
}

func TestStems(t *testing.T) {
	var fallbacks int
	seen := map[string]string{}
	var all []string
	for _, key := range append(awkwardKeys, tiertest.WeirdKeys()...) {
		checkStem(t, key)
		stem := stemFor(key)
		if other, dup := seen[stem]; dup && other != key {
			t.Errorf("stem(%q) == stem(%q) == %q", key, other, stem)
		}
		seen[stem] = key
		if stem != encodeKey(key) {
			fallbacks++
		}
		all = append(all, manifestsDir+stem+manifestSuffix, accessDir+stem, dataDir+stem+"/"+newDataID(0))
		// Every prefix of the key (as List gets it, perhaps cut inside a
		// rune) lists a prefix of the stem.
		for i := 1; i <= len(key); i++ {
			if lp, _ := encodeUpTo(key[:i], maxCut); !strings.HasPrefix(stem, lp) {
				t.Fatalf("listing prefix for %q is %q, not a prefix of the stem of %q", key[:i], lp, key)
			}
		}
	}
	if fallbacks < 5 {
		t.Errorf("only %d keys took the fallback form", fallbacks)
	}
	// No object name may be a "directory" of another: MinIO refuses to
	// store a/b when a is an object.
	for _, a := range all {
		for _, b := range all {
			if strings.HasPrefix(b, a+"/") {
				t.Errorf("object %q would be a parent of %q", a, b)
			}
		}
	}
	// The 512-byte keys the conformance suite uses.
	for _, key := range []string{strings.Repeat("/", 512), strings.Repeat("%", 512), mixedKey(512)} {
		if _, full, _ := parseStem(stemFor(key)); full {
			t.Errorf("%q has a full stem", key[:20])
		}
	}
	// Two long keys differing only in their last byte.
	a, b := strings.Repeat("/", 511)+"a", strings.Repeat("/", 511)+"b"
	if sa, sb := stemFor(a), stemFor(b); sa == sb || sa[:len(sa)-hashHexLen] != sb[:len(sb)-hashHexLen] {
		t.Errorf("stems %q and %q: want the same leading part and different hashes", sa, sb)
	}
}

func TestParseStemRejectsForeignNames(t *testing.T) {
	good := stemFor(strings.Repeat("/", 512))
	i := len(good) - hashHexLen
	cutEnc := good[:i-len(fallbackMarker)]
	for _, stem := range []string{
		"", "a~~", "a~~/", good[:len(good)-1], good + "0", good[:i] + strings.ToUpper(good[i:]),
		good[:i] + strings.Repeat("g", hashHexLen),
		cutEnc + "~~" + good[i:],                           // no '/'
		"%2F~~/" + good[i:],                                // leading part far shorter than the cut
		cutEnc + "%2F" + fallbackMarker + good[i:],         // leading part longer than the cut
		cutEnc[:len(cutEnc)-1] + fallbackMarker + good[i:], // cut inside an escape
		strings.Repeat("a", maxStem+1),                     // a full stem too long for a name
	} {
		if key, full, ok := parseStem(stem); ok {
			t.Errorf("parseStem(%q) = %q, %v, want rejection", stem, key, full)
		}
	}
}

// TestMaxUnitLen checks the bound parseStem relies on: no rune encodes to
// more than maxUnitLen bytes.
func TestMaxUnitLen(t *testing.T) {
	longest := 0
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		for _, start := range []bool{false, true} {
			longest = max(longest, len(encodeRune(r, start)))
		}
	}
	if longest != maxUnitLen {
		t.Errorf("the longest rune encoding is %d bytes, maxUnitLen is %d", longest, maxUnitLen)
	}
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
	for _, key := range []string{strings.Repeat("k", tiercache.MaxKeyLen), strings.Repeat("/", tiercache.MaxKeyLen)} {
		if _, err := s.namesFor(key); err != nil {
			t.Fatalf("512-byte key: %v", err)
		}
	}
	for _, bad := range []string{"", "\x00b", "a\x00", "a\nb", strings.Repeat("k", tiercache.MaxKeyLen+1)} {
		if _, err := s.namesFor(bad); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("namesFor(%q): %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestDataID(t *testing.T) {
	for _, size := range []int64{0, 1, 1 << 40, math.MaxInt64} {
		id := newDataID(size)
		if got, ok := parseDataID(id); !ok || got != size {
			t.Fatalf("parseDataID(newDataID(%d) = %q) = %d, %v", size, id, got, ok)
		}
	}
	if a, b := newDataID(5), newDataID(5); a == b {
		t.Errorf("two ids are both %q", a)
	}
	for _, bad := range []string{"", "x.tar.zst",
		"0000000000000000-0000000000000000.tar.zst", // the old form, without a size
		"0000000000000000-000000000000000g-0000000000000000.tar.zst",
		"0000000000000000-0000000000000000-000000000000000G.tar.zst",
		"0000000000000000_0000000000000000-0000000000000000.tar.zst",
		"0000000000000000-0000000000000000_0000000000000000.tar.zst",
		"0000000000000000-0000000000000000-0000000000000000.tar.gz",
		"0000000000000000-0000000000000000-00000000000000000.tar.zst",
		"0000000000000000-0000000000000000-8000000000000000.tar.zst", // over MaxInt64
		"../00000000000000-0000000000000000-0000000000000000.tar.zst"} {
		if size, ok := parseDataID(bad); ok {
			t.Errorf("parseDataID(%q) = %d, true", bad, size)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	longest := strings.Repeat("a/", maxPrefixLen/2)
	for in, want := range map[string]string{"": "", "ci": "ci/", "ci/": "ci/", "a/b": "a/b/", "team x/cache/": "team x/cache/",
		longest: longest, strings.TrimSuffix(longest, "/"): longest} {
		got, err := validatePrefix(in)
		if err != nil || got != want {
			t.Errorf("validatePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/ci", "a//b", "../x", "a/./b", "a/ .. /b", "a\x00", strings.Repeat("s", 256),
		longest + "b"} {
		if _, err := validatePrefix(bad); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("validatePrefix(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// TestStoredKeyNames: a scope's stored keys (scope, NUL, key) escape the
// NUL, decode back, and never share a stem with a key of the default
// scope, however the scope and key are cut.
func TestStoredKeyNames(t *testing.T) {
	seen := map[string]string{}
	for _, k := range []string{"a", "a%00b", "a_00b", "s\x00k", "s\x00k\x00", "refs/heads/main\x00gomod-1",
		strings.Repeat("s", tiercache.MaxScopeLen) + "\x00" + strings.Repeat("k", tiercache.MaxKeyLen)} {
		if tiercache.ValidateStoredKey(k) != nil {
			continue
		}
		stem := stemFor(k)
		if other, ok := seen[stem]; ok {
			t.Fatalf("%q and %q share stem %q", k, other, stem)
		}
		seen[stem] = k
		if strings.ContainsRune(stem, 0) {
			t.Errorf("stem %q of %q holds a NUL", stem, k)
		}
		if got, full, ok := parseStem(stem); !ok || (full && got != k) {
			t.Errorf("parseStem(%q) = %q, %v, %v; want %q", stem, got, full, ok, k)
		}
	}
}
