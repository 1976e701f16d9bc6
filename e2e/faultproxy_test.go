//go:build unix

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultKind is what a faultProxy rule does to a request.
type faultKind int

const (
	// fResetRequest reads n bytes of the request body, then resets the
	// connection (TCP RST) without forwarding the request.
	fResetRequest faultKind = iota + 1
	// fResetResponse forwards the request and resets the connection
	// after n bytes of the response body.
	fResetResponse
	// fTruncate forwards the request, sends the response headers
	// (with the full Content-Length) and n bytes of the body, then closes
	// the connection cleanly.
	fTruncate
	// fStatus answers status with an S3 XML error of code, without
	// forwarding the request.
	fStatus
	// fLatency waits delay, then forwards the request.
	fLatency
	// fStall accepts the request (reading whatever the client sends) and
	// answers nothing until the client gives up.
	fStall
	// fStallBody forwards the request, sends the response headers
	// and n bytes of the body, then nothing until the client gives up.
	fStallBody
	// fEmptyOK answers 200 with an empty body, without forwarding the
	// request: a gateway that accepts what it cannot do.
	fEmptyOK
	// fBefore runs before, then forwards the request: something else
	// happens to the bucket at that moment of a command.
	fBefore
)

func (k faultKind) String() string {
	switch k {
	case fResetRequest:
		return "reset-request"
	case fResetResponse:
		return "reset-response"
	case fTruncate:
		return "truncate-response"
	case fStatus:
		return "error-status"
	case fLatency:
		return "latency"
	case fStall:
		return "stall"
	case fStallBody:
		return "stall-body"
	case fEmptyOK:
		return "empty-ok"
	case fBefore:
		return "before"
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// faultSpec is what a faultRule does.
type faultSpec struct {
	kind   faultKind
	n      int64         // body bytes before a reset, truncation or stall
	status int           // fStatus
	code   string        // fStatus: the S3 error code
	delay  time.Duration // fLatency
	before func()        // fBefore
}

// Faults the tests use.
func faultSlowDown() faultSpec {
	return faultSpec{kind: fStatus, status: http.StatusServiceUnavailable, code: "SlowDown"}
}

func faultInternal() faultSpec {
	return faultSpec{kind: fStatus, status: http.StatusInternalServerError, code: "InternalError"}
}

func faultDenied() faultSpec {
	return faultSpec{kind: fStatus, status: http.StatusForbidden, code: "AccessDenied"}
}

// faultRule applies a fault to the requests it matches: every condition
// set must hold. The first rule with a firing left that matches a request
// wins; the others do not count it.
type faultRule struct {
	method string // exact; "" matches any
	path   string // substring of the URL path; "" matches any
	query  string // substring of the raw query; "" matches any
	header string // a header the request must carry; "" matches any
	skip   int    // let this many matching requests through first
	times  int    // fire this many times; -1 is forever
	fault  faultSpec

	seen  int // matching requests so far
	fired int
}

func (r *faultRule) matches(req *http.Request) bool {
	return (r.method == "" || req.Method == r.method) &&
		strings.Contains(req.URL.Path, r.path) &&
		strings.Contains(req.URL.RawQuery, r.query) &&
		(r.header == "" || req.Header.Get(r.header) != "")
}

// faultRequest is one request the proxy saw.
type faultRequest struct {
	method, path, query string
	fault               string // the fault applied, "" if forwarded as is
}

func (p faultRequest) String() string {
	s := p.method + " " + p.path
	if p.query != "" {
		s += "?" + p.query
	}
	if p.fault != "" {
		s += " [" + p.fault + "]"
	}
	return s
}

// faultProxy is an HTTP proxy in front of the shared MinIO that applies
// fault rules and records every request. Requests keep their Host header,
// so signatures made for the proxy's address verify at MinIO. It works on
// HTTP/1.1 connections it can hijack, so it can cut them mid-body or
// reset them.
type faultProxy struct {
	t      testing.TB
	URL    string
	target *url.URL
	tr     *http.Transport
	done   chan struct{} // closed at cleanup: stalls end

	mu    sync.Mutex
	rules []*faultRule
	log   []faultRequest
	sent  int64 // request body bytes forwarded to MinIO
	recv  int64 // response body bytes forwarded to the clients
}

// newFaultProxy starts a fault proxy to the shared MinIO, closed when t
// ends.
func newFaultProxy(t testing.TB) *faultProxy {
	t.Helper()
	target, err := url.Parse(server(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{
		t:      t,
		target: target,
		tr:     http.DefaultTransport.(*http.Transport).Clone(),
		done:   make(chan struct{}),
	}
	ps := httptest.NewServer(p)
	p.URL = ps.URL
	t.Cleanup(func() {
		close(p.done)
		ps.Close()
		p.tr.CloseIdleConnections()
	})
	return p
}

// add appends a faultRule and returns it, for its fired count.
func (p *faultProxy) add(r faultRule) *faultRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	rp := &r
	p.rules = append(p.rules, rp)
	return rp
}

// clear removes every faultRule.
func (p *faultProxy) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// firedCount returns how many times r fired.
func (p *faultProxy) firedCount(r *faultRule) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return r.fired
}

// requests returns what the proxy saw so far.
func (p *faultProxy) requests() []faultRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

// count returns how many requests had method and a path containing sub.
func (p *faultProxy) count(method, sub string) int {
	n := 0
	for _, r := range p.requests() {
		if r.method == method && strings.Contains(r.path, sub) {
			n++
		}
	}
	return n
}

// pick records req and returns the fault to apply, if any.
func (p *faultProxy) pick(req *http.Request) (faultSpec, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	entry := faultRequest{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery}
	var f faultSpec
	ok := false
	for _, r := range p.rules {
		if r.times >= 0 && r.fired >= r.times || !r.matches(req) {
			continue
		}
		r.seen++
		if r.seen <= r.skip {
			continue
		}
		r.fired++
		f, ok = r.fault, true
		entry.fault = f.kind.String()
		break
	}
	p.log = append(p.log, entry)
	return f, ok
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f, ok := p.pick(req)
	if !ok {
		p.forward(w, req)
		return
	}
	switch f.kind {
	case fResetRequest:
		_, _ = io.CopyN(io.Discard, req.Body, f.n)
		conn := p.hijack(w)
		resetConn(conn)
	case fStatus:
		// Take the body first, so the client reads the answer rather
		// than failing to write a body nobody reads.
		_, _ = io.Copy(io.Discard, req.Body)
		writeS3Error(w, req, f.status, f.code)
	case fEmptyOK:
		_, _ = io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusOK)
	case fBefore:
		f.before()
		p.forward(w, req)
	case fLatency:
		select {
		case <-time.After(f.delay):
		case <-p.done:
		}
		p.forward(w, req)
	case fStall:
		conn := p.hijack(w)
		p.hold(conn)
	case fResetResponse, fTruncate, fStallBody:
		resp, err := p.roundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		conn := p.hijack(w)
		bw := bufio.NewWriter(conn)
		writeRawHead(bw, resp)
		_, _ = io.CopyN(bw, resp.Body, f.n)
		_ = bw.Flush()
		switch f.kind {
		case fResetResponse:
			resetConn(conn)
		case fTruncate:
			_ = conn.Close()
		default:
			p.hold(conn)
		}
	default:
		panic(fmt.Sprintf("unknown fault %v", f.kind))
	}
}

// roundTrip sends req on to MinIO, keeping its Host and headers.
func (p *faultProxy) roundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.Host = req.Host
	if req.ContentLength == 0 {
		out.Body = nil
	}
	return p.tr.RoundTrip(out)
}

// bodyBytes returns how many request body bytes the proxy forwarded to
// MinIO so far: what the clients uploaded, counted at the transport.
func (p *faultProxy) bodyBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// countingBody counts what is read of a request body into its proxy.
type countingBody struct {
	io.ReadCloser
	p *faultProxy
}

func (b countingBody) Read(q []byte) (int, error) {
	n, err := b.ReadCloser.Read(q)
	b.p.mu.Lock()
	b.p.sent += int64(n)
	b.p.mu.Unlock()
	return n, err
}

// forward proxies req to MinIO unchanged.
func (p *faultProxy) forward(w http.ResponseWriter, req *http.Request) {
	if req.Body != nil {
		req.Body = countingBody{req.Body, p}
	}
	resp, err := p.roundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	n, _ := io.Copy(w, resp.Body)
	p.mu.Lock()
	p.recv += n
	p.mu.Unlock()
}

// respBytes returns how many response body bytes the proxy forwarded to
// its clients so far: what they downloaded, counted at the transport.
func (p *faultProxy) respBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recv
}

// hijack takes over the client connection.
func (p *faultProxy) hijack(w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.t.Errorf("fault proxy: hijack: %v", err)
		panic(http.ErrAbortHandler)
	}
	return conn
}

// hold keeps conn open and silent until the client closes it or the
// proxy shuts down. Whatever the client sends is read and dropped, as a
// server would that accepted the data and hung.
func (p *faultProxy) hold(conn net.Conn) {
	gone := make(chan struct{})
	go func() {
		select {
		case <-gone:
		case <-p.done:
			_ = conn.Close()
		}
	}()
	_, _ = io.Copy(io.Discard, conn)
	close(gone)
	_ = conn.Close()
}

// reset closes conn with a TCP RST rather than a FIN.
func resetConn(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// writeHead writes resp's status line and headers as HTTP/1.1, with the
// full Content-Length, so a short body is a truncation to the client.
func writeRawHead(w io.Writer, resp *http.Response) {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	h := resp.Header.Clone()
	h.Del("Transfer-Encoding")
	h.Del("Connection")
	h.Del("Content-Length")
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
	}
	_ = h.Write(w)
	_, _ = io.WriteString(w, "\r\n")
}

// writeS3Error answers like S3 does.
func writeS3Error(w http.ResponseWriter, req *http.Request, status int, code string) {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>injected by the fault proxy</Message><Resource>%s</Resource><RequestId>fault</RequestId></Error>`,
		code, req.URL.Path)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if req.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}
