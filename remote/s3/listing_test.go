package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// tokenElem matches the continuation token of a ListObjectsV2 answer.
var tokenElem = regexp.MustCompile(`<NextContinuationToken>([^<]*)</NextContinuationToken>`)

// rewriteList makes the recorder answer the ListObjectsV2 requests that
// match with the real answer's body passed through edit.
func rewriteList(e *env, match func(*http.Request) bool, edit func(req *http.Request, body string) string) {
	e.rec.setFault(func(req *http.Request, n int) *http.Response {
		if req.Method != http.MethodGet || !strings.Contains(req.URL.RawQuery, "list-type=2") || !match(req) {
			return nil
		}
		resp, err := e.rec.base.RoundTrip(req)
		if err != nil {
			return nil // sent again, unedited
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		b = []byte(edit(req, string(b)))
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return resp
	})
}

// TestPruneTruncatedListingWithoutToken: a listing page that says it is
// truncated but gives no continuation token leaves the listing
// incomplete. Prune must fail rather than judge the bucket by part of
// it: entries whose data objects it did not see would look like
// manifests whose data is gone, which it deletes.
func TestPruneTruncatedListingWithoutToken(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, func(c *Config) { c.OrphanGrace = time.Nanosecond })
	s.pageSize = 2
	keys := []string{"a", "b", "c", "d", "e"}
	for _, k := range keys {
		if _, err := s.Put(bg, remote.Meta{Key: k, Size: 1}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the server clock has 1 s resolution
	rewriteList(e, func(req *http.Request) bool {
		return req.URL.Query().Get("prefix") == "ci/"+dataDir
	}, func(_ *http.Request, body string) string {
		return tokenElem.ReplaceAllString(body, "")
	})
	n, err := s.Prune(bg, policy.Limits{})
	e.rec.setFault(nil)
	if err == nil || n != 0 {
		t.Errorf("Prune over a listing truncated without a token = %d, %v; want an error", n, err)
	} else if !strings.Contains(err.Error(), "continuation token") {
		t.Errorf("Prune's error does not say what the server did wrong: %v", err)
	}
	for _, k := range keys {
		if back, err := readAll(t, s, k); err != nil || string(back) != k {
			t.Errorf("entry %q after the prune: %q, %v", k, back, err)
		}
	}
}

// TestListRepeatedToken: a server that answers a continuation token with
// the same token again, or with one it gave before, would be listed
// forever, one request after another; the listing must fail instead.
func TestListRepeatedToken(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	s.pageSize = 1
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Put(bg, remote.Meta{Key: k}, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, cycle := range []int{1, 2} {
		t.Run(fmt.Sprintf("cycle of %d", cycle), func(t *testing.T) {
			var (
				mu    sync.Mutex
				loop  = map[string]string{} // token asked -> token answered
				lists int
			)
			rewriteList(e, func(*http.Request) bool { return true }, func(req *http.Request, body string) string {
				mu.Lock()
				defer mu.Unlock()
				lists++
				asked := req.URL.Query().Get("continuation-token")
				if asked == "" {
					return body
				}
				if next, ok := loop[asked]; ok {
					return truncatedWith(body, next)
				}
				if cycle == 1 {
					loop[asked] = asked
					return truncatedWith(body, asked)
				}
				// The real answer, whose token is then answered with
				// the one asked now.
				if m := tokenElem.FindStringSubmatch(body); m != nil {
					next := html.UnescapeString(m[1])
					loop[asked], loop[next] = next, asked
				}
				return body
			})
			ctx, cancel := context.WithTimeout(bg, 5*time.Second)
			defer cancel()
			_, err := s.List(ctx, "")
			e.rec.setFault(nil)
			mu.Lock()
			defer mu.Unlock()
			if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "continuation token") {
				t.Errorf("List over a server repeating a token: %v, after %d list requests; want an error naming the token", err, lists)
			}
		})
	}
}

// truncatedWith returns the listing page body, marked truncated, with
// token as its continuation token.
func truncatedWith(body, token string) string {
	body = tokenElem.ReplaceAllString(body, "")
	body = strings.Replace(body, "<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated>", 1)
	return strings.Replace(body, "<IsTruncated>true</IsTruncated>",
		"<IsTruncated>true</IsTruncated><NextContinuationToken>"+html.EscapeString(token)+"</NextContinuationToken>", 1)
}

// markerElems matches the next-page markers of a ListMultipartUploads
// answer.
var markerElems = regexp.MustCompile(`<Next(KeyMarker|UploadIdMarker)>[^<]*</Next(KeyMarker|UploadIdMarker)>|<Next(KeyMarker|UploadIdMarker)/>`)

// TestCheckUploadsListingEnds: Check lists the multipart uploads in
// flight page by page. A page marked truncated with no next marker (the
// SDK's paginator then starts over from the first page), or with the
// markers just asked for, must end the listing with an error, not loop
// forever.
func TestCheckUploadsListingEnds(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("k")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, markers string }{
		{"no marker", ""},
		{"same marker", "<NextKeyMarker>ci/data/k/x</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lists atomic.Int64
			e.rec.setFault(func(req *http.Request, n int) *http.Response {
				if req.Method != http.MethodGet || !req.URL.Query().Has("uploads") {
					return nil
				}
				lists.Add(1)
				resp, err := e.rec.base.RoundTrip(req)
				if err != nil {
					return nil
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				body := markerElems.ReplaceAllString(string(b), "")
				body = strings.Replace(body, "<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated>"+tc.markers, 1)
				resp.Body = io.NopCloser(strings.NewReader(body))
				resp.ContentLength = int64(len(body))
				resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
				return resp
			})
			defer e.rec.setFault(nil)
			ctx, cancel := context.WithTimeout(bg, 5*time.Second)
			defer cancel()
			// The entries are checked all the same; the uploads are
			// reported not looked for, and why.
			r, err := s.Check(ctx, remote.CheckOptions{})
			if err != nil || len(r.Unchecked) != 1 || !strings.Contains(r.Unchecked[0], "marker") {
				t.Errorf("Check over an endless uploads listing: %v, unchecked %q, after %d list requests; want the uploads unchecked, naming the marker", err, r.Unchecked, lists.Load())
			}
		})
	}
}
