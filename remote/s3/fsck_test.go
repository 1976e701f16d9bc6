package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// problemSet renders a report's problems as "kind key" strings, sorted.
func problemSet(r tiercache.CheckReport) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.Kind+" "+p.Key)
	}
	slices.Sort(out)
	return out
}

// dataNameOf returns the name of the data object key's manifest names.
func dataNameOf(t *testing.T, s *Store, key string) string {
	t.Helper()
	n, err := s.namesFor(key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.readManifest(bg, n)
	if err != nil {
		t.Fatal(err)
	}
	return n.data(m.Data)
}

// TestCheck breaks entries and leaves leftovers in every way Check knows,
// then checks that a metadata check, a deep check and a repair each
// report exactly what they should, and that a repaired store checks
// clean while its sound entries still read back.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil) // default grace: 1h
	ctx := t.Context()
	bodies := map[string][]byte{}
	for i, key := range []string{"missing", "short", "flipped", "corrupt", "sound", "big", "has-orphan"} {
		n := 1000 + i
		if key == "big" {
			n = 2*MinPartSize + 7 // multipart
		}
		bodies[key] = randBytes(uint64(10+i), n)
		if _, err := s.Put(ctx, remote.Meta{Key: key, Size: int64(n)}, bytes.NewReader(bodies[key])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Touch(ctx, "sound"); err != nil {
		t.Fatal(err)
	}
	clean, err := s.Check(ctx, remote.CheckOptions{Deep: true})
	if err != nil {
		t.Fatal(err)
	}
	if clean.Entries != 7 || clean.Verified != 7 || len(clean.Problems) != 0 {
		t.Fatalf("sound store: %+v, want 7 entries verified and no problem", clean)
	}

	// Break entries.
	if _, err := e.raw.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: ptr(dataNameOf(t, s, "missing"))}); err != nil {
		t.Fatal(err)
	}
	e.putRaw(t, dataNameOf(t, s, "short"), bodies["short"][:10])
	flipped := bytes.Clone(bodies["flipped"])
	flipped[500] ^= 1 // same size: only a deep check sees it
	e.putRaw(t, dataNameOf(t, s, "flipped"), flipped)
	e.putRaw(t, "ci/manifests/corrupt.json", []byte("{not json"))
	// Leftovers: data of a put that died, superseded data of a live key,
	// a marker of a key with no entry, an abandoned multipart upload, and
	// objects tiercache did not write.
	const id = "0000000000000001-0000000000000001-0000000000000005.tar.zst"
	e.putRaw(t, "ci/data/dead-put/"+id, []byte("partial"))
	e.putRaw(t, "ci/data/has-orphan/"+id, []byte("old"))
	e.putRaw(t, "ci/access/no-entry", nil)
	upName := "ci/data/dead-upload/" + id
	if _, err := e.raw.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &e.bucket, Key: &upName}); err != nil {
		t.Fatal(err)
	}
	foreign := []string{"ci/data/x/y.tar.zst", "ci/manifests/notes.txt", "other/data/dead-put/" + id}
	for _, name := range foreign {
		e.putRaw(t, name, []byte("not ours"))
	}

	broken := []string{"corrupt-manifest corrupt", "missing-data missing", "size-mismatch short"}
	slices.Sort(broken)
	// With the default grace, the young leftovers are not reported: they
	// could belong to puts still running.
	r, err := s.Check(ctx, remote.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := problemSet(r); !slices.Equal(got, broken) {
		t.Fatalf("metadata check found %q, want %q", got, broken)
	}
	if r.Entries != 7 || r.Verified != 0 {
		t.Errorf("metadata check: %d entries, %d verified; want 7, 0", r.Entries, r.Verified)
	}
	for _, p := range r.Problems {
		if p.Repaired || !strings.HasPrefix(p.Object, "ci/manifests/") || p.Detail == "" {
			t.Errorf("problem %+v: want an unrepaired problem naming the manifest", p)
		}
	}

	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	tiny := remote.CheckOptions{Deep: true, Grace: time.Nanosecond}
	r, err = s.Check(ctx, tiny)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(broken, []string{
		"checksum-mismatch flipped",
		"orphan-data corrupt", // its manifest names nothing usable
		"orphan-data dead-put",
		"orphan-data has-orphan",
		"stray-marker no-entry",
		"stale-upload dead-upload",
	})
	slices.Sort(want)
	if got := problemSet(r); !slices.Equal(got, want) {
		t.Fatalf("deep check with no grace found %q, want %q", got, want)
	}
	if r.Verified != 3 { // sound, big, has-orphan
		t.Errorf("%d archives verified, want 3", r.Verified)
	}
	for _, p := range r.Problems {
		if p.Kind == remote.ProblemChecksumMismatch && !strings.Contains(p.Detail, "SHA-256") {
			t.Errorf("checksum problem does not say what differs: %+v", p)
		}
	}

	// Repair, then a second check finds nothing.
	tiny.Repair = true
	r, err = s.Check(ctx, tiny)
	if err != nil {
		t.Fatal(err)
	}
	if got := problemSet(r); !slices.Equal(got, want) {
		t.Fatalf("repair found %q, want %q", got, want)
	}
	if n := r.Unrepaired(); n != 0 {
		t.Fatalf("%d problems left unrepaired: %+v", n, r.Problems)
	}
	r, err = s.Check(ctx, tiny)
	if err != nil || len(r.Problems) != 0 || r.Entries != 3 || r.Verified != 3 {
		t.Fatalf("check after repair: %+v %v; want 3 sound entries, no problem", r, err)
	}
	for _, key := range []string{"missing", "short", "flipped", "corrupt"} {
		if _, err := s.Stat(ctx, key); !errors.Is(err, tiercache.ErrNotFound) {
			t.Errorf("repaired entry %q: Stat = %v, want a miss", key, err)
		}
	}
	for _, key := range []string{"sound", "big", "has-orphan"} {
		if back, err := readAll(t, s, key); err != nil || !bytes.Equal(back, bodies[key]) {
			t.Errorf("sound entry %q damaged by the repair: %v", key, err)
		}
	}
	left := e.objects(t, "")
	for _, name := range foreign {
		if !slices.Contains(left, name) {
			t.Errorf("foreign object %q deleted", name)
		}
	}
	// 3 entries: manifest and data each, plus the sound entry's marker.
	if len(left) != len(foreign)+7 {
		t.Errorf("objects after repair: %q", left)
	}
	ups, err := e.raw.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &e.bucket})
	if err != nil || len(ups.Uploads) != 0 {
		t.Errorf("uploads after repair: %v %v", ups.Uploads, err)
	}
}

func TestCheckReadOnlyAndOptions(t *testing.T) {
	e := newEnv(t)
	rw := e.store(t, nil)
	if _, err := rw.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	e.putRaw(t, "ci/data/dead/0000000000000001-0000000000000001-0000000000000005.tar.zst", []byte("x"))
	ro := remote.ReadOnly(e.store(t, nil)).(remote.Checker)
	e.rec.reset()
	if _, err := ro.Check(bg, remote.CheckOptions{Repair: true}); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("read-only repair: %v, want ErrReadOnly", err)
	}
	if n := len(e.rec.requests(nil)); n != 0 {
		t.Fatalf("refused repair sent %d requests", n)
	}
	time.Sleep(1100 * time.Millisecond)
	r, err := ro.Check(bg, remote.CheckOptions{Deep: true, Grace: time.Nanosecond})
	if err != nil || r.Entries != 1 || r.Verified != 1 || len(r.Problems) != 1 || r.Problems[0].Kind != remote.ProblemOrphanData {
		t.Fatalf("read-only check: %+v %v; want 1 verified entry and the orphan", r, err)
	}
	for _, req := range e.rec.requests(nil) {
		if req.method != "GET" && req.method != "HEAD" {
			t.Errorf("read-only check sent %s %s", req.method, req.path)
		}
	}
	if _, err := rw.Check(bg, remote.CheckOptions{Grace: -time.Second}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("negative grace: %v, want ErrInvalidArgument", err)
	}
}

func ptr(s string) *string { return &s }

// TestCheckInspect checks that a deep check hands each archive to
// CheckOptions.Inspect, hashes it whole even when Inspect stops early,
// reports an integrity verdict as a content mismatch and fails on any
// other error.
func TestCheckInspect(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	bodies := map[string][]byte{"good": randBytes(1, 3*MinPartSize/2), "lying": randBytes(2, 1000)}
	for key, b := range bodies {
		if _, err := s.Put(bg, remote.Meta{Key: key}, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	var seen sync.Map
	inspect := func(_ context.Context, m remote.Meta, r io.Reader) error {
		head := make([]byte, 100) // a partial read: Check must hash the rest
		if _, err := io.ReadFull(r, head); err != nil {
			return err
		}
		seen.Store(m.Key, bytes.Equal(head, bodies[m.Key][:100]))
		if m.Key == "lying" {
			return fmt.Errorf("%w: not the tree the manifest records", tiercache.ErrIntegrity)
		}
		return nil
	}
	r, err := s.Check(bg, remote.CheckOptions{Deep: true, Inspect: inspect})
	if err != nil {
		t.Fatal(err)
	}
	if got := problemSet(r); !slices.Equal(got, []string{"content-mismatch lying"}) || r.Verified != 1 {
		t.Fatalf("found %q, %d verified; want the lying entry's content mismatch and 1 verified", got, r.Verified)
	}
	if !strings.Contains(r.Problems[0].Detail, "not the tree the manifest records") {
		t.Errorf("detail %q does not carry Inspect's verdict", r.Problems[0].Detail)
	}
	for key := range bodies {
		if ok, _ := seen.Load(key); ok != true {
			t.Errorf("Inspect did not get %q's archive", key)
		}
	}
	boom := errors.New("inspector broke")
	if _, err := s.Check(bg, remote.CheckOptions{Deep: true, Inspect: func(context.Context, remote.Meta, io.Reader) error { return boom }}); !errors.Is(err, boom) {
		t.Errorf("Inspect failing otherwise: %v, want its error", err)
	}
	r, err = s.Check(bg, remote.CheckOptions{Deep: true, Repair: true, Inspect: inspect})
	if err != nil || r.Unrepaired() != 0 || len(r.Problems) != 1 {
		t.Fatalf("repair: %+v %v", r, err)
	}
	if _, err := s.Stat(bg, "lying"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("repaired entry still there: %v", err)
	}
}
