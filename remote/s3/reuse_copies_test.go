package s3

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// copyAnswer makes e's server answer each UploadPartCopy of a Put by
// making the part itself with make (given the bucket, object, upload id,
// part number and the range asked), then answering 200 with that part's
// ETag, as a server that copied something else would.
func copyAnswer(t *testing.T, e *env, mk func(key, id string, num int32, source string, first, last int64) (*string, error)) {
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		src := req.Header.Get("X-Amz-Copy-Source")
		if src == "" {
			return nil
		}
		q := req.URL.Query()
		num, _ := strconv.Atoi(q.Get("partNumber"))
		var first, last int64
		if _, err := fmt.Sscanf(req.Header.Get("X-Amz-Copy-Source-Range"), "bytes=%d-%d", &first, &last); err != nil {
			t.Errorf("copy range %q: %v", req.Header.Get("X-Amz-Copy-Source-Range"), err)
			return nil
		}
		key := strings.TrimPrefix(req.URL.Path, "/"+e.bucket+"/")
		etag, err := mk(key, q.Get("uploadId"), int32(num), src, first, last)
		if err != nil {
			t.Errorf("making part %d: %v", num, err)
			return nil
		}
		return answer(req, http.StatusOK, `<?xml version="1.0" encoding="UTF-8"?><CopyPartResult><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>`+
			strings.ReplaceAll(aws.ToString(etag), `"`, "&quot;")+`</ETag></CopyPartResult>`)
	})
	t.Cleanup(func() { e.rec.setFault(nil) })
}

// TestReuseWrongCopies: a copy that makes a part of other bytes than the
// base's range the reader vouched for (the base's object rewritten under
// its name, a server that copies another range or makes an empty part)
// must not end in a committed entry whose object differs from what was
// hashed, nor fail the Put: the bytes are in hand, and are uploaded.
func TestReuseWrongCopies(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(80, 24*mib)
	data, runs := compose(base, 81, piece{fresh: mib}, piece{baseOff: 2 * mib, n: 20 * mib})
	cases := []struct {
		name  string
		setup func(t *testing.T, b *remoteBase)
	}{
		{"base rewritten under its name", func(t *testing.T, b *remoteBase) {
			other := bytes.Clone(base)
			for i := 0; i < len(other); i += 4096 {
				other[i] ^= 0x5a
			}
			e.putRaw(t, b.ref, other)
		}},
		{"another range copied", func(t *testing.T, _ *remoteBase) {
			copyAnswer(t, e, func(key, id string, num int32, source string, first, last int64) (*string, error) {
				out, err := e.raw.UploadPartCopy(bg, &s3.UploadPartCopyInput{
					Bucket: &e.bucket, Key: &key, UploadId: &id, PartNumber: &num, CopySource: &source,
					CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first+1, last+1)),
				})
				if err != nil {
					return nil, err
				}
				return out.CopyPartResult.ETag, nil
			})
		}},
		{"empty part", func(t *testing.T, _ *remoteBase) {
			copyAnswer(t, e, func(key, id string, num int32, _ string, _, _ int64) (*string, error) {
				out, err := e.raw.UploadPart(bg, &s3.UploadPartInput{
					Bucket: &e.bucket, Key: &key, UploadId: &id, PartNumber: &num, Body: bytes.NewReader(nil), ContentLength: aws.Int64(0),
				})
				if err != nil {
					return nil, err
				}
				return out.ETag, nil
			})
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("base%d", i)
			b := putBase(t, s, key, base)
			tc.setup(t, &remoteBase{ref: b.Ref})
			r := newReuser(b, data, runs, mib)
			putReusing(t, s, "next", r, data)
			if f := r.Failures(); len(f) == 0 {
				t.Error("no CopyFailed: the wrong copies went unnoticed")
			} else {
				t.Logf("CopyFailed: %v", f[0])
			}
			if got := copied(r); got != 0 {
				t.Errorf("Copied %d bytes, none of them the base's", got)
			}
		})
	}
}

// remoteBase is what a case may change of the base: its object's name.
type remoteBase struct{ ref string }

// TestReuseCopyErrors: every refusal of a copy a server may give (a
// credential that may write but not read the base, a condition, a
// request it rejects) costs an upload of the part, not the Put.
func TestReuseCopyErrors(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(90, 20*mib)
	b := putBase(t, s, "base", base)
	data, runs := compose(base, 91, piece{fresh: mib}, piece{baseOff: 0, n: 19 * mib})
	for _, c := range []struct {
		status int
		code   string
	}{
		{http.StatusForbidden, "AccessDenied"},
		{http.StatusBadRequest, "InvalidRequest"},
		{http.StatusBadRequest, "InvalidArgument"},
		{http.StatusPreconditionFailed, "PreconditionFailed"},
		{http.StatusNotFound, "NoSuchKey"},
	} {
		t.Run(c.code, func(t *testing.T) {
			e.rec.setFault(func(req *http.Request, _ int) *http.Response {
				if req.Header.Get("X-Amz-Copy-Source") == "" {
					return nil
				}
				return answer(req, c.status, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+c.code+`</Code><Message>no</Message></Error>`)
			})
			defer e.rec.setFault(nil)
			r := newReuser(b, data, runs, mib)
			putReusing(t, s, "next", r, data)
			if f := r.Failures(); len(f) != 1 || copied(r) != 0 {
				t.Errorf("copies answered %d %s: CopyFailed %v, Copied %d; want one note, nothing copied", c.status, c.code, f, copied(r))
			}
			if s.lacksCopies() {
				t.Errorf("%s turned copies off for the store", c.code)
			}
		})
	}
}

// TestReuseAwkwardSource: the copy source of a base under a prefix and a
// key holding every character that needs escaping in a URL is the base.
func TestReuseAwkwardSource(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.Prefix = "a b+c%20d/é ?#;,$@:=&/" })
	base := randBytes(95, 12*mib)
	b := putBase(t, s, "k ey+%2B%/é?#;,$@:=&~'\"<>[]{}|^`!*()", base)
	if want := url.PathEscape("é"); !strings.Contains(copySource(e.bucket, b.Ref), want) {
		t.Errorf("copy source %q does not escape é", copySource(e.bucket, b.Ref))
	}
	data, runs := compose(base, 96, piece{fresh: mib}, piece{baseOff: mib, n: 11 * mib})
	r := newReuser(b, data, runs, mib)
	putReusing(t, s, "next", r, data)
	if f := r.Failures(); len(f) > 0 || copied(r) == 0 {
		t.Errorf("CopyFailed %v, Copied %d; want copies", f, copied(r))
	}
}

// TestReuseOpaqueETags: on a server whose ETags are not MD5s (SSE-KMS),
// copies cannot be checked against their bytes; the first one is
// uploaded to learn that, and the rest are taken, as before.
func TestReuseOpaqueETags(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(97, 30*mib)
	b := putBase(t, s, "base", base)
	data, runs := compose(base, 98, piece{fresh: mib}, piece{baseOff: 0, n: 30 * mib})

	// An opaque ETag is the real one reversed; Complete is answered by
	// completing with the real ones.
	flip := func(etag string) string {
		r := []rune(strings.Trim(etag, `"`))
		slices.Reverse(r)
		return `"` + string(r) + `"`
	}
	tr := e.srv.Transport()
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		switch {
		case req.Method == http.MethodPut && req.URL.Query().Has("partNumber"):
			resp, err := tr.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("part: %v %v", resp, err)
				return nil
			}
			if req.Header.Get("X-Amz-Copy-Source") == "" {
				resp.Header.Set("ETag", flip(resp.Header.Get("ETag")))
				return resp
			}
			var out struct{ ETag string }
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err := xml.Unmarshal(body, &out); err != nil {
				t.Errorf("copy answer %q: %v", body, err)
			}
			return answer(req, http.StatusOK, `<CopyPartResult><ETag>`+strings.ReplaceAll(flip(out.ETag), `"`, "&quot;")+`</ETag></CopyPartResult>`)
		case isComplete(req):
			var in struct {
				Part []struct {
					ETag       string
					PartNumber int32
				}
			}
			body, _ := io.ReadAll(req.Body)
			if err := xml.Unmarshal(body, &in); err != nil {
				t.Errorf("complete %q: %v", body, err)
				return nil
			}
			var parts []types.CompletedPart
			for _, p := range in.Part {
				parts = append(parts, types.CompletedPart{ETag: aws.String(flip(p.ETag)), PartNumber: aws.Int32(p.PartNumber)})
			}
			key := strings.TrimPrefix(req.URL.Path, "/"+e.bucket+"/")
			out, err := e.raw.CompleteMultipartUpload(bg, &s3.CompleteMultipartUploadInput{
				Bucket: &e.bucket, Key: &key, UploadId: aws.String(req.URL.Query().Get("uploadId")),
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
			})
			if err != nil {
				t.Errorf("complete: %v", err)
				return nil
			}
			return answer(req, http.StatusOK, `<CompleteMultipartUploadResult><ETag>`+strings.ReplaceAll(aws.ToString(out.ETag), `"`, "&quot;")+`</ETag></CompleteMultipartUploadResult>`)
		}
		return nil
	})
	defer e.rec.setFault(nil)
	r := newReuser(b, data, runs, mib)
	putReusing(t, s, "next", r, data)
	// Part 1 is the fresh MiB padded with the run; 26 MiB of the run
	// are copy parts, one of which (at most 5 MiB) is the probe.
	if f, got := r.Failures(), copied(r); len(f) > 0 || got < 21*mib || got >= 26*mib {
		t.Errorf("CopyFailed %v, Copied %d; want copies but the probe's part", f, got)
	}
}
