package s3

import (
	"bytes"
	"testing"

	"github.com/tiercache/tiercache/remote"
)

// TestDeleteVersionKeepsRePut: DeleteVersion of the version it reads
// deletes the manifest only if it is still the one read (If-Match its
// ETag): a push that commits a new version between that read and the
// delete keeps its version, data and marker, and DeleteVersion reports
// the version given not gone. Proved on versitygw, which honours
// If-Match, and in front of MinIO answering as AWS S3 does; on MinIO
// itself, which ignores it, the test checks only that the If-Match sent
// is the ETag read.
func TestDeleteVersionKeepsRePut(t *testing.T) {
	for _, tc := range ifMatchServers {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvOn(t, tc.srv(t))
			s := e.store(t, nil)
			v1, v2 := []byte("version one"), []byte("version two")
			m1, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v1))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Touch(bg, "k"); err != nil {
				t.Fatal(err)
			}
			n := s.namesOf("k")
			read := e.etagOf(t, n.manifest)
			c := &condDeletes{e: e, emulate: tc.emulate, race: func() {
				if _, err := rePutter(t, e).Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v2)); err != nil {
					t.Errorf("re-put: %v", err)
				}
			}}
			e.rec.setFault(c.fault)
			gone, err := s.DeleteVersion(bg, "k", m1)
			e.rec.setFault(nil)
			if err != nil {
				t.Fatalf("DeleteVersion: %v", err)
			}
			if !sentWith(c.requests(), false, n.manifest, read) {
				t.Errorf("DeleteVersion's DeleteObject did not carry If-Match %s, the ETag of the manifest it read; sent %+v", read, c.requests())
			}
			got, err := readAll(t, s, "k")
			if !tc.honours {
				t.Logf("on MinIO, which ignores If-Match: gone %v; the re-put version reads back as %q, %v", gone, got, err)
				return
			}
			if err != nil || !bytes.Equal(got, v2) {
				t.Fatalf("the version pushed while DeleteVersion removed the one it read is lost: read %q, %v; want %q", got, err, v2)
			}
			if gone {
				t.Errorf("DeleteVersion reported the version it read gone; want not gone, a new version holds the key")
			}
			if markers := e.objects(t, n.marker); len(markers) != 1 {
				t.Errorf("the access marker of the kept entry was deleted")
			}
		})
	}
}
