package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/tiercache/tiercache"
)

// Errors this package reports besides the root package's sentinels. They
// name configuration problems that retrying or treating as a cache miss
// would only hide.
var (
	// ErrAccessDenied reports that the credentials were refused or lack
	// permission on the bucket (AccessDenied, InvalidAccessKeyId,
	// SignatureDoesNotMatch, expired tokens, HTTP 403).
	ErrAccessDenied = errors.New("s3: access denied")
	// ErrNoSuchBucket reports that the configured bucket does not exist.
	ErrNoSuchBucket = errors.New("s3: bucket does not exist")
	// ErrNotS3 reports an endpoint that answers HTTP but not as S3 does
	// (a web page, a 404 or 501 without an S3 error body): a wrong
	// --endpoint, never a cache miss.
	ErrNotS3 = errors.New("s3: not an S3 endpoint")
	// ErrNoCredentials reports that the AWS credential chain found no
	// credentials anywhere it looked.
	ErrNoCredentials = errors.New("s3: no AWS credentials found")
)

// mapError is the one place that interprets S3 error codes. It turns err,
// returned by the SDK for operation op on key (op is a short phrase such
// as "get manifest of"), into an error that wraps one of our sentinels
// where one applies, names the key and the bucket, and keeps err for
// errors.As. It never formats the configuration, so no secret can leak.
//
//	NoSuchKey, NotFound (404)            -> tiercache.ErrNotFound
//	NoSuchBucket                         -> ErrNoSuchBucket
//	AccessDenied, InvalidAccessKeyId,
//	SignatureDoesNotMatch, ... (403)     -> ErrAccessDenied
//	PreconditionFailed (412),
//	InvalidRange (416)                   -> tiercache.ErrIntegrity
//	EntityTooLarge                       -> tiercache.ErrLimitExceeded
//	context cancellation                 -> kept as is (errors.Is works)
func mapError(err error, bucket, op, key string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3: %s key %q: %w", op, key, err)
	}
	code, status := errorCode(err)
	switch code {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("s3: %s key %q: %w", op, key, tiercache.ErrNotFound)
	case "NoSuchBucket":
		return fmt.Errorf("%w: bucket %q (%s key %q): %w", ErrNoSuchBucket, bucket, op, key, err)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
		"InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
		"InvalidSecurity", "RequestTimeTooSkewed":
		return fmt.Errorf("%w: bucket %q (%s key %q), check the credentials and the bucket policy: %w",
			ErrAccessDenied, bucket, op, key, err)
	case "PreconditionFailed":
		return fmt.Errorf("%w: s3: %s key %q: the object changed while it was read: %w", tiercache.ErrIntegrity, op, key, err)
	case "InvalidRange":
		return fmt.Errorf("%w: s3: %s key %q: the object is shorter than its manifest says: %w", tiercache.ErrIntegrity, op, key, err)
	case "EntityTooLarge":
		return fmt.Errorf("%w: s3: %s key %q: %w", tiercache.ErrLimitExceeded, op, key, err)
	}
	// HEAD responses carry no error body, hence no code: fall back to
	// the status.
	switch status {
	case http.StatusNotFound:
		return fmt.Errorf("s3: %s key %q: %w", op, key, tiercache.ErrNotFound)
	case http.StatusForbidden:
		return fmt.Errorf("%w: bucket %q (%s key %q), check the credentials and the bucket policy: %w",
			ErrAccessDenied, bucket, op, key, err)
	}
	return fmt.Errorf("s3: %s key %q in bucket %q: %w", op, key, bucket, err)
}

// errorCode extracts the S3 error code and HTTP status from an SDK error;
// either may be missing ("" or 0).
func errorCode(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}
