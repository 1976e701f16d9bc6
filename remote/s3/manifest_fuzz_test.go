package s3

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// Ways FuzzParseManifest picks the names a manifest is read under.
const (
	// namesByKey: the names of the fuzzed key, as Open and Stat read them.
	namesByKey = iota
	// namesByStem: the names of the fuzzed key's stem with the key
	// unknown, as List and Prune read them from a listing.
	namesByStem
	// namesOwnKey: the names of the key the manifest itself records, so
	// that mutations of that key still reach the checks after it.
	namesOwnKey
	numNameModes
)

// fuzzManifest returns the JSON of a manifest that parseManifest accepts
// for key.
func fuzzManifest(tb testing.TB, key string, size, archiveSize, files int64, desc string) []byte {
	tb.Helper()
	created := time.Date(2025, 3, 1, 12, 30, 0, 123456789, time.UTC)
	b, err := json.Marshal(manifest{
		Version: manifestVersion,
		Meta: remote.Meta{
			Key:         key,
			Description: desc,
			Size:        size,
			Files:       files,
			ArchiveSize: archiveSize,
			SHA256:      strings.Repeat("0123456789abcdef", 4),
			Created:     created,
			LastAccess:  created.Add(time.Hour),
		},
		Data: newDataID(size),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzParseManifest feeds arbitrary bytes to parseManifest, the only
// reader of manifests, which are remote data anyone with write access to
// the bucket can plant. Whatever the input, it must not panic, must
// reject with an error wrapping tiercache.ErrIntegrity, and anything it
// accepts must be an entry the rest of the store can trust: a valid key
// that belongs under the names read, a well-formed data object id whose
// tree size is the recorded one, a lowercase hex SHA-256, non-negative
// sizes, LastAccess not before Created, and a canonical form: encoding
// the result and parsing it again gives the same manifest and bytes.
//
// Run it with
//
//	go test -run='^$' -fuzz=FuzzParseManifest -fuzztime=60s ./remote/s3
func FuzzParseManifest(f *testing.F) {
	long := strings.Repeat("/", 512) // fallback stem
	valid := fuzzManifest(f, "gomod-0123456789abcdef", 1234, 567, 89, "main@abc")
	f.Add(valid, "gomod-0123456789abcdef", uint8(namesByKey))
	f.Add(valid, "gomod-0123456789abcdef", uint8(namesByStem))
	f.Add(valid, "gomod-0123456789abcde", uint8(namesByKey)) // a prefix's names
	f.Add(valid, "other", uint8(namesOwnKey))
	f.Add(fuzzManifest(f, long, 7, 8, 1, ""), long, uint8(namesByKey))
	f.Add(fuzzManifest(f, long, 7, 8, 1, ""), long, uint8(namesByStem))
	f.Add(fuzzManifest(f, "../../etc/passwd", 0, 0, 0, ""), "../../etc/passwd", uint8(namesByKey))
	f.Add(fuzzManifest(f, "naïve ключ/~%.", 1<<40, 1<<30, 3, "\u2028"), "", uint8(namesOwnKey))
	f.Add(fuzzManifest(f, "k", 1<<62, 1, 1, ""), "k", uint8(namesByKey))
	// The largest tree size a data object id can hold, and one beyond.
	maxID := `{"version":1,"meta":{"key":"k","size":9223372036854775807,"files":1,"archive_size":1,` +
		`"sha256":"` + strings.Repeat("ab", 32) + `","created":"2025-01-01T00:00:00Z","last_access":"2024-01-01T00:00:00+01:00"},` +
		`"data":"0000000000000001-0000000000000002-7fffffffffffffff.tar.zst"}`
	f.Add([]byte(maxID), "k", uint8(namesByKey))
	f.Add([]byte(strings.Replace(maxID, "7fffffffffffffff", "8000000000000000", 1)), "k", uint8(namesByKey))
	for _, edge := range []string{
		``, `null`, `[]`, `{}`, `"x"`, `{"version":1}`,
		`{"version":2,"meta":{"key":"k"},"data":""}`,
		`{"version":1,"meta":{"key":"k","size":-1,"archive_size":-1,"sha256":""},"data":"x"}`,
		`{"version":1,"meta":{"key":"k","size":1e400},"data":"x"}`,
		`{"version":1,"meta":{"key":"k\u0000"},"data":"x"}`,
		`{"version":1,"meta":{"key":"k","sha256":"` + strings.Repeat("AB", 32) + `"},"data":"x"}`,
		`{"version":1,"version":1,"meta":null,"data":null}`,
		`{"VERSION":1,"Meta":{"KEY":"k"}}`,
		strings.Repeat(`{"a":`, 10000) + strings.Repeat(`}`, 10000),
		string(valid) + `garbage`,
		string(valid[:len(valid)/2]),
	} {
		f.Add([]byte(edge), "k", uint8(namesByKey))
	}
	f.Add(bytes.Repeat([]byte(" "), maxManifestSize+1), "k", uint8(namesByKey))
	// Indexes: one that ends the archive, and lying ones.
	indexed := func(index string) []byte {
		return []byte(strings.Replace(string(valid), `"created"`, `"index":`+index+`,"created"`, 1))
	}
	sum := strings.Repeat("cd", 32)
	f.Add(indexed(`{"offset":467,"length":100,"sha256":"`+sum+`"}`), "gomod-0123456789abcdef", uint8(namesByKey))
	for _, bad := range []string{
		`{"offset":400,"length":100,"sha256":"` + sum + `"}`,
		`{"offset":467,"length":101,"sha256":"` + sum + `"}`,
		`{"offset":567,"length":0,"sha256":"` + sum + `"}`,
		`{"offset":-100,"length":667,"sha256":"` + sum + `"}`,
		`{"offset":467,"length":100,"sha256":"` + strings.ToUpper(sum) + `"}`,
		`{"offset":0,"length":0,"sha256":"x"}`,
		`{"offset":9223372036854775807,"length":9223372036854775807,"sha256":"` + sum + `"}`,
		`{"offset":"467"}`, `[]`, `1`,
	} {
		f.Add(indexed(bad), "gomod-0123456789abcdef", uint8(namesByKey))
	}

	s := &Store{prefix: "ci/"}
	f.Fuzz(func(t *testing.T, data []byte, key string, mode uint8) {
		mode %= numNameModes
		if mode == namesOwnKey {
			var probe struct {
				Meta struct {
					Key string `json:"key"`
				} `json:"meta"`
			}
			_ = json.Unmarshal(data, &probe)
			key = probe.Meta.Key
		}
		if tiercache.ValidateKey(key) != nil {
			key = "k"
		}
		n, err := s.namesFor(key)
		if err != nil {
			t.Fatalf("namesFor(%q): %v", key, err)
		}
		if mode == namesByStem {
			var ok bool
			if n, ok = s.namesForStem(n.stem); !ok {
				t.Fatalf("namesForStem rejects the stem %q of %q", n.stem, key)
			}
		}

		m, err := parseManifest(data, n)
		if err != nil {
			if !errors.Is(err, tiercache.ErrIntegrity) {
				t.Fatalf("rejection does not wrap ErrIntegrity: %v", err)
			}
			if errors.Is(err, errOtherKey) && n.key == "" {
				t.Fatalf("errOtherKey with no key to compare: %v", err)
			}
			return
		}
		checkAcceptedManifest(t, m, n)

		// Canonical form: what parseManifest accepts encodes to a
		// manifest it accepts again, unchanged, and whose encoding is a
		// fixed point.
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("an accepted manifest does not encode: %v\n%+v", err, m)
		}
		again, err := parseManifest(enc, n)
		if err != nil {
			t.Fatalf("the re-encoded manifest is rejected: %v\n%s", err, enc)
		}
		if !sameManifest(m, again) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, again)
		}
		enc2, err := json.Marshal(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}

// TestManifestFuzzSeedsAccepted keeps the fuzz seeds meaningful: the
// valid ones must pass parseManifest, by key, by stem and for every kind
// of key, or the fuzzer would only ever explore rejections.
func TestManifestFuzzSeedsAccepted(t *testing.T) {
	s := &Store{prefix: "ci/"}
	for _, key := range []string{"gomod-0123456789abcdef", strings.Repeat("/", 512), "../../etc/passwd", "naïve ключ/~%."} {
		n, err := s.namesFor(key)
		if err != nil {
			t.Fatal(err)
		}
		byStem, ok := s.namesForStem(n.stem)
		if !ok {
			t.Fatalf("namesForStem(%q) rejected", n.stem)
		}
		for _, names := range []names{n, byStem} {
			m, err := parseManifest(fuzzManifest(t, key, 1<<40, 5, 2, "d"), names)
			if err != nil {
				t.Fatalf("key %q: %v", key, err)
			}
			checkAcceptedManifest(t, m, names)
		}
	}
}

// checkAcceptedManifest asserts what every reader of m relies on.
func checkAcceptedManifest(t *testing.T, m manifest, n names) {
	t.Helper()
	meta := m.Meta
	if m.Version < 1 || m.Version > manifestVersion {
		t.Fatalf("accepted version %d", m.Version)
	}
	if err := tiercache.ValidatePaths(meta.Paths); err != nil {
		t.Fatalf("accepted invalid paths: %v", err)
	}
	if err := tiercache.ValidateKey(meta.Key); err != nil {
		t.Fatalf("accepted an invalid key: %v", err)
	}
	if stemFor(meta.Key) != n.stem {
		t.Fatalf("accepted key %q, whose stem %q is not the stem read %q", meta.Key, stemFor(meta.Key), n.stem)
	}
	if n.key != "" && meta.Key != n.key {
		t.Fatalf("accepted key %q when reading key %q", meta.Key, n.key)
	}
	if !validSHA256(meta.SHA256) {
		t.Fatalf("accepted SHA-256 %q", meta.SHA256)
	}
	if meta.Size < 0 || meta.ArchiveSize < 0 || meta.Files < 0 {
		t.Fatalf("accepted negative sizes: tree %d, archive %d, files %d", meta.Size, meta.ArchiveSize, meta.Files)
	}
	treeSize, ok := parseDataID(m.Data)
	if !ok || treeSize != meta.Size {
		t.Fatalf("accepted data object %q (tree size %d, %v) for tree size %d", m.Data, treeSize, ok, meta.Size)
	}
	if name := n.data(m.Data); !strings.HasPrefix(name, n.dataDir) || strings.Contains(name[len(n.dataDir):], "/") {
		t.Fatalf("data object name %q is not directly under %q", name, n.dataDir)
	}
	if meta.LastAccess.Before(meta.Created) {
		t.Fatalf("LastAccess %v before Created %v", meta.LastAccess, meta.Created)
	}
	if err := meta.Index.Check(meta.ArchiveSize); err != nil {
		t.Fatalf("accepted index %+v: %v", meta.Index, err)
	}
}

// TestManifestIndex: a manifest's index is read back as written, an old
// manifest without one reads as no index, and one that lies about where
// the index lies is refused as corrupt, like any other bad field.
func TestManifestIndex(t *testing.T) {
	s := &Store{prefix: "ci/"}
	const key = "gomod-0123456789abcdef"
	n, err := s.namesFor(key)
	if err != nil {
		t.Fatal(err)
	}
	old := fuzzManifest(t, key, 1234, 567, 89, "")
	if bytes.Contains(old, []byte(`"index"`)) {
		t.Fatalf("a manifest without an index writes the field: %s", old)
	}
	m, err := parseManifest(old, n)
	if err != nil || m.Meta.Index != (remote.IndexInfo{}) {
		t.Fatalf("old manifest: %+v, %v; want no index", m.Meta.Index, err)
	}
	sum := strings.Repeat("cd", 32)
	with := func(index string) []byte {
		return []byte(strings.Replace(string(old), `"created"`, `"index":`+index+`,"created"`, 1))
	}
	m, err = parseManifest(with(`{"offset":467,"length":100,"sha256":"`+sum+`"}`), n)
	if want := (remote.IndexInfo{Offset: 467, Length: 100, SHA256: sum}); err != nil || m.Meta.Index != want {
		t.Fatalf("got %+v, %v; want %+v", m.Meta.Index, err, want)
	}
	for _, bad := range []string{
		`{"offset":466,"length":100,"sha256":"` + sum + `"}`,     // ends before the archive does
		`{"offset":468,"length":100,"sha256":"` + sum + `"}`,     // ends after it
		`{"offset":567,"length":0,"sha256":"` + sum + `"}`,       // empty
		`{"offset":-1,"length":568,"sha256":"` + sum + `"}`,      // starts before it
		`{"offset":467,"length":100,"sha256":"` + sum[1:] + `"}`, // short digest
		`{"offset":467,"length":100,"sha256":"` + strings.ToUpper(sum) + `"}`,
		`{"offset":467,"length":100}`,
		`{"sha256":"` + sum + `"}`,
		`{"offset":"467","length":100,"sha256":"` + sum + `"}`,
		`"yes"`,
	} {
		if m, err := parseManifest(with(bad), n); !errors.Is(err, tiercache.ErrIntegrity) {
			t.Errorf("index %s: got %+v, %v; want an integrity error", bad, m.Meta.Index, err)
		}
	}
}

// sameManifest compares manifests field by field, times as instants (a
// decoded time's Location is a fresh value on every decode).
func sameManifest(a, b manifest) bool {
	ta, tb := a, b
	ta.Meta.Created, ta.Meta.LastAccess = time.Time{}, time.Time{}
	tb.Meta.Created, tb.Meta.LastAccess = time.Time{}, time.Time{}
	return ta.Version == tb.Version && reflect.DeepEqual(ta.Meta, tb.Meta) && ta.Data == tb.Data && a.Meta.Created.Equal(b.Meta.Created) && a.Meta.LastAccess.Equal(b.Meta.LastAccess) &&
		slices.EqualFunc(a.Replaced, b.Replaced, func(x, y replacedData) bool { return x.Data == y.Data && x.At.Equal(y.At) })
}
