package s3

import (
	"bytes"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache/remote"
)

// TestCheckRepairKeepsRePut: a push that commits a new version of a
// broken entry after Check judged it, before the repair deletes its
// manifest, keeps its new version: the manifest is deleted only if it
// still has the ETag judged, and the problem is not reported repaired.
// Proved in front of MinIO answering as AWS S3 does; MinIO itself (and
// versitygw) ignores the ETags of DeleteObjects, so on it the test checks
// only that the repair sends the ETag judged.
func TestCheckRepairKeepsRePut(t *testing.T) {
	for _, emulate := range []bool{true, false} {
		t.Run(map[bool]string{true: "as-aws", false: "minio"}[emulate], func(t *testing.T) {
			e := newEnv(t)
			s := e.store(t, nil)
			v2 := []byte("version two")
			if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader([]byte("version one"))); err != nil {
				t.Fatal(err)
			}
			if _, err := e.raw.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &e.bucket, Key: ptr(dataNameOf(t, s, "k"))}); err != nil {
				t.Fatal(err)
			}
			n := s.namesOf("k")
			judged := e.etagOf(t, n.manifest)
			c := &condDeletes{e: e, emulate: emulate, race: func() {
				if _, err := rePutter(t, e).Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v2)); err != nil {
					t.Errorf("re-put: %v", err)
				}
			}}
			e.rec.setFault(c.fault)
			r, err := s.Check(bg, remote.CheckOptions{Repair: true})
			e.rec.setFault(nil)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !sentWith(c.requests(), true, n.manifest, judged) {
				t.Errorf("the repair's DeleteObjects did not carry the ETag %s of the manifest judged; sent %+v", judged, c.requests())
			}
			got, err := readAll(t, s, "k")
			if !emulate {
				t.Logf("on MinIO, which ignores the ETag: report %q; the re-put version reads back as %q, %v", problemSet(r), got, err)
				if got := problemSet(r); len(got) != 1 || got[0] != remote.ProblemMissingData+" k" || !r.Problems[0].Repaired {
					t.Errorf("Check found %+v; want k's missing data, repaired", r.Problems)
				}
				return
			}
			if err != nil || !bytes.Equal(got, v2) {
				t.Fatalf("the version pushed while Check repaired the one it judged is lost: read %q, %v; want %q", got, err, v2)
			}
			// The problem was the version judged; the one re-put since is
			// healthy, a concurrent write: nothing to report.
			if len(r.Problems) != 0 {
				t.Errorf("Check reported %+v; want nothing, the entry was re-put", r.Problems)
			}
		})
	}
}
