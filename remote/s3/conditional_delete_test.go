package s3

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache/internal/miniotest"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// What the test servers do with conditional deletes (found by sending
// them): the pinned MinIO ignores If-Match on DeleteObject and the ETag
// of each object of a DeleteObjects, deleting whatever the object holds;
// versitygw honours If-Match on DeleteObject (412 PreconditionFailed)
// but ignores DeleteObjects' ETags. AWS S3 honours both. So the tests
// that prove the race closed run on versitygw where it can, and
// elsewhere behind condDeletes, which answers as AWS S3 does.

// delObject is one object of a DeleteObjects request body.
type delObject struct {
	Key  string `xml:"Key"`
	ETag string `xml:"ETag"`
}

// sentDelete is a request to delete manifests, as condDeletes saw it.
type sentDelete struct {
	batch bool        // DeleteObjects, not DeleteObject
	objs  []delObject // ETag: the object's ETag element or If-Match
}

// condDeletes is a recorder fault for e that watches the requests that
// delete manifests. race, if set, runs once before the first of them
// goes on. refuse, if set, may answer one itself (a server without
// conditional deletes). With emulate, conditional deletes are answered
// as AWS S3 answers them, in front of a server that ignores their
// conditions: a DELETE whose If-Match is not the object's ETag gets
// 412 PreconditionFailed (404 NoSuchKey if there is no object), and so
// does each object of a DeleteObjects whose ETag is not its own, in the
// answer's errors.
type condDeletes struct {
	e       *env
	emulate bool
	race    func()
	refuse  func(req *http.Request, sd sentDelete) *http.Response

	mu    sync.Mutex
	sent  []sentDelete
	raced bool
}

func (c *condDeletes) fault(req *http.Request, _ int) *http.Response {
	var sd sentDelete
	switch {
	case req.Method == http.MethodDelete && strings.Contains(req.URL.Path, "/"+manifestsDir):
		sd.objs = []delObject{{Key: strings.TrimPrefix(req.URL.Path, "/"+c.e.bucket+"/"), ETag: req.Header.Get("If-Match")}}
	case req.Method == http.MethodPost && req.URL.Query().Has("delete"):
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		var d struct {
			Objects []delObject `xml:"Object"`
		}
		if err != nil || xml.Unmarshal(body, &d) != nil {
			return answer(req, http.StatusBadRequest, "<Error><Code>MalformedXML</Code></Error>")
		}
		if !slices.ContainsFunc(d.Objects, func(o delObject) bool { return strings.Contains(o.Key, "/"+manifestsDir) }) {
			return nil
		}
		sd = sentDelete{batch: true, objs: d.Objects}
	default:
		return nil
	}
	c.mu.Lock()
	c.sent = append(c.sent, sd)
	race := c.race
	if c.raced {
		race = nil
	}
	c.raced = true
	c.mu.Unlock()
	if race != nil {
		race()
	}
	if c.refuse != nil {
		if resp := c.refuse(req, sd); resp != nil {
			return resp
		}
	}
	if !c.emulate || !slices.ContainsFunc(sd.objs, func(o delObject) bool { return o.ETag != "" }) {
		return nil
	}
	if !sd.batch {
		if code := c.check(sd.objs[0]); code != "" {
			return answer(req, map[string]int{"PreconditionFailed": 412, "NoSuchKey": 404}[code], "<Error><Code>"+code+"</Code></Error>")
		}
		return nil
	}
	// The body is signed: the batch is answered here, each object
	// deleted or refused on its own.
	var res struct {
		XMLName xml.Name    `xml:"DeleteResult"`
		Deleted []delObject `xml:"Deleted"`
		Errors  []struct {
			Key  string `xml:"Key"`
			Code string `xml:"Code"`
		} `xml:"Error"`
	}
	for _, o := range sd.objs {
		code := c.check(o)
		if code == "" {
			if _, err := c.e.raw.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: &c.e.bucket, Key: &o.Key}); err != nil {
				code = "InternalError"
			}
		}
		if code != "" {
			res.Errors = append(res.Errors, struct {
				Key  string `xml:"Key"`
				Code string `xml:"Code"`
			}{o.Key, code})
		}
	}
	b, _ := xml.Marshal(res)
	return answer(req, http.StatusOK, string(b))
}

// check returns the error code AWS S3 answers to deleting o, or "".
func (c *condDeletes) check(o delObject) string {
	if o.ETag == "" {
		return ""
	}
	out, err := c.e.raw.HeadObject(bg, &s3.HeadObjectInput{Bucket: &c.e.bucket, Key: &o.Key})
	switch {
	case err != nil:
		return "NoSuchKey"
	case aws.ToString(out.ETag) != o.ETag:
		return "PreconditionFailed"
	}
	return ""
}

// requests returns what was sent so far.
func (c *condDeletes) requests() []sentDelete {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

// etagOf returns the ETag of object name, as the server gives it.
func (e *env) etagOf(tb testing.TB, name string) string {
	tb.Helper()
	out, err := e.raw.HeadObject(bg, &s3.HeadObjectInput{Bucket: &e.bucket, Key: &name})
	if err != nil {
		tb.Fatalf("HeadObject %q: %v", name, err)
	}
	return aws.ToString(out.ETag)
}

// sentWith reports whether sent holds a request of that kind naming
// object name with etag.
func sentWith(sent []sentDelete, batch bool, name, etag string) bool {
	return slices.ContainsFunc(sent, func(sd sentDelete) bool {
		return sd.batch == batch && slices.Contains(sd.objs, delObject{Key: name, ETag: etag})
	})
}

// rePutter returns a store of e that bypasses e's recorder, for a
// push racing the store under test.
func rePutter(t *testing.T, e *env) *Store {
	return e.store(t, func(c *Config) { c.HTTPClient = &http.Client{Transport: e.srv.Transport()} })
}

// TestConditionalPruneKeepsRePut: a push that commits a new version of a
// victim after Prune listed it, before Prune deletes its manifest, keeps
// its new version: the manifest is deleted only if it still has the
// ETag listed. The new version is not counted nor reported as evicted,
// and its data and access marker stay. Proved in front of MinIO
// answering as AWS S3 does; MinIO itself ignores the ETag, so on it the
// test checks only that Prune sends the ETag listed.
func TestConditionalPruneKeepsRePut(t *testing.T) {
	for _, emulate := range []bool{true, false} {
		t.Run(map[bool]string{true: "as-aws", false: "minio"}[emulate], func(t *testing.T) {
			e := newEnv(t)
			s := e.store(t, nil)
			v1, v2 := []byte("version one"), []byte("version two")
			if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Touch(bg, "k"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // "k" is the least recently used
			if _, err := s.Put(bg, remote.Meta{Key: "other"}, bytes.NewReader([]byte("other"))); err != nil {
				t.Fatal(err)
			}
			n := s.namesOf("k")
			listed := e.etagOf(t, n.manifest)
			c := &condDeletes{e: e, emulate: emulate, race: func() {
				if _, err := rePutter(t, e).Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v2)); err != nil {
					t.Errorf("re-put: %v", err)
				}
			}}
			e.rec.setFault(c.fault)
			var reported []string
			evicted, err := s.Prune(bg, policy.Limits{MaxEntries: 1, OnEvict: func(it policy.Item) { reported = append(reported, it.Key) }})
			e.rec.setFault(nil)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			if !sentWith(c.requests(), true, n.manifest, listed) {
				t.Errorf("Prune's DeleteObjects did not carry the listed ETag %s of %s; sent %+v", listed, n.manifest, c.requests())
			}
			got, err := readAll(t, s, "k")
			if !emulate {
				t.Logf("on MinIO, which ignores the ETag: Prune evicted %d; the re-put version reads back as %q, %v", evicted, got, err)
				return
			}
			if err != nil || !bytes.Equal(got, v2) {
				t.Fatalf("the version pushed while Prune evicted the one it listed is lost: read %q, %v; want %q", got, err, v2)
			}
			if evicted != 0 || len(reported) != 0 {
				t.Errorf("Prune counted %d evictions and reported %q; want none, the entry stays", evicted, reported)
			}
			if markers := e.objects(t, n.marker); len(markers) != 1 {
				t.Errorf("the access marker of the kept entry was deleted")
			}
		})
	}
}

// ifMatchServers are the servers the tests of a delete racing a re-put
// run on: emulate answers conditional deletes as AWS S3 does in front of
// MinIO; honours tells whether If-Match on DeleteObject is honoured.
var ifMatchServers = []struct {
	name    string
	srv     func(testing.TB) *miniotest.Server
	emulate bool
	honours bool
}{
	{"as-aws", miniotest.Require, true, true},
	{"versitygw", requireVersityGW, false, true},
	{"minio", miniotest.Require, false, false},
}

// TestConditionalDeleteKeepsRePut: a push that commits a new version
// after Delete read the manifest, before Delete deletes it, keeps its
// new version, data and marker, and Delete succeeds (it deleted the
// version it read, as far as anyone can tell). Proved on versitygw,
// which honours If-Match, and in front of MinIO answering as AWS S3
// does; on MinIO itself, which ignores it, the test checks only that
// the If-Match sent is the ETag read.
func TestConditionalDeleteKeepsRePut(t *testing.T) {
	for _, tc := range ifMatchServers {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvOn(t, tc.srv(t))
			s := e.store(t, nil)
			v1, v2 := []byte("version one"), []byte("version two")
			if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(v1)); err != nil {
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
			err := s.Delete(bg, "k")
			e.rec.setFault(nil)
			if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if !sentWith(c.requests(), false, n.manifest, read) {
				t.Errorf("Delete's DeleteObject did not carry If-Match %s, the ETag of the manifest it read; sent %+v", read, c.requests())
			}
			got, err := readAll(t, s, "k")
			if !tc.honours {
				t.Logf("on MinIO, which ignores If-Match: the re-put version reads back as %q, %v", got, err)
				return
			}
			if err != nil || !bytes.Equal(got, v2) {
				t.Fatalf("the version pushed while Delete removed the one it read is lost: read %q, %v; want %q", got, err, v2)
			}
			if markers := e.objects(t, n.marker); len(markers) != 1 {
				t.Errorf("the access marker of the kept entry was deleted")
			}
		})
	}
}

// TestConditionalDeleteFallback: a server that refuses conditional
// deletes (rather than ignoring them), or fails conditions that hold,
// gets unconditional ones: Prune and Delete still delete, and the Store
// asks with conditions once only.
func TestConditionalDeleteFallback(t *testing.T) {
	refusal := func(status int, code string) func(*http.Request, sentDelete) *http.Response {
		return func(req *http.Request, sd sentDelete) *http.Response {
			if slices.ContainsFunc(sd.objs, func(o delObject) bool { return o.ETag != "" }) {
				return answer(req, status, "<Error><Code>"+code+"</Code><Message>conditional delete</Message></Error>")
			}
			return nil
		}
	}
	perKey := func(code string) func(*http.Request, sentDelete) *http.Response {
		return func(req *http.Request, sd sentDelete) *http.Response {
			if !sd.batch || !slices.ContainsFunc(sd.objs, func(o delObject) bool { return o.ETag != "" }) {
				return nil
			}
			var b strings.Builder
			b.WriteString("<DeleteResult>")
			for _, o := range sd.objs {
				fmt.Fprintf(&b, "<Error><Key>%s</Key><Code>%s</Code></Error>", o.Key, code)
			}
			b.WriteString("</DeleteResult>")
			return answer(req, http.StatusOK, b.String())
		}
	}
	cases := []struct {
		name   string
		refuse func(*http.Request, sentDelete) *http.Response
		batch  bool // only DeleteObjects is refused
	}{
		{"501-NotImplemented", refusal(http.StatusNotImplemented, "NotImplemented"), false},
		{"400-InvalidArgument", refusal(http.StatusBadRequest, "InvalidArgument"), false},
		{"400-InvalidRequest", refusal(http.StatusBadRequest, "InvalidRequest"), false},
		{"per-key-NotImplemented", perKey("NotImplemented"), true},
		// A server that fails every condition, though the objects still
		// have the ETags sent, would otherwise keep every entry forever.
		{"412-always", refusal(http.StatusPreconditionFailed, "PreconditionFailed"), false},
		{"per-key-PreconditionFailed-always", perKey("PreconditionFailed"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.store(t, nil)
			for _, k := range []string{"a", "b", "c", "d"} {
				if _, err := s.Put(bg, remote.Meta{Key: k}, bytes.NewReader([]byte(k))); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond) // distinct last accesses
			}
			c := &condDeletes{e: e, refuse: tc.refuse}
			e.rec.setFault(c.fault)
			defer e.rec.setFault(nil)
			conditional := func(batch bool) int {
				k := 0
				for _, sd := range c.requests() {
					if sd.batch == batch && slices.ContainsFunc(sd.objs, func(o delObject) bool { return o.ETag != "" }) {
						k++
					}
				}
				return k
			}
			// Two prunes, one victim each.
			for i, limit := range []int{3, 2} {
				evicted, err := s.Prune(bg, policy.Limits{MaxEntries: limit})
				if err != nil || evicted != 1 {
					t.Fatalf("Prune %d on a server refusing conditional deletes: evicted %d, %v; want 1, nil", i+1, evicted, err)
				}
			}
			if got := e.objects(t, "ci/"+manifestsDir); len(got) != 2 {
				t.Fatalf("manifests left after two prunes: %q; want two", got)
			}
			if k := conditional(true); k != 1 {
				t.Errorf("%d DeleteObjects carried ETags; want 1, the refused one", k)
			}
			if tc.batch {
				return
			}
			for _, k := range []string{"c", "d"} {
				if err := s.Delete(bg, k); err != nil {
					t.Fatalf("Delete %q on a server refusing If-Match: %v", k, err)
				}
			}
			if got := e.objects(t, "ci/"); len(got) != 0 {
				t.Fatalf("objects left after deleting every key: %q", got)
			}
			if k := conditional(false); k != 1 {
				t.Errorf("%d DeleteObject requests carried If-Match; want 1, the refused one", k)
			}
		})
	}
}
