package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestUntrustedCertificateNotRetried: a certificate the client refuses
// is refused again on every attempt, so a request fails after one
// handshake instead of MaxAttempts, with the TLS error kept.
func TestUntrustedCertificateNotRetried(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	var handshakes atomic.Int64
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		handshakes.Add(1)
		return nil, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	s, err := New(context.Background(), Config{
		Bucket: "b", Region: "us-east-1", Endpoint: srv.URL, MaxAttempts: 4, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(context.Background(), "k")
	var cert *tls.CertificateVerificationError
	if !errors.As(err, &cert) {
		t.Fatalf("Stat against an untrusted certificate: %v; want the certificate's error", err)
	}
	if n := handshakes.Load(); n != 1 {
		t.Errorf("%d TLS handshakes for one request; want 1: a refused certificate is not retried", n)
	}
}
