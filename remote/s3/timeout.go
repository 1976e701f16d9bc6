package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// timeoutClient bounds every request a Store sends, whatever HTTP client
// carries it. The SDK's client has a dial and a TLS handshake timeout but
// none on a server that accepts a request and then goes silent, which
// would hang a pull or a push forever. Two limits apply to each attempt:
//
//   - idle: no progress for this long fails the attempt. Progress is the
//     transport taking request-body bytes, the response headers arriving,
//     or a read of the response body returning; the clock runs only while
//     we wait on the server (before the headers, and inside a body Read),
//     so a slow consumer of a body is never mistaken for a stall.
//   - request: the attempt must be over (body read or closed) this long
//     after it started, so a server trickling bytes cannot hold it either.
//
// Expiry cancels the request's context with a *timeoutError, which the
// transport turns into the error of the pending call. The SDK retries that
// error before the headers; after them the Store resumes or re-reads.
//
// A server that accepts connections and never answers would cost
// MaxAttempts idle timeouts per request. So the client remembers when
// it first found the server silent (an attempt that got no answer at
// all, or a response body that stopped), until anything arrives from
// it (response headers or body bytes); an attempt begun after that
// which gets no answer at all is not retried: a dead server costs two.
// The requests in flight when it went quiet (the parts of one upload,
// the ranges of one download) each get one retry or resume, begun
// after the first of them was found silent, so their retries are the
// last. Later silences must not move the mark: each sibling's stall
// would then pass the start of retries already under way, and none
// would ever be the last.
type timeoutClient struct {
	next    aws.HTTPClient
	idle    time.Duration
	request time.Duration
	// deadline, if set, ends every attempt (see Config.Deadline).
	deadline time.Time
	// silentSince is when the server was first found silent (see
	// monoNow), 0 once it answered since.
	silentSince atomic.Int64
}

// monoEpoch anchors monoNow.
var monoEpoch = time.Now()

// monoNow returns the time in nanoseconds on the monotonic clock,
// never 0: a wall clock stepped back would make a retry look begun
// before the silence it follows.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// silent records that the server was found silent, unless it already
// was with no answer since.
func (c *timeoutClient) silent() { c.silentSince.CompareAndSwap(0, monoNow()) }

// answered records that something arrived from the server.
func (c *timeoutClient) answered() {
	// Load first: body reads call this often, and most find it 0.
	if c.silentSince.Load() != 0 {
		c.silentSince.Store(0)
	}
}

// timeoutError reports an attempt cut off by timeoutClient. It is
// transient: it says Timeout and RetryableError, which the SDK's retryer
// and net/http's callers understand.
type timeoutError struct {
	method string
	idle   bool
	limit  time.Duration
	// final marks a silent attempt begun after the server was found
	// silent, with no answer since (see timeoutClient), which is not
	// retried. Set before Do returns.
	final bool
}

func (e *timeoutError) Error() string {
	if e.final {
		return fmt.Sprintf("s3: %s request stalled: no answer for %v (idle timeout), nor since an earlier request stalled; not retried", e.method, e.limit)
	}
	if e.idle {
		return fmt.Sprintf("s3: %s request stalled: no progress for %v (idle timeout)", e.method, e.limit)
	}
	return fmt.Sprintf("s3: %s request timed out: not done after %v (request timeout)", e.method, e.limit)
}

// Timeout reports true: the error is a timeout.
func (e *timeoutError) Timeout() bool { return true }

// RetryableError reports whether the SDK's retryer may retry it.
func (e *timeoutError) RetryableError() bool { return !e.final }

// deadlineError reports an attempt cut off, or refused, at the Store's
// deadline. It is not retried: every later attempt would fail alike.
type deadlineError struct{ method string }

func (e *deadlineError) Error() string {
	return fmt.Sprintf("s3: %s request cut off: the store's deadline passed", e.method)
}

// Is makes errors.Is(err, ErrDeadline) hold.
func (e *deadlineError) Is(target error) bool { return target == ErrDeadline }

// Timeout reports true: the error is a timeout.
func (e *deadlineError) Timeout() bool { return true }

// RetryableError reports false: the SDK's retryer must not retry it.
func (e *deadlineError) RetryableError() bool { return false }

// Do sends req under the idle and request limits, and the deadline.
func (c *timeoutClient) Do(req *http.Request) (*http.Response, error) {
	started := monoNow()
	method := req.Method
	left := time.Until(c.deadline)
	if !c.deadline.IsZero() && left <= 0 {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, &deadlineError{method: method}
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{ctx: ctx, cancel: cancel, idleLimit: c.idle, sending: true}
	if !c.deadline.IsZero() {
		w.deadline = time.AfterFunc(left, func() { cancel(&deadlineError{method: method}) })
	}
	// The idle clock runs from the start: dialing and waiting for the
	// headers are waits on the server too.
	w.idle = time.AfterFunc(c.idle, func() {
		te := &timeoutError{method: method, idle: true, limit: c.idle}
		w.stall.Store(te)
		cancel(te)
	})
	w.total = time.AfterFunc(c.request, func() {
		cancel(&timeoutError{method: method, limit: c.request})
	})
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &requestBody{ReadCloser: req.Body, w: w}
		if getBody := req.GetBody; getBody != nil {
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := getBody()
				if err != nil || b == nil || b == http.NoBody {
					return b, err
				}
				return &requestBody{ReadCloser: b, w: w}, nil
			}
		}
	}
	resp, err := c.next.Do(req)
	w.responded()
	if err != nil {
		w.finish()
		err = w.explain(err)
		if te := w.stalled(err); te != nil {
			since := c.silentSince.Load()
			te.final = since != 0 && started > since
			c.silent()
		}
		return nil, err
	}
	c.answered()
	resp.Body = &responseBody{body: resp.Body, w: w, c: c}
	return resp, nil
}

// watch holds the clocks of one attempt.
type watch struct {
	ctx       context.Context
	cancel    context.CancelCauseFunc
	idle      *time.Timer
	idleLimit time.Duration
	total     *time.Timer
	deadline  *time.Timer // nil without a deadline

	mu sync.Mutex
	// sending is true until the response headers arrive: until then,
	// request-body reads are progress. The transport may still read the
	// body after a server answered early; that must not rearm the clock.
	sending bool

	// stall is the error of the idle clock, once it expired.
	stall atomic.Pointer[timeoutError]
}

// stalled returns the error of the attempt's own idle clock if err is
// it. Not any timeoutError err wraps: a cancelled parent context passes
// its cause down, and when a part of an upload fails, the errgroup
// cancels the other parts with that part's error, whose stall is not
// theirs (and whose final flag is not theirs to set).
func (w *watch) stalled(err error) *timeoutError {
	if te := w.stall.Load(); te != nil && errors.Is(err, te) {
		return te
	}
	return nil
}

// sent records progress sending the request.
func (w *watch) sent() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sending {
		w.idle.Reset(w.idleLimit)
	}
}

// responded ends the sending phase: from now on only response-body
// reads run the idle clock.
func (w *watch) responded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sending = false
	w.idle.Stop()
}

// finish stops the clocks and releases the attempt's context.
func (w *watch) finish() {
	w.idle.Stop()
	w.stopTotal()
	w.cancel(nil)
}

// stopTotal stops the clocks of the whole attempt.
func (w *watch) stopTotal() {
	w.total.Stop()
	if w.deadline != nil {
		w.deadline.Stop()
	}
}

// explain returns err, made to wrap the timeoutError or deadlineError
// that caused it if a clock expired and the transport reported something
// vaguer (a custom client may report only "context canceled").
func (w *watch) explain(err error) error {
	var te *timeoutError
	var de *deadlineError
	cause := context.Cause(w.ctx)
	if !errors.As(cause, &te) && !errors.As(cause, &de) || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w: %w", cause, err)
}

// requestBody counts the transport's reads of a request body as progress.
type requestBody struct {
	io.ReadCloser
	w *watch
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.sent()
	return n, err
}

// responseBody runs the idle clock during each Read and ends the attempt
// at EOF or Close. Like any response body, Close may be called while a
// Read is blocked (net/http then makes the Read fail). Its bytes are
// answers from the server, and a stall finds the server silent (see
// timeoutClient).
type responseBody struct {
	body io.ReadCloser
	w    *watch
	c    *timeoutClient
	eof  bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	if b.eof {
		return b.body.Read(p)
	}
	b.w.idle.Reset(b.w.idleLimit)
	n, err := b.body.Read(p)
	b.w.idle.Stop()
	if n > 0 {
		b.c.answered()
	}
	switch {
	case err == io.EOF:
		// Done: stop the clocks now, as a caller may be slow to Close.
		b.eof = true
		b.w.stopTotal()
	case err != nil:
		err = b.w.explain(err)
		// The resume that follows is this request's retry: if the
		// server says nothing to it either, that is the last.
		if b.w.stalled(err) != nil {
			b.c.silent()
		}
	}
	return n, err
}

func (b *responseBody) Close() error {
	err := b.body.Close()
	b.w.finish()
	return err
}
