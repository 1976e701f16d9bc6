package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote/s3"
	"github.com/tiercache/tiercache/tiered"
)

func TestEscapeAnnotation(t *testing.T) {
	got := escapeAnnotation("100% of key\r\nx")
	if want := "100%25 of key%0D%0Ax"; got != want {
		t.Errorf("escapeAnnotation = %q, want %q", got, want)
	}
}

// TestHint: each cause a user can fix gets its fix, and one the message
// already explains gets none.
func TestHint(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("remote get: %w", s3.ErrNoSuchBucket), "aws s3 mb"},
		{fmt.Errorf("remote get: %w", s3.ErrNotS3), ""},
		{fmt.Errorf("remote get: %w", s3.ErrAccessDenied), "permissions"},
		{fmt.Errorf("remote: %w", s3.ErrNoCredentials), "credentials"},
		{fmt.Errorf("remote: %w", s3.ErrCredentialService), "trust policy"},
		{fmt.Errorf("extract: %w", tiercache.ErrIntegrity), "tiercache rm KEY"},
		{fmt.Errorf("extract: %w", tiercache.ErrUnsafeArchive), "tiercache rm KEY"},
		{fmt.Errorf("remote get: %w", refused), "reachable"},
		{fmt.Errorf("%w: %w", tiercache.ErrLimitExceeded, tiered.ErrNoRoom), "prune"},
		{errors.New("something else"), ""},
	} {
		got := hint(c.err)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("hint(%v) = %q, want it to say %q", c.err, got, c.want)
		}
		if msg := withHint(c.err); !strings.HasPrefix(msg, c.err.Error()) {
			t.Errorf("withHint(%v) = %q, want the error first", c.err, msg)
		}
	}
}
