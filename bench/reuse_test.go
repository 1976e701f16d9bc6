//go:build unix

package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache/internal/fsutil"
)

// TestCountingProxy checks that the proxy forwards requests with their
// Host header and counts the body bytes each way.
func TestCountingProxy(t *testing.T) {
	var gotHost string
	var gotBody int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		b, _ := io.ReadAll(r.Body)
		gotBody = len(b)
		_, _ = w.Write(bytes.Repeat([]byte("r"), 1000))
	}))
	defer srv.Close()
	p, err := startCountingProxy(srv.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	req, err := http.NewRequest(http.MethodPut, p.URL+"/bucket/key?partNumber=1", bytes.NewReader(make([]byte, 12345)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if want := strings.TrimPrefix(p.URL, "http://"); gotHost != want {
		t.Errorf("the server saw Host %q, want the proxy's %q", gotHost, want)
	}
	if c := p.counts(); gotBody != 12345 || c.sent != 12345 || c.received != 1000 || c.requests != 1 {
		t.Errorf("server read %d bytes; proxy counted %+v; want 12345 sent, 1000 received, 1 request", gotBody, c)
	}
}

// TestMakeV2 checks the tree's second version: a copy with one new
// directory of reuseNewDirBytes and one file grown by a line, modes kept,
// and the tree itself untouched.
func TestMakeV2(t *testing.T) {
	work := t.TempDir()
	src := filepath.Join(work, "src")
	if err := planTree(2<<20, 1).generate(t.Context(), src, 1); err != nil {
		t.Fatal(err)
	}
	v2 := filepath.Join(work, "v2")
	t.Cleanup(func() {
		for _, d := range []string{src, v2} {
			if err := fsutil.RemoveAll(d); err != nil {
				t.Error(err)
			}
		}
	})
	b := &bench{cfg: config{seed: 1}, src: src, work: work}
	var res reuseResult
	if err := b.makeV2(t.Context(), v2, &res); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(v2, res.NewDir))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	if len(entries) != reuseNewDirFiles || n != reuseNewDirBytes || res.NewDirBytes != n {
		t.Errorf("new directory %s: %d files, %d bytes (reported %d); want %d files, %d bytes", res.NewDir, len(entries), n, res.NewDirBytes, reuseNewDirFiles, reuseNewDirBytes)
	}
	if _, err := os.Lstat(filepath.Join(src, res.NewDir)); err == nil {
		t.Errorf("the new directory is in the source tree too")
	}
	old, errOld := os.Stat(filepath.Join(src, res.ChangedFile))
	changed, errNew := os.Stat(filepath.Join(v2, res.ChangedFile))
	if errOld != nil || errNew != nil {
		t.Fatal(errOld, errNew)
	}
	if changed.Size() != old.Size()+res.ChangedBytes || changed.Mode() != old.Mode() {
		t.Errorf("changed file %s: %d bytes, %v; want %d bytes, %v", res.ChangedFile, changed.Size(), changed.Mode(), old.Size()+res.ChangedBytes, old.Mode())
	}
	parent := filepath.Dir(res.NewDir)
	po, _ := os.Stat(filepath.Join(src, parent))
	pn, _ := os.Stat(filepath.Join(v2, parent))
	if po == nil || pn == nil || po.Mode() != pn.Mode() {
		t.Errorf("the new directory's parent changed mode: %v, was %v", pn, po)
	}
}

// TestCountingProxyPaced: with a rate, request bodies cross the proxy no
// faster than it (a lower bound, so a slow machine cannot fail it).
func TestCountingProxyPaced(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	const rate, size = 4 << 20, 2 << 20
	p, err := startCountingProxy(srv.URL, rate)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	start := time.Now()
	resp, err := http.Post(p.URL+"/bucket/key", "application/octet-stream", bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took, least := time.Since(start), time.Duration(float64(size)/rate*0.9*float64(time.Second)); took < least || p.counts().sent != size {
		t.Errorf("%d bytes at %d B/s crossed in %v (at least %v expected), %d counted", size, rate, took, least, p.counts().sent)
	}
}
