package s3

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// ignoreRange makes the recorder answer the data GETs whose Range
// matches as a server or proxy that ignores ranges does: 200 with the
// whole object (read with the independent client).
func ignoreRange(e *env, match func(rng string) bool) {
	e.rec.setFault(func(req *http.Request, n int) *http.Response {
		if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/"+dataDir) || !match(req.Header.Get("Range")) {
			return nil
		}
		name := strings.TrimPrefix(req.URL.Path, "/"+e.bucket+"/")
		out, err := e.raw.GetObject(req.Context(), &s3.GetObjectInput{Bucket: &e.bucket, Key: &name})
		if err != nil {
			return nil // sent as is
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			return nil
		}
		return &http.Response{
			StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{
				"Content-Length":   {strconv.Itoa(len(b))},
				"Content-Type":     {"application/zstd"},
				"Etag":             {aws.ToString(out.ETag)},
				"X-Amz-Request-Id": {"ignored-range"},
			},
			Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: req,
		}
	})
}

// TestWholeObjectForWholeRange: HTTP lets a server answer a Range with
// 200 and the whole object. When the range asked for is the whole
// object, that answer is exactly the range: an archive of one range
// (every archive up to PartSize) must read fine from such a server.
func TestWholeObjectForWholeRange(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	data := randBytes(41, 1000)
	if _, err := s.Put(bg, remote.Meta{Key: "small"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ignoreRange(e, func(string) bool { return true })
	defer e.rec.setFault(nil)
	back, err := readAll(t, s, "small")
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("Open from a server answering the whole-object range with 200: %d bytes, %v", len(back), err)
	}
}

// TestIgnoredRangeIsNotDamage: a server that ignores the Range of a part
// of the object cannot be read, but that says nothing of the stored
// archive, so the error must not wrap tiercache.ErrIntegrity (on which
// a cache removes the entry as damaged), and must say what went wrong.
func TestIgnoredRangeIsNotDamage(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	data := randBytes(42, 2*MinPartSize+7)
	if _, err := s.Put(bg, remote.Meta{Key: "big"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match func(rng string) bool
	}{
		{"every range", func(string) bool { return true }},
		{"after the first", func(rng string) bool { return !strings.HasPrefix(rng, "bytes=0-") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ignoreRange(e, tc.match)
			defer e.rec.setFault(nil)
			_, err := readAll(t, s, "big")
			if err == nil || errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), "Range") {
				t.Errorf("Open from a server ignoring ranges: %v; want an error naming the ignored Range, not an integrity failure", err)
			}
		})
	}
	if back, err := readAll(t, s, "big"); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("Open once the server honours ranges: %v", err)
	}
}
