package s3

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/miniotest"
	"github.com/tiercache/tiercache/remote"
)

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestUploadsOverTLS: the store works against a MinIO server speaking
// HTTPS only (with a certificate the HTTP client is given), a single
// PutObject and a multipart upload alike. It also pins down what the
// benchmark notes about signing: over HTTPS the SDK sends request bodies
// unsigned (UNSIGNED-PAYLOAD, TLS protecting them), while over plain HTTP
// it signs them, at the cost of a SHA-256 pass over every byte uploaded.
func TestUploadsOverTLS(t *testing.T) {
	srv := miniotest.RequireTLS(t)
	for _, c := range []struct {
		name     string
		e        *env
		unsigned bool
	}{{"https", newEnvOn(t, srv), true}, {"http", newEnv(t), false}} {
		t.Run(c.name, func(t *testing.T) {
			s := c.e.store(t, nil)
			ctx := context.Background()
			archives := map[string][]byte{
				"small": randBytes(1, 1000),
				"multi": randBytes(2, 2*MinPartSize+12345),
			}
			for key, body := range archives {
				if _, err := s.Put(ctx, remote.Meta{Key: key, Size: 1, Files: 1}, onlyReader{bytes.NewReader(body)}); err != nil {
					t.Fatalf("Put %s: %v", key, err)
				}
				got, err := readAll(t, s, key)
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("%s read back: %d bytes, %v; want the %d put", key, len(got), err, len(body))
				}
			}
			var data, parts int
			for _, r := range c.e.rec.requests(func(r request) bool { return r.method == "PUT" }) {
				h := r.header.Get("X-Amz-Content-Sha256")
				switch {
				case c.unsigned && h != "UNSIGNED-PAYLOAD":
					t.Errorf("PUT %s?%s: payload header %q, want UNSIGNED-PAYLOAD", r.path, r.query, h)
				case !c.unsigned && !hexDigest.MatchString(h):
					t.Errorf("PUT %s?%s: payload header %q, want the body's SHA-256", r.path, r.query, h)
				}
				if r.isData() {
					data++
					if strings.Contains(r.query, "partNumber=") {
						parts++
					}
				}
			}
			if data != 4 || parts != 3 {
				t.Errorf("%d archive uploads, %d of them parts; want 4 and 3", data, parts)
			}
		})
	}
}
