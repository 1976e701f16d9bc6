package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tiercache/tiercache"
)

// httpErr builds an SDK error carrying only an HTTP status, like a HEAD
// response that has no error body.
func httpErr(status int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      fmt.Errorf("http %d", status),
	}}
}

func TestMapError(t *testing.T) {
	apiErr := func(code string) error {
		return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject",
			Err: &smithy.GenericAPIError{Code: code, Message: "msg"}}
	}
	cases := []struct {
		err  error
		want error // nil: none of ours
	}{
		{&smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &types.NoSuchKey{}}, tiercache.ErrNotFound},
		{apiErr("NoSuchKey"), tiercache.ErrNotFound},
		{apiErr("NotFound"), tiercache.ErrNotFound},
		{httpErr(404), tiercache.ErrNotFound},
		{apiErr("NoSuchBucket"), ErrNoSuchBucket},
		{apiErr("AccessDenied"), ErrAccessDenied},
		{apiErr("InvalidAccessKeyId"), ErrAccessDenied},
		{apiErr("SignatureDoesNotMatch"), ErrAccessDenied},
		{apiErr("ExpiredToken"), ErrAccessDenied},
		{httpErr(403), ErrAccessDenied},
		{apiErr("PreconditionFailed"), nil},
		{apiErr("InvalidRange"), tiercache.ErrIntegrity},
		{apiErr("EntityTooLarge"), tiercache.ErrLimitExceeded},
		{apiErr("SlowDown"), nil},
		{apiErr("InternalError"), nil},
		{httpErr(500), nil},
		{context.Canceled, context.Canceled},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), context.DeadlineExceeded},
	}
	sentinels := []error{tiercache.ErrNotFound, tiercache.ErrIntegrity, tiercache.ErrLimitExceeded,
		ErrAccessDenied, ErrNoSuchBucket, context.Canceled, context.DeadlineExceeded}
	for _, c := range cases {
		got := mapError(c.err, "my-bucket", "get manifest of", "the/key")
		for _, s := range sentinels {
			if want := s == c.want; errors.Is(got, s) != want {
				t.Errorf("mapError(%v): errors.Is(_, %v) = %v, want %v", c.err, s, !want, want)
			}
		}
		if !strings.Contains(got.Error(), `"the/key"`) {
			t.Errorf("mapError(%v) = %q does not name the key", c.err, got)
		}
		if c.want == ErrAccessDenied || c.want == ErrNoSuchBucket {
			if !strings.Contains(got.Error(), `"my-bucket"`) {
				t.Errorf("mapError(%v) = %q does not name the bucket", c.err, got)
			}
		}
		// The SDK error stays reachable for callers that need details.
		if c.want != tiercache.ErrNotFound && !errors.Is(got, c.err) {
			t.Errorf("mapError(%v) = %v does not wrap the original", c.err, got)
		}
	}
	if mapError(nil, "b", "op", "k") != nil {
		t.Error("mapError(nil) != nil")
	}
	// A 403 for the clock: not access denied, which would send the user
	// to the credentials and the bucket policy.
	skew := mapError(apiErr("RequestTimeTooSkewed"), "my-bucket", "get manifest of", "the/key")
	if errors.Is(skew, ErrAccessDenied) || !strings.Contains(skew.Error(), "clock") || !strings.Contains(skew.Error(), `"the/key"`) {
		t.Errorf("mapError(RequestTimeTooSkewed) = %v, want an error naming the clock and the key, not ErrAccessDenied", skew)
	}
}
