package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// bound is how long any faulted call below may take: generous, because
// the point is that it ends, not how fast.
const bound = 60 * time.Second

// hooked is an http.RoundTripper in front of the env's recorder that
// lets a test stall, lose or slow a request: hook decides, and may call
// next itself.
type hooked struct {
	next http.RoundTripper
	hook atomic.Pointer[func(req *http.Request, next http.RoundTripper) (*http.Response, error)]
}

func (h *hooked) RoundTrip(req *http.Request) (*http.Response, error) {
	if f := h.hook.Load(); f != nil {
		return (*f)(req, h.next)
	}
	return h.next.RoundTrip(req)
}

func (h *hooked) set(f func(req *http.Request, next http.RoundTripper) (*http.Response, error)) {
	if f == nil {
		h.hook.Store(nil)
		return
	}
	h.hook.Store(&f)
}

// timeoutStore returns a store of e whose requests go through a hooked
// transport, with short timeouts and three attempts.
func timeoutStore(t *testing.T, e *env, edit func(*Config)) (*Store, *hooked) {
	t.Helper()
	h := &hooked{next: e.rec}
	s := e.store(t, func(c *Config) {
		c.HTTPClient = &http.Client{Transport: h}
		c.MaxAttempts = 3
		c.IdleTimeout = time.Second
		c.RequestTimeout = 20 * time.Second
		if edit != nil {
			edit(c)
		}
	})
	return s, h
}

// waitDone blocks until req's context ends, as a server that accepted the
// request and went silent, and returns what the transport would.
func waitDone(req *http.Request) error {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	<-req.Context().Done()
	return context.Cause(req.Context())
}

// stallBody yields n bytes of its body, then blocks until ctx ends.
type stallBody struct {
	io.ReadCloser
	ctx context.Context
	n   int
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		<-b.ctx.Done()
		return 0, context.Cause(b.ctx)
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	n, err := b.ReadCloser.Read(p)
	b.n -= n
	return n, err
}

// trickleBody yields one small read every 20ms, forever making progress
// and never finishing in time.
type trickleBody struct {
	io.ReadCloser
	ctx context.Context
}

func (b *trickleBody) Read(p []byte) (int, error) {
	select {
	case <-time.After(20 * time.Millisecond):
	case <-b.ctx.Done():
		return 0, context.Cause(b.ctx)
	}
	return b.ReadCloser.Read(p[:min(len(p), 512)])
}

// isDataGet reports whether req reads a data object.
func isDataGet(req *http.Request) bool {
	return req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/"+dataDir)
}

func isPart(req *http.Request) bool {
	return req.Method == http.MethodPut && strings.Contains(req.URL.RawQuery, "partNumber=")
}

// checkTimeoutErr fails t unless err names key and says what happened.
func checkTimeoutErr(t *testing.T, err error, key, word string, took time.Duration) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) || !strings.Contains(err.Error(), word) {
		t.Errorf("error %q does not name key %q and say %q", err, key, word)
	}
	var te *timeoutError
	if !errors.As(err, &te) {
		t.Errorf("error %q does not wrap a timeoutError", err)
	}
	if took > bound {
		t.Errorf("took %v, want well under %v", took, bound)
	}
}

func TestTimeoutConfig(t *testing.T) {
	clearAWSEnv(t)
	base := Config{Bucket: "b", Endpoint: "http://127.0.0.1:1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	for name, edit := range map[string]func(*Config){
		"idle":    func(c *Config) { c.IdleTimeout = -time.Second },
		"request": func(c *Config) { c.RequestTimeout = -time.Second },
	} {
		cfg := base
		edit(&cfg)
		if _, err := New(bg, cfg); !errors.Is(err, tiercache.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	s, err := New(bg, base)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.IdleTimeout != DefaultIdleTimeout || s.cfg.RequestTimeout != DefaultRequestTimeout {
		t.Errorf("defaults: idle %v, request %v", s.cfg.IdleTimeout, s.cfg.RequestTimeout)
	}
	if _, ok := s.client.Options().HTTPClient.(*timeoutClient); !ok {
		t.Errorf("client %T does not enforce the timeouts", s.client.Options().HTTPClient)
	}
	// Faults make the SDK warn (about bodies it cannot drain): a library
	// must not print.
	if _, ok := s.client.Options().Logger.(logging.Nop); !ok {
		t.Errorf("the SDK logs with %T, want logging.Nop", s.client.Options().Logger)
	}
	// Big parts get time to move at the minimum rate.
	cfg := base
	cfg.PartSize = 1 << 30
	if s, err = New(bg, cfg); err != nil {
		t.Fatal(err)
	}
	if want := (1 << 30) / minRate * time.Second; s.cfg.RequestTimeout != want {
		t.Errorf("request timeout for 1 GiB parts: %v, want %v", s.cfg.RequestTimeout, want)
	}
}

// TestStalledHeaders: a server that accepts a request and never answers
// costs IdleTimeout per attempt; the SDK retries it once, and the error
// names the key and the stall. Two silent attempts in a row, with no
// answer between them, are a dead server: no third.
func TestStalledHeaders(t *testing.T) {
	e := newEnv(t)
	s, h := timeoutStore(t, e, nil)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, strings.NewReader("tree")); err != nil {
		t.Fatal(err)
	}
	var stalled atomic.Int64
	stallManifest := func(times int64) func(*http.Request, http.RoundTripper) (*http.Response, error) {
		return func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
			if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/"+manifestsDir) && stalled.Add(1) <= times {
				return nil, waitDone(req)
			}
			return next.RoundTrip(req)
		}
	}

	h.set(stallManifest(1))
	if b, err := readAll(t, s, "k"); err != nil || string(b) != "tree" {
		t.Fatalf("one stall: %q, %v", b, err)
	}

	stalled.Store(0)
	h.set(stallManifest(1 << 30))
	start := time.Now()
	_, err := s.Stat(bg, "k")
	checkTimeoutErr(t, err, "k", "stalled", time.Since(start))
	if n := stalled.Load(); n != 2 || !strings.Contains(err.Error(), "not retried") {
		t.Errorf("%d attempts, %v; want 2, the second not retried", n, err)
	}
}

// TestStalledBody: a body that stops mid-transfer is abandoned after
// IdleTimeout and resumed where it stopped; one that always stops fails.
func TestStalledBody(t *testing.T) {
	e := newEnv(t)
	s, h := timeoutStore(t, e, nil)
	data := randBytes(11, MinPartSize+12345)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	const cut = 100 << 10
	var gets atomic.Int64
	stallData := func(times int64) func(*http.Request, http.RoundTripper) (*http.Response, error) {
		return func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err == nil && isDataGet(req) && gets.Add(1) <= times {
				resp.Body = &stallBody{ReadCloser: resp.Body, ctx: req.Context(), n: cut}
			}
			return resp, err
		}
	}

	h.set(stallData(1))
	e.rec.reset()
	back, err := readAll(t, s, "k")
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("one stalled body: %d bytes, %v", len(back), err)
	}
	resumed := e.rec.requests(func(r request) bool {
		return r.method == "GET" && r.isData() && strings.HasPrefix(r.header.Get("Range"), fmt.Sprintf("bytes=%d-", cut))
	})
	if len(resumed) != 1 {
		t.Errorf("%d GETs resumed at byte %d, want 1", len(resumed), cut)
	}

	gets.Store(0)
	h.set(stallData(1 << 30))
	start := time.Now()
	_, err = readAll(t, s, "k")
	checkTimeoutErr(t, err, "k", "stalled", time.Since(start))
}

// TestStalledUpload: a part the server never answers is retried; a part
// it never answers at all fails the Put, and the upload is aborted.
func TestStalledUpload(t *testing.T) {
	e := newEnv(t)
	s, h := timeoutStore(t, e, func(c *Config) { c.Concurrency = 2 })
	data := randBytes(12, 2*MinPartSize+99)
	var parts atomic.Int64
	stallPart2 := func(times int64) func(*http.Request, http.RoundTripper) (*http.Response, error) {
		return func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
			if isPart(req) && strings.Contains(req.URL.RawQuery, "partNumber=2") && parts.Add(1) <= times {
				// Take the whole body, then say nothing.
				_, _ = io.Copy(io.Discard, req.Body)
				return nil, waitDone(req)
			}
			return next.RoundTrip(req)
		}
	}

	h.set(stallPart2(1))
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatalf("one stalled part: %v", err)
	}
	h.set(nil)
	if back, err := readAll(t, s, "k"); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back: %d bytes, %v", len(back), err)
	}

	parts.Store(0)
	h.set(stallPart2(1 << 30))
	start := time.Now()
	_, err := s.Put(bg, remote.Meta{Key: "k2"}, bytes.NewReader(data))
	checkTimeoutErr(t, err, "k2", "stalled", time.Since(start))
	if n := parts.Load(); n != 2 {
		t.Errorf("part 2 sent %d times, want 2 (two silent attempts in a row end it)", n)
	}
	h.set(nil)
	assertNoUploads(t, e)
	if _, err := s.Stat(bg, "k2"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("k2 after the failed Put: %v, want not found", err)
	}
}

// TestRequestTimeout: a server that trickles bytes never trips the idle
// timeout, so the request timeout cuts the attempt, and the range resumes.
func TestRequestTimeout(t *testing.T) {
	e := newEnv(t)
	s, h := timeoutStore(t, e, func(c *Config) {
		c.IdleTimeout = 10 * time.Second
		c.RequestTimeout = 500 * time.Millisecond
	})
	data := randBytes(13, 300<<10)
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int64
	trickle := func(times int64) func(*http.Request, http.RoundTripper) (*http.Response, error) {
		return func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err == nil && isDataGet(req) && gets.Add(1) <= times {
				resp.Body = &trickleBody{ReadCloser: resp.Body, ctx: req.Context()}
			}
			return resp, err
		}
	}
	h.set(trickle(1))
	if back, err := readAll(t, s, "k"); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("one trickling body: %d bytes, %v", len(back), err)
	}
	if n := gets.Load(); n < 2 {
		t.Errorf("%d data GETs, want a resumed one", n)
	}

	gets.Store(0)
	h.set(trickle(1 << 30))
	start := time.Now()
	_, err := readAll(t, s, "k")
	checkTimeoutErr(t, err, "k", "timed out", time.Since(start))
}

// lose forwards req, then drops the answer as a connection reset would.
func lose(req *http.Request, next http.RoundTripper) (*http.Response, error) {
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, fmt.Errorf("read tcp: %w", errConnReset)
}

// TestLostAnswers: requests that took effect but whose answers were lost
// are retried without leaving stray uploads or failing the Put.
func TestLostAnswers(t *testing.T) {
	e := newEnv(t)
	s, h := timeoutStore(t, e, nil)
	data := randBytes(14, MinPartSize+1)
	for _, tc := range []struct {
		name  string
		match func(*http.Request) bool
	}{
		{"create", func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploads") }},
		{"complete", func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploadId") }},
	} {
		var once sync.Once
		h.set(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
			lost := false
			if tc.match(req) {
				once.Do(func() { lost = true })
			}
			if lost {
				return lose(req, next)
			}
			return next.RoundTrip(req)
		})
		key := "lost-" + tc.name
		if _, err := s.Put(bg, remote.Meta{Key: key}, bytes.NewReader(data)); err != nil {
			t.Errorf("%s answer lost: Put: %v", tc.name, err)
			continue
		}
		h.set(nil)
		if back, err := readAll(t, s, key); err != nil || !bytes.Equal(back, data) {
			t.Errorf("%s answer lost: read back %d bytes, %v", tc.name, len(back), err)
		}
		assertNoUploads(t, e)
	}

	// A manifest body cut short is read again.
	var cuts atomic.Int64
	h.set(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/"+manifestsDir) && cuts.Add(1) == 1 {
			resp.Body = &cutBody{ReadCloser: resp.Body, n: 10}
		}
		return resp, err
	})
	if _, err := s.Stat(bg, "lost-create"); err != nil {
		t.Errorf("Stat with a cut manifest body: %v", err)
	}
	if n := cuts.Load(); n != 2 {
		t.Errorf("%d manifest GETs, want 2", n)
	}
}

// assertNoUploads fails t if the env's bucket holds unfinished multipart
// uploads.
func assertNoUploads(t *testing.T, e *env) {
	t.Helper()
	ups, err := e.raw.ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: &e.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d multipart uploads left", len(ups.Uploads))
	}
}

// silentNext is an aws.HTTPClient whose answer is up to answer: nil
// stalls until the request's context ends, as a server gone quiet.
type silentNext struct{ answer func() *http.Response }

func (s silentNext) Do(req *http.Request) (*http.Response, error) {
	if r := s.answer(); r != nil {
		return r, nil
	}
	<-req.Context().Done()
	return nil, context.Cause(req.Context())
}

// TestSilentAttemptsInFlightTogether: attempts in flight together when
// the server went quiet (the parts of one upload) are retried, all of
// them; an attempt begun after they ended silent is not, and an answer
// in between starts the count again.
func TestSilentAttemptsInFlightTogether(t *testing.T) {
	var answering atomic.Bool
	c := &timeoutClient{
		next: silentNext{answer: func() *http.Response {
			if answering.Load() {
				return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}
			}
			return nil
		}},
		idle: 50 * time.Millisecond, request: bound,
	}
	do := func() error {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://127.0.0.1:1/b/k", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	final := func(err error) bool {
		var te *timeoutError
		return errors.As(err, &te) && te.final
	}
	together := func() []error {
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { errs[i] = do() })
		}
		wg.Wait()
		return errs
	}
	for i, err := range together() {
		if err == nil || final(err) {
			t.Errorf("attempt %d of 4 in flight together: %v; want a retried stall", i, err)
		}
	}
	if err := do(); !final(err) {
		t.Errorf("an attempt begun after those ended silent: %v; want it not retried", err)
	}
	answering.Store(true)
	if err := do(); err != nil {
		t.Fatal(err)
	}
	answering.Store(false)
	if err := do(); err == nil || final(err) {
		t.Errorf("the first silent attempt after an answer: %v; want a retried stall", err)
	}
}

// doFunc is an aws.HTTPClient made of a function.
type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(req *http.Request) (*http.Response, error) { return f(req) }

// TestSilenceInBodies: a response body that stops finds the server
// silent, as an attempt with no answer does, so the silent attempt
// after it (a resume) is not retried; and bytes of a body are an
// answer, after which a silent attempt is retried again.
func TestSilenceInBodies(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	var body atomic.Pointer[func(ctx context.Context) io.ReadCloser]
	c := &timeoutClient{
		next: doFunc(func(req *http.Request) (*http.Response, error) {
			if f := body.Load(); f != nil {
				return &http.Response{StatusCode: 200, Body: (*f)(req.Context())}, nil
			}
			<-req.Context().Done()
			return nil, context.Cause(req.Context())
		}),
		idle: 50 * time.Millisecond, request: bound,
	}
	answer := func(f func(ctx context.Context) io.ReadCloser) *http.Response {
		body.Store(&f)
		defer body.Store(nil)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://127.0.0.1:1/b/k", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	silentFinal := func() bool {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://127.0.0.1:1/b/k", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Do(req)
		var te *timeoutError
		if !errors.As(err, &te) || !te.idle {
			t.Fatalf("a silent attempt: %v, want a stall", err)
		}
		return te.final
	}

	resp := answer(func(ctx context.Context) io.ReadCloser {
		return &stallBody{ReadCloser: io.NopCloser(strings.NewReader("ab")), ctx: ctx, n: 1}
	})
	_, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if te := (*timeoutError)(nil); !errors.As(err, &te) || !te.idle {
		t.Fatalf("a body that stops: %v, want a stall", err)
	}
	if !silentFinal() {
		t.Error("a silent attempt after a body stopped was retried; want it the last")
	}

	resp = answer(func(context.Context) io.ReadCloser { return pr })
	defer resp.Body.Close()
	if silentFinal() {
		t.Error("a silent attempt after an answer was not retried")
	}
	go func() { _, _ = pw.Write([]byte("x")) }()
	if n, err := resp.Body.Read(make([]byte, 1)); n != 1 {
		t.Fatalf("body read: %d bytes, %v", n, err)
	}
	if silentFinal() {
		t.Error("a silent attempt after body bytes arrived was not retried; want them counted as an answer")
	}
}

// TestForeignStall: an attempt cancelled by its parent context with
// another attempt's stall as the cause (an errgroup cancels the other
// parts of an upload with the failed part's error) did not stall: it
// neither finds the server silent nor rewrites that error.
func TestForeignStall(t *testing.T) {
	c := &timeoutClient{next: silentNext{answer: func() *http.Response { return nil }}, idle: bound, request: bound}
	other := &timeoutError{method: http.MethodPut, idle: true, limit: time.Second, final: true}
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(fmt.Errorf("upload part 1: %w", other))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://127.0.0.1:1/b/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(req); !errors.Is(err, other) {
		t.Fatalf("Do under a cancelled context: %v, want its cause", err)
	}
	if !other.final {
		t.Error("the other attempt's error was rewritten: no longer final")
	}
	if c.silentSince.Load() != 0 {
		t.Error("an attempt cancelled by its parent found the server silent")
	}
}

// TestDeadline: a server that trickles bytes trips neither the idle nor
// the request timeout in time, but the Store's deadline cuts the download
// off, and is not retried; after it, no request is sent at all.
func TestDeadline(t *testing.T) {
	e := newEnv(t)
	data := randBytes(14, 300<<10)
	if _, err := e.store(t, nil).Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	const allowed = 1500 * time.Millisecond
	s, h := timeoutStore(t, e, func(c *Config) {
		c.IdleTimeout = 10 * time.Second
		c.Deadline = time.Now().Add(allowed)
	})
	var gets atomic.Int64
	h.set(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && isDataGet(req) {
			gets.Add(1)
			resp.Body = &trickleBody{ReadCloser: resp.Body, ctx: req.Context()}
		}
		return resp, err
	})
	start := time.Now()
	_, err := readAll(t, s, "k")
	took := time.Since(start)
	if !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), `"k"`) || !strings.Contains(err.Error(), "deadline passed") {
		t.Fatalf("Open of a trickling object past the deadline: %v; want ErrDeadline, naming the key", err)
	}
	if took > bound {
		t.Errorf("took %v, want well under %v", took, bound)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d data GETs, want 1: nothing is retried past the deadline", n)
	}

	e.rec.reset()
	if _, err := s.Stat(bg, "k"); !errors.Is(err, ErrDeadline) {
		t.Errorf("Stat past the deadline: %v, want ErrDeadline", err)
	}
	if _, err := s.Put(bg, remote.Meta{Key: "k2"}, bytes.NewReader(data)); !errors.Is(err, ErrDeadline) {
		t.Errorf("Put past the deadline: %v, want ErrDeadline", err)
	}
	if n := len(e.rec.requests(func(request) bool { return true })); n != 0 {
		t.Errorf("%d requests sent past the deadline, want none", n)
	}
}

// partNum returns the part number of an UploadPart request.
func partNum(req *http.Request) int {
	n, _ := strconv.Atoi(req.URL.Query().Get("partNumber"))
	return n
}

// counts counts requests by a small integer (a part, a range).
type counts struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *counts) add(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[i]++
	return c.n[i]
}

func (c *counts) get() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// rangeStart returns the first byte a ranged GET asks for.
func rangeStart(req *http.Request) int64 {
	s, _ := strings.CutPrefix(req.Header.Get("Range"), "bytes=")
	s, _, _ = strings.Cut(s, "-")
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// quietBody is a response body of a server that may go quiet: it stops
// mid-transfer once quiet is set, and sets it itself once ready and
// left bytes have been read from such bodies (every body of one
// download shares left).
type quietBody struct {
	io.ReadCloser
	ctx   context.Context
	quiet *atomic.Bool
	left  *atomic.Int64
	ready func() bool
}

func (b *quietBody) Read(p []byte) (int, error) {
	if b.quiet.Load() {
		<-b.ctx.Done()
		return 0, context.Cause(b.ctx)
	}
	p = p[:min(len(p), 32<<10)]
	n, err := b.ReadCloser.Read(p)
	if b.left.Add(-int64(n)) <= 0 && b.ready() {
		b.quiet.Store(true)
	}
	return n, err
}

// TestQuietDuringUpload: a server that takes every part of an upload and
// answers none (MinIO stopped with SIGSTOP mid-push) gets one retry of
// each part in flight, not MaxAttempts: the retries begin after the
// first part was found silent, with no answer since, so they are the
// last. The Put fails with a stall, well before MaxAttempts idle
// timeouts, and the upload is aborted.
func TestQuietDuringUpload(t *testing.T) {
	e := newEnv(t)
	const idle, attempts = time.Second, 5
	s, h := timeoutStore(t, e, func(c *Config) {
		c.Concurrency = 4
		c.MaxAttempts = attempts
		c.IdleTimeout = idle
	})
	data := randBytes(15, 3*MinPartSize+99) // 4 parts, all in flight at once
	var sent counts
	h.set(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if isPart(req) {
			sent.add(partNum(req))
			_, _ = io.Copy(io.Discard, req.Body)
			return nil, waitDone(req)
		}
		return next.RoundTrip(req)
	})
	start := time.Now()
	_, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data))
	took := time.Since(start)
	checkTimeoutErr(t, err, "k", "stalled", took)
	if err != nil && !strings.Contains(err.Error(), "not retried") {
		t.Errorf("error %q does not say the last attempt was not retried", err)
	}
	got := sent.get()
	if len(got) == 0 {
		t.Fatal("no part was sent")
	}
	for part, n := range got {
		if n > 2 {
			t.Errorf("part %d sent %d times, want at most 2 (all parts: %v)", part, n, got)
		}
	}
	// Each part waits out two idle timeouts; MaxAttempts in a row would
	// mean no retry was the last. The margin absorbs a loaded machine.
	if took >= attempts*idle {
		t.Errorf("took %v, want well under %d × the idle timeout", took, attempts)
	}
	h.set(nil)
	assertNoUploads(t, e)
}

// TestQuietDuringDownload: a server that goes quiet in the middle of a
// download (every range in flight stops, and so does every request sent
// after) costs each range one resume, not one resume and MaxAttempts
// retries of it: a body that stops counts as the server found silent,
// like a request with no answer.
func TestQuietDuringDownload(t *testing.T) {
	e := newEnv(t)
	const idle, attempts = time.Second, 5
	data := randBytes(16, 4*MinPartSize) // 4 ranges
	if _, err := e.store(t, nil).Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	s, h := timeoutStore(t, e, func(c *Config) {
		c.Concurrency = 4
		c.MaxAttempts = attempts
		c.IdleTimeout = idle
		// Jittered retries, as by default (the tests' backoff is
		// 10ms): the stalls of some requests then fall among the
		// retries of others.
		c.MaxBackoff = 2 * idle
	})
	var quiet atomic.Bool
	var left, answered atomic.Int64
	left.Store(1 << 20)
	var gets counts
	h.set(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if isDataGet(req) {
			gets.add(int(rangeStart(req) / MinPartSize))
		}
		if quiet.Load() {
			return nil, waitDone(req)
		}
		resp, err := next.RoundTrip(req)
		if err == nil && isDataGet(req) {
			answered.Add(1)
			// Quiet once every range is under way, mid-body.
			resp.Body = &quietBody{ReadCloser: resp.Body, ctx: req.Context(), quiet: &quiet, left: &left,
				ready: func() bool { return answered.Load() >= 4 }}
		}
		return resp, err
	})
	start := time.Now()
	_, err := readAll(t, s, "k")
	took := time.Since(start)
	checkTimeoutErr(t, err, "k", "stalled", took)
	if err != nil && !strings.Contains(err.Error(), "not retried") {
		t.Errorf("error %q does not say the last attempt was not retried", err)
	}
	if !quiet.Load() {
		t.Fatal("the server never went quiet")
	}
	got := gets.get()
	for chunk, n := range got {
		if n > 2 {
			t.Errorf("range %d requested %d times, want at most 2 (all ranges: %v)", chunk, n, got)
		}
	}
	if took >= attempts*idle {
		t.Errorf("took %v, want well under %d × the idle timeout", took, attempts)
	}
}

// TestQuietServerRecovers: a server that goes quiet and then answers
// again costs the requests in flight one retry each, and the transfer
// succeeds: finding the server silent must not cut short the attempts
// it answers, nor the siblings in flight when it went quiet.
func TestQuietServerRecovers(t *testing.T) {
	e := newEnv(t)
	s, h := timeoutStore(t, e, func(c *Config) {
		c.Concurrency = 4
		c.MaxAttempts = 5
	})
	data := randBytes(17, 3*MinPartSize+99)

	// Every part's first attempt is taken and never answered.
	var sent counts
	h.set(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if isPart(req) && sent.add(partNum(req)) == 1 {
			_, _ = io.Copy(io.Discard, req.Body)
			return nil, waitDone(req)
		}
		return next.RoundTrip(req)
	})
	if _, err := s.Put(bg, remote.Meta{Key: "k"}, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put through a server quiet for one attempt of each part: %v", err)
	}
	if got := sent.get(); len(got) != 4 || got[1] != 2 || got[2] != 2 || got[3] != 2 || got[4] != 2 {
		t.Errorf("parts sent %v, want each of 4 twice", got)
	}

	// Every range's first body stops mid-transfer; the resumes are
	// answered.
	const cut = 100 << 10
	var gets counts
	h.set(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && isDataGet(req) && gets.add(int(rangeStart(req)/MinPartSize)) == 1 {
			resp.Body = &stallBody{ReadCloser: resp.Body, ctx: req.Context(), n: cut}
		}
		return resp, err
	})
	back, err := readAll(t, s, "k")
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read through a server quiet for one attempt of each range: %d bytes, %v", len(back), err)
	}
	// The last range, 99 bytes, ends before the cut.
	if got := gets.get(); len(got) != 4 || got[0] != 2 || got[1] != 2 || got[2] != 2 || got[3] != 1 {
		t.Errorf("ranges requested %v, want the 3 full ones twice, the last once", got)
	}
}
