package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// answer is an S3-like answer to req: status, XML body, request ID.
func answer(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":     {"application/xml"},
			"Content-Length":   {strconv.Itoa(len(body))},
			"X-Amz-Request-Id": {"fault"},
		},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}

// isComplete reports whether req is a CompleteMultipartUpload.
func isComplete(req *http.Request) bool {
	return req.Method == http.MethodPost && req.URL.Query().Has("uploadId")
}

// TestCompleteWithoutResult: S3 answers CompleteMultipartUpload with 200
// at once and sends the outcome in the body later, keeping the
// connection alive with blanks meanwhile. An answer whose body holds no
// result (the outcome never came) does not say the object exists: Put
// must not commit a manifest naming an object that may not.
func TestCompleteWithoutResult(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	data := randBytes(61, MinPartSize+10)

	// Not completed: the server never saw the request.
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if isComplete(req) {
			return answer(req, http.StatusOK, "\n  \n  ")
		}
		return nil
	})
	_, err := s.Put(bg, remote.Meta{Key: "lost"}, bytes.NewReader(data))
	e.rec.setFault(nil)
	if err == nil {
		t.Error("Put whose completion got a 200 with no result succeeded")
	}
	if _, err := s.Stat(bg, "lost"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Stat after a Put whose upload never completed: %v, want not found", err)
	}

	// Completed, but the answer's body was lost: the object exists.
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if !isComplete(req) {
			return nil
		}
		resp, err := e.rec.base.RoundTrip(req)
		if err != nil {
			return nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return answer(req, http.StatusOK, "")
	})
	_, err = s.Put(bg, remote.Meta{Key: "done"}, bytes.NewReader(data))
	e.rec.setFault(nil)
	if err != nil {
		t.Fatalf("Put whose completion succeeded with an empty answer: %v", err)
	}
	if back, err := readAll(t, s, "done"); err != nil || !bytes.Equal(back, data) {
		t.Errorf("reading it back: %v", err)
	}
}

// TestPruneDeleteErrorWithoutCode: a DeleteObjects answer (quiet mode)
// that lists a key among its errors refused to delete it, whether or not
// the error carries a code: Prune must not count it as evicted.
func TestPruneDeleteErrorWithoutCode(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	for _, k := range []string{"a", "b"} {
		if _, err := s.Put(bg, remote.Meta{Key: k, Size: 1}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // distinct access times
	}
	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method == http.MethodPost && req.URL.Query().Has("delete") {
			return answer(req, http.StatusOK, `<DeleteResult><Error><Key>ci/manifests/a.json</Key><Message>refused</Message></Error></DeleteResult>`)
		}
		return nil
	})
	n, err := s.Prune(bg, policy.Limits{MaxEntries: 1})
	e.rec.setFault(nil)
	if n != 0 || err == nil {
		t.Errorf("Prune whose deletion was refused = %d, %v; want 0 evicted and an error", n, err)
	}
	assertKeys(t, s, "a", "b")
}

// TestWrongRegion: a bucket addressed in the wrong region answers 301
// PermanentRedirect (a HEAD, with no body) naming its region only in the
// X-Amz-Bucket-Region header. The error must say so and name it, not
// only "must be addressed using the specified endpoint".
func TestWrongRegion(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Amz-Request-Id", "wrong-region")
			w.Header().Set("X-Amz-Bucket-Region", "eu-west-1")
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			if r.Method != http.MethodHead {
				code := map[int]string{http.StatusMovedPermanently: "PermanentRedirect", http.StatusTemporaryRedirect: "TemporaryRedirect"}[status]
				fmt.Fprintf(w, `<Error><Code>%s</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>b</Bucket></Error>`, code)
			}
		}))
		s, err := New(bg, Config{
			Bucket: "b", Region: "us-west-2", Endpoint: srv.URL, MaxBackoff: time.Millisecond,
			Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		})
		if err != nil {
			t.Fatal(err)
		}
		_, getErr := s.Stat(bg, "k")
		name := "k"
		_, headErr := s.client.HeadObject(bg, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &name})
		headErr = mapError(headErr, s.bucket, "stat", name)
		srv.Close()
		for _, err := range []error{getErr, headErr} {
			if err == nil || !strings.Contains(err.Error(), `region "eu-west-1"`) || !strings.Contains(err.Error(), "--region") {
				t.Errorf("%d: %v; want an error naming the bucket's region and --region", status, err)
			}
		}
	}
}
