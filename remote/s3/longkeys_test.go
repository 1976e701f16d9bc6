package s3

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// longKeys are keys whose encoding does not fit in an S3 name (but
// "é"×256, which is there to show a long key of plain characters keeps
// its full form), two of them differing only in their last byte, and
// short keys that share their first bytes.
var longKeys = []string{
	strings.Repeat("/", 512),
	strings.Repeat("/", 511) + "a",
	strings.Repeat("/", 511) + "b",
	strings.Repeat("%", 512),
	strings.Repeat("é", 256),
	mixedKey(512),
	"/", strings.Repeat("/", 300),
}

func TestLongKeys(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	for i, k := range longKeys {
		// Tree sizes are distinct, so Prune by bytes can be checked.
		if _, err := s.Put(bg, remote.Meta{Key: k, Size: int64(1000 * (i + 1)), Description: "long"}, strings.NewReader(k)); err != nil {
			t.Fatalf("Put %q: %v", k, err)
		}
		time.Sleep(20 * time.Millisecond) // distinct LastModified (ms resolution)
	}
	var fallbacks int
	for _, name := range e.objects(t, "ci/") {
		if len(name) > maxObjectName {
			t.Errorf("object name of %d bytes", len(name))
		}
		if strings.Contains(name, fallbackMarker) {
			fallbacks++
		}
	}
	if fallbacks != 2*6 { // the manifest and data of all but "é"×256 and "/"
		t.Errorf("%d object names in the fallback form, want 12", fallbacks)
	}
	for i, k := range longKeys {
		if back, err := readAll(t, s, k); err != nil || string(back) != k {
			t.Errorf("Open(%.20q…) = %.20q…, %v", k, back, err)
		}
		m, err := s.Stat(bg, k)
		if err != nil || m.Key != k || m.Size != int64(1000*(i+1)) {
			t.Errorf("Stat(%.20q…) = %+v, %v", k, m, err)
		}
	}

	// List: one listing each of manifests and markers, whatever the
	// prefix's length, also when its encoding is longer than the
	// fallback's leading part.
	mixed := mixedKey(512)
	for _, prefix := range []string{
		"", "/", "//", strings.Repeat("/", 200), strings.Repeat("/", 211), strings.Repeat("/", 212),
		strings.Repeat("/", 300), strings.Repeat("/", 301), strings.Repeat("/", 511),
		strings.Repeat("/", 511) + "a", strings.Repeat("/", 512), strings.Repeat("%", 400),
		strings.Repeat("é", 200), strings.Repeat("é", 256), "é\xc3", mixed[:100], mixed[:400], mixed, mixed[:511],
	} {
		e.rec.reset()
		metas, err := s.List(bg, prefix)
		if err != nil {
			t.Fatalf("List(%.20q…): %v", prefix, err)
		}
		if n := len(e.rec.requests(func(r request) bool { return r.isList() })); n != 2 {
			t.Errorf("List(%.20q… (%d bytes)) sent %d listings, want 2", prefix, len(prefix), n)
		}
		var got, want []string
		for _, m := range metas {
			got = append(got, m.Key)
		}
		for _, k := range longKeys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("List(%.30q… (%d bytes)) = %d keys, want %d: %.30q", prefix, len(prefix), len(got), len(want), got)
		}
	}

	// Touch and LRU: touch all but the first two long keys, newest last;
	// Prune to 6 entries evicts those two, by their fallback names.
	for _, k := range longKeys[2:] {
		time.Sleep(20 * time.Millisecond)
		if err := s.Touch(bg, k); err != nil {
			t.Fatalf("Touch: %v", err)
		}
	}
	e.rec.reset()
	if n, err := s.Prune(bg, policy.Limits{MaxEntries: len(longKeys) - 2}); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	for _, r := range e.rec.requests(nil) {
		if !(r.method == "GET" && r.isList()) && !(r.method == "POST" && strings.Contains(r.query, "delete")) {
			t.Errorf("Prune sent %s %s?%s", r.method, r.path, r.query)
		}
	}
	for i, k := range longKeys {
		_, err := s.Stat(bg, k)
		if gone := errors.Is(err, tiercache.ErrNotFound); gone != (i < 2) {
			t.Errorf("after Prune, Stat(%.20q…): %v", k, err)
		}
	}
	// Bytes count tree bytes: the 6 entries left hold 3000+...+8000 =
	// 33000 bytes; a budget of 15000 keeps the most recent, 7000+8000.
	if n, err := s.Prune(bg, policy.Limits{MaxBytes: 15000}); err != nil || n != 4 {
		t.Fatalf("Prune(15000 bytes) = %d, %v; want 4", n, err)
	}
	assertKeys(t, s, longKeys[6:]...)

	// Delete of a long key leaves nothing behind.
	for _, k := range longKeys[6:] {
		if err := s.Delete(bg, k); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if objs := e.objects(t, ""); len(objs) != 0 {
		t.Errorf("left after Delete: %q", objs)
	}
}

// TestLongKeysDistinct puts two long keys that differ only in their last
// byte, and deletes one.
func TestLongKeysDistinct(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	a, b := strings.Repeat("%", 511)+"a", strings.Repeat("%", 511)+"b"
	for _, k := range []string{a, b} {
		if _, err := s.Put(bg, remote.Meta{Key: k}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.objects(t, "ci/manifests/")); n != 2 {
		t.Fatalf("%d manifests for two keys", n)
	}
	if err := s.Delete(bg, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(bg, a); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Stat of the deleted key: %v", err)
	}
	if back, err := readAll(t, s, b); err != nil || string(back) != b {
		t.Errorf("the other key: %v", err)
	}
	assertKeys(t, s, b)
}

// TestFallbackManifestMismatch plants, under one long key's manifest
// name, the manifest of another long key: readers must not serve it.
func TestFallbackManifestMismatch(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	a, b := strings.Repeat("/", 512), strings.Repeat("%", 512)
	if _, err := s.Put(bg, remote.Meta{Key: b}, strings.NewReader("b")); err != nil {
		t.Fatal(err)
	}
	nb, _ := s.namesFor(b)
	na, _ := s.namesFor(a)
	out, err := e.raw.GetObject(bg, &s3.GetObjectInput{Bucket: &e.bucket, Key: &nb.manifest})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	_ = out.Body.Close()
	e.putRaw(t, na.manifest, body)

	if _, _, err := s.Open(bg, a); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("Open: %v, want ErrIntegrity", err)
	}
	if _, err := s.Stat(bg, a); !errors.Is(err, tiercache.ErrIntegrity) {
		t.Errorf("Stat: %v, want ErrIntegrity", err)
	}
	// List reads the planted manifest, finds it does not belong under
	// its name and leaves it out; b is listed once.
	metas, err := s.List(bg, "")
	if err != nil || len(metas) != 1 || metas[0].Key != b {
		t.Errorf("List = %v, %v; want only %.10q…", metas, err, b)
	}
	// The planted manifest is corrupt for a: Delete removes it.
	if err := s.Delete(bg, a); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(e.objects(t, "ci/manifests/"), na.manifest) {
		t.Error("Delete left the planted manifest")
	}
	if back, err := readAll(t, s, b); err != nil || string(back) != "b" {
		t.Errorf("Open(b) = %q, %v", back, err)
	}
}

func TestParseManifestChecks(t *testing.T) {
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	mk := func(key string, size int64, id string) []byte {
		b, err := json.Marshal(manifest{Version: manifestVersion, Meta: remote.Meta{Key: key, Size: size, SHA256: sum}, Data: id})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s := &Store{prefix: "ci/"}
	long, other := strings.Repeat("/", 512), strings.Repeat("/", 511)+"x"
	nLong, _ := s.namesFor(long)
	if _, err := parseManifest(mk(long, 7, newDataID(7)), nLong); err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
	// Read by stem only (List, Prune): the key comes from the manifest.
	byStem, ok := s.namesForStem(nLong.stem)
	if !ok || byStem.key != "" {
		t.Fatalf("namesForStem(%q) = %+v, %v", nLong.stem, byStem, ok)
	}
	if m, err := parseManifest(mk(long, 7, newDataID(7)), byStem); err != nil || m.Meta.Key != long {
		t.Fatalf("by stem: %v, %v", m.Meta.Key, err)
	}
	for name, tc := range map[string]struct {
		body []byte
		n    names
	}{
		"tree size differs from the data id": {mk(long, 7, newDataID(8)), nLong},
		"old data id":                        {mk(long, 7, "0000000000000001-0000000000000001.tar.zst"), nLong},
		"another key's manifest":             {mk(other, 7, newDataID(7)), nLong},
		"another key's, by stem":             {mk(other, 7, newDataID(7)), byStem},
		"invalid key":                        {mk("a\nb", 7, newDataID(7)), byStem},
	} {
		if _, err := parseManifest(tc.body, tc.n); !errors.Is(err, tiercache.ErrIntegrity) || errors.Is(err, errOtherKey) {
			t.Errorf("%s: %v, want ErrIntegrity", name, err)
		}
	}
	// A key whose name holds another key's manifest with the same name
	// (a SHA-256 collision, simulated): ErrIntegrity and errOtherKey, so
	// Delete leaves that entry alone.
	collided := nLong
	collided.key, collided.label = other, other
	if _, err := parseManifest(mk(long, 7, newDataID(7)), collided); !errors.Is(err, tiercache.ErrIntegrity) || !errors.Is(err, errOtherKey) {
		t.Errorf("collision: %v, want ErrIntegrity and errOtherKey", err)
	}
}

// TestPruneCountsTreeBytes gives archive bytes and tree bytes different
// orders: a highly compressible big tree (small archive) and
// incompressible small trees (large archives). Counting archive bytes
// would evict one entry fewer.
func TestPruneCountsTreeBytes(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	entries := []struct {
		key       string
		tree      int64
		archive   int
		remaining bool
	}{
		{"small-tree-1", 1000, 30000, false}, // oldest
		{"big-tree", 10 << 20, 100, false},   // compresses well
		{"small-tree-2", 5000, 5000, true},   // newest
	}
	for _, en := range entries {
		if _, err := s.Put(bg, remote.Meta{Key: en.key, Size: en.tree}, bytes.NewReader(randBytes(2, en.archive))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	metas, err := s.List(bg, "")
	if err != nil || len(metas) != 3 {
		t.Fatalf("List: %v, %v", metas, err)
	}
	// Tree bytes: 10 MiB + 6000 > 20000, evict the two oldest. Archive
	// bytes would be 35100: evicting the oldest alone would do.
	e.rec.reset()
	n, err := s.Prune(bg, policy.Limits{MaxBytes: 20000})
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	if gets := e.rec.requests(func(r request) bool { return r.method == "GET" && !r.isList() }); len(gets) != 0 {
		t.Errorf("Prune read %d objects, want none (listings only)", len(gets))
	}
	assertKeys(t, s, "small-tree-2")
}

// TestRegionFromEndpointEnv: an endpoint configured only in the
// environment gets the us-east-1 fallback, and requests go there.
func TestRegionFromEndpointEnv(t *testing.T) {
	e := newEnv(t)
	for _, variable := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		t.Run(variable, func(t *testing.T) {
			clearAWSEnv(t)
			t.Setenv(variable, e.srv.Endpoint)
			cfg := e.config()
			cfg.Endpoint, cfg.Region = "", ""
			s, err := New(bg, cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if o := s.client.Options(); o.Region != "us-east-1" || aws.ToString(o.BaseEndpoint) != e.srv.Endpoint {
				t.Errorf("region %q, endpoint %q", o.Region, aws.ToString(o.BaseEndpoint))
			}
			e.rec.reset()
			if _, err := s.Put(bg, remote.Meta{Key: variable}, strings.NewReader("x")); err != nil {
				t.Fatalf("Put through the endpoint from %s: %v", variable, err)
			}
			if n := len(e.rec.requests(nil)); n == 0 {
				t.Error("no request went through the configured client")
			}
		})
	}
	// A region from the environment wins over the fallback.
	clearAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", e.srv.Endpoint)
	t.Setenv("AWS_REGION", "eu-west-3")
	s, err := New(bg, Config{Bucket: "b", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.client.Options().Region; r != "eu-west-3" {
		t.Errorf("region %q, want eu-west-3 from AWS_REGION", r)
	}
	// And without any endpoint or region, New refuses.
	clearAWSEnv(t)
	if _, err := New(bg, Config{Bucket: "b"}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("no region, no endpoint: %v", err)
	}
}
