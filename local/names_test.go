package local

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/tiertest"
)

// decodeName inverts nameOf for names that were not hashed, proving the
// escaping injective.
func decodeName(t *testing.T, name string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '!':
			i++
			b.WriteByte(name[i] - 'a' + 'A')
		case '_':
			v, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q: %v", name, err)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// randomKey draws a valid key biased toward the awkward: path syntax,
// escape characters, case, multi-byte runes and lengths near the limits.
func randomKey(r *rand.Rand) string {
	pieces := []string{"/", ".", "..", "\\", "_", "!", "~", "%2F", "_2f", "a", "A", "z", "Z", "0", "-", " ", "é", "日", "🙂", ":", "*"}
	n := 1 + r.IntN(40)
	if r.IntN(8) == 0 {
		n = 100 + r.IntN(200)
	}
	var b strings.Builder
	for range n {
		if r.IntN(4) == 0 {
			b.WriteByte(byte(0x20 + r.IntN(0x5f)))
		} else {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	k := b.String()
	for len(k) > tiercache.MaxKeyLen {
		k = k[:len(k)-1]
	}
	if tiercache.ValidateKey(k) != nil {
		return "fallback"
	}
	return k
}

func TestNameOfInjectiveAndConfined(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := tiertest.WeirdKeys()
	for range 20000 {
		keys = append(keys, randomKey(r))
	}
	byName := map[string]string{}
	for _, k := range keys {
		name := nameOf(k)
		if prev, ok := byName[name]; ok && prev != k {
			t.Fatalf("keys %q and %q both map to %q", prev, k, name)
		}
		byName[name] = k
		if name == "" || name == "." || name == ".." || strings.HasPrefix(name, ".") {
			t.Fatalf("key %q maps to %q", k, name)
		}
		if len(name) > maxNameLen || len(name)+1+uniqueLen > 255 {
			t.Fatalf("key %q maps to a %d-byte name", k, len(name))
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._!~", c) >= 0) {
				t.Fatalf("key %q maps to %q, which holds %q", k, name, c)
			}
		}
		if runtime.GOOS == "windows" {
			// Nor may the name, or what the layout makes of it, be one
			// Windows strips or takes for a device.
			for _, n := range []string{name, name + ".lock", name + "-0123456789abcdef"} {
				if strings.HasSuffix(n, ".") || deviceStem(n) {
					t.Fatalf("key %q maps to %q, which Windows cannot hold", k, n)
				}
			}
		}
		if strings.IndexByte(name, hashSep) >= 0 {
			if len(name) != maxNameLen {
				t.Fatalf("hashed name %q is %d bytes", name, len(name))
			}
			continue
		}
		if got := decodeName(t, name); got != k {
			t.Fatalf("name %q of key %q decodes to %q", name, k, got)
		}
	}
	// Names are lower case, so a case-insensitive file system keeps them
	// apart too.
	lower := map[string]string{}
	for name, k := range byName {
		l := strings.ToLower(name)
		if prev, ok := lower[l]; ok {
			t.Fatalf("keys %q and %q collide case-insensitively", prev, k)
		}
		lower[l] = k
	}
	for _, k := range []string{"gomod-0123abcd", "node-modules-linux-x64"} {
		if nameOf(k) != k {
			t.Errorf("the common key %q maps to %q, not to itself", k, nameOf(k))
		}
	}
}

// TestNameOfWindows: on Windows, keys that would name a device or end in
// a dot get one more byte escaped; elsewhere they stand for themselves.
func TestNameOfWindows(t *testing.T) {
	for key, onWindows := range map[string]string{
		"nul":       "_6eul",
		"com1.txt":  "_63om1.txt",
		"lpt9.a.b":  "_6cpt9.a.b",
		"a.":        "a_2e",
		"a..":       "a._2e",
		"aux-cache": "aux-cache",
		"com10":     "com10",
		"conx.y":    "conx.y",
	} {
		want := key
		if runtime.GOOS == "windows" {
			want = onWindows
		}
		if got := nameOf(key); got != want {
			t.Errorf("nameOf(%q) = %q, want %q", key, got, want)
		}
	}
}
