package s3

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

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
	// (a web page, a 404 or 501 without an S3 error body, a 200 without
	// what S3's answer holds): a wrong --endpoint, never a cache miss.
	ErrNotS3 = errors.New("s3: not an S3 endpoint")
	// ErrNoCredentials reports that the AWS credential chain found no
	// credentials anywhere it looked.
	ErrNoCredentials = errors.New("s3: no AWS credentials found")
	// ErrCredentialService reports that the source the AWS credential
	// chain came down to refused or failed to give credentials: STS for
	// web identity or an assumed role, a container endpoint, SSO, a
	// credential process, or the EC2 instance metadata service
	// answering with a failure (5xx or 429), whose instance may well
	// have a role. The error names the source.
	ErrCredentialService = errors.New("s3: the source of the AWS credentials failed")
	// ErrNewerManifest reports an entry whose manifest a newer tiercache
	// wrote, in a format this one cannot read: it is refused, as a
	// damaged one, but never deleted (see DeleteVersion). It comes with
	// tiercache.ErrIntegrity.
	ErrNewerManifest = errors.New("s3: manifest of a newer tiercache")
	// ErrDeadline reports a request cut off, or never sent, because
	// Config.Deadline had passed. It is not retried.
	ErrDeadline = errors.New("s3: the store's deadline passed")
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
//	RequestTimeTooSkewed (403)           -> an error naming the clock
//	InvalidRange (416)                   -> tiercache.ErrIntegrity
//	PreconditionFailed (412)             -> none: a transport failure
//	EntityTooLarge                       -> tiercache.ErrLimitExceeded
//	a redirect to the bucket's region    -> an error naming the region
//	an answer no S3 server gives         -> ErrNotS3
//	no credentials anywhere in the chain -> ErrNoCredentials
//	the credentials' source failing
//	(STS, a container endpoint, SSO,
//	a process, the metadata service
//	answering 5xx or 429, or an IMDSv2
//	token lost to the hop limit)         -> ErrCredentialService
//	context cancellation                 -> kept as is (errors.Is works)
//
// The errors for no credentials and for the metadata service do not
// quote err: what the SDK says then is about the service's retries or
// HTTP, not what the user must fix. One from another source of
// credentials does: it says why (STS's refusal, an expired session).
func mapError(err error, bucket, op, key string) error {
	if err == nil {
		return nil
	}
	var ns *notS3Error
	if errors.As(err, &ns) {
		return fmt.Errorf("s3: %s key %q: %w; check --endpoint", op, key, ns)
	}
	// Before the cancellation check (the failed metadata lookup that
	// ends the chain often ends in a deadline of its own) and the codes
	// (STS's AccessDenied is not the bucket's).
	var cf credentialFailure
	if errors.As(err, &cf) {
		return fmt.Errorf("%w (when asked to %s key %q)", cf, op, key)
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
		"InvalidSecurity":
		return fmt.Errorf("%w: bucket %q (%s key %q), check the credentials and the bucket policy: %w",
			ErrAccessDenied, bucket, op, key, err)
	case "RequestTimeTooSkewed":
		// A 403, but neither the credentials nor the policy: the clock.
		return fmt.Errorf("s3: %s key %q: the server refused the request's time: this machine's clock differs from the server's by more than it allows (15 minutes on AWS); set the clock right (NTP): %w", op, key, err)
	case "PreconditionFailed":
		// Not ErrIntegrity, which makes a pull remove the entry: data
		// objects are immutable by name, so a resumed range's If-Match
		// failing says more of a proxy's unstable ETags than of the
		// object, and a changed object fails its SHA-256 on the next
		// pull, which downloads it whole.
		return fmt.Errorf("s3: %s key %q: the object's ETag changed while it was read (412 on If-Match): %w", op, key, err)
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
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect:
		// S3 redirects a request sent to another region than the
		// bucket's, and names that region only in a header.
		if region := bucketRegion(err); region != "" {
			return fmt.Errorf("s3: %s key %q: bucket %q is in region %q: set --region (or TIERCACHE_REGION or AWS_REGION) to it: %w",
				op, key, bucket, region, err)
		}
	}
	return fmt.Errorf("s3: %s key %q in bucket %q: %w", op, key, bucket, err)
}

// bucketRegion returns the X-Amz-Bucket-Region header of the answer that
// err reports, if any.
func bucketRegion(err error) string {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return ""
	}
	return re.Response.Header.Get("X-Amz-Bucket-Region")
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

// hasS3Headers reports whether h carries the request ID headers that AWS,
// MinIO and Ceph RGW put on every answer.
func hasS3Headers(h http.Header) bool {
	return h.Get("X-Amz-Request-Id") != "" || h.Get("X-Amz-Id-2") != ""
}

// notS3Answer reports whether an answer without S3's request ID headers
// (see hasS3Headers) cannot come from an S3 server. body is the start of
// the body of an error answer to a request other than HEAD.
//
//   - An HTML page: S3 answers in XML or with the object's bytes, and
//     our objects are never HTML.
//   - 400, 403, 404, 405 or 501 to anything but HEAD without an S3 error
//     document (<Error><Code>...): every S3-compatible server (R2 and
//     GCS, which lack the headers, too) explains its errors in one. The
//     SDK would otherwise read a web server's 404 as a missing key.
//
// 5xx answers but 501, and 429, stay what they are, transient faults to
// retry: a proxy's "502 Bad Gateway" page in front of a real server that
// is down is an outage, not a wrong endpoint. A HEAD answer has no body to tell
// by, so a bare 404 to HEAD stays a miss.
func notS3Answer(method string, status int, h http.Header, body []byte) bool {
	if hasS3Headers(h) || (status >= 500 && status != http.StatusNotImplemented) || status == http.StatusTooManyRequests {
		return false
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	switch status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusNotImplemented:
	default:
		return false
	}
	if method == http.MethodHead {
		return false
	}
	return !(bytes.Contains(body, []byte("<Error")) && bytes.Contains(body, []byte("<Code>")))
}

// s3Success holds, by SDK operation name, what every S3 server's 2xx
// answer to the operation carries: the root element of its XML body, or
// headers (AWS documents ETag on each of these answers, and Last-Modified
// on an object's; MinIO and versitygw send them, which
// TestRealServersAnswerAsS3Does checks). A server that answers 200 with
// anything else (a health check's "OK", JSON) is not S3: the SDK would
// read such a listing as empty and such an upload as done. The answers
// of operations not named here are not judged: CompleteMultipartUpload
// and UploadPartCopy may send blanks for minutes before their result, a
// DeleteObject's is empty.
var s3Success = map[string]struct {
	root    string
	headers []string
}{
	"ListObjectsV2":         {root: "ListBucketResult"},
	"ListMultipartUploads":  {root: "ListMultipartUploadsResult"},
	"CreateMultipartUpload": {root: "InitiateMultipartUploadResult"},
	"PutObject":             {headers: []string{"ETag"}},
	"UploadPart":            {headers: []string{"ETag"}},
	"GetObject":             {headers: []string{"ETag", "Last-Modified"}},
	"HeadObject":            {headers: []string{"ETag", "Last-Modified"}},
}

// notS3Success returns what a 2xx answer to the SDK operation op lacks
// of what every S3 server sends (see s3Success), or "" if nothing. body
// is the start of the answer's body: the root element of an XML
// document comes within its first bytes.
func notS3Success(op string, h http.Header, body []byte) string {
	want, ok := s3Success[op]
	if !ok {
		return ""
	}
	if want.root != "" && xmlRoot(body) != want.root {
		return "no " + want.root + " document"
	}
	for _, k := range want.headers {
		if h.Get(k) == "" {
			return "no " + k + " header"
		}
	}
	return ""
}

// xmlRoot returns the local name of the root element of the XML document
// that b starts, or "" if b starts none.
func xmlRoot(b []byte) string {
	d := xml.NewDecoder(bytes.NewReader(b))
	// Only the name matters, not the text's encoding.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local
		}
	}
}

// bodyShown bounds how many characters of a body an error quotes.
const bodyShown = 64

// notS3Error is what answerCheck reports for an answer no S3 server
// gives. It wraps ErrNotS3.
type notS3Error struct {
	host        string
	status      int
	contentType string
	// For a 2xx answer: the SDK operation answered, what its answer
	// lacked (see notS3Success) and, when that is a document, the start
	// of its body.
	op, lacks string
	body      []byte
}

func (e *notS3Error) Error() string {
	what := fmt.Sprintf("HTTP %d", e.status)
	if mt, _, err := mime.ParseMediaType(e.contentType); err == nil {
		what += " " + mt
	}
	what += ", not as S3 does"
	if e.lacks != "" {
		what += fmt.Sprintf(": a %s answer with %s", e.op, e.lacks)
		switch {
		case !strings.HasSuffix(e.lacks, " document"):
		case len(e.body) == 0:
			what += ", an empty body"
		default:
			// Quoted: the server's bytes, unlike ours, may hold
			// anything, terminal escapes too.
			what += fmt.Sprintf(", a body starting %.*q", bodyShown, strings.ToValidUTF8(string(e.body), ""))
		}
	} else if len(e.body) > 0 {
		// What the page is tells whose server this is ("Welcome to
		// nginx!", a console's login).
		if title, ok := pageTitle(e.body); ok {
			what += fmt.Sprintf(", a page titled %.*q", bodyShown, title)
		} else {
			what += fmt.Sprintf(", a body starting %.*q", bodyShown, strings.ToValidUTF8(string(e.body), ""))
		}
	}
	return fmt.Sprintf("%s is not an S3 endpoint (it answered %s)", e.host, what)
}

// pageTitle returns the text of an HTML page's title element, its
// spaces collapsed, if body has one.
func pageTitle(body []byte) (string, bool) {
	lower := bytes.ToLower(body)
	i := bytes.Index(lower, []byte("<title"))
	if i < 0 {
		return "", false
	}
	start := bytes.IndexByte(lower[i:], '>')
	if start < 0 {
		return "", false
	}
	start += i + 1
	end := bytes.Index(lower[start:], []byte("</title"))
	if end < 0 {
		return "", false
	}
	title := strings.Join(strings.Fields(strings.ToValidUTF8(string(body[start:start+end]), "")), " ")
	return title, title != ""
}

// Is makes errors.Is(err, ErrNotS3) hold.
func (e *notS3Error) Is(target error) bool { return target == ErrNotS3 }

// RetryableError reports false: asking the wrong server again is futile.
func (e *notS3Error) RetryableError() bool { return false }

// credentialFailure is a failure to get credentials, as the chain's
// wrapper reports it (see failingCredentials): its message says what
// failed, and mapError keeps it whole.
type credentialFailure interface {
	error
	credentialFailure()
}

func (*noCredentialsError) credentialFailure() {}
func (*metadataError) credentialFailure()      {}
func (*credentialError) credentialFailure()    {}

// noCredentialsError reports that the default AWS credential chain found
// nothing. It wraps ErrNoCredentials and names where the chain looked,
// instead of the instance metadata error the SDK ends with.
type noCredentialsError struct{ profile string }

func (e *noCredentialsError) Error() string {
	return strings.Join([]string{
		"s3: no AWS credentials found; looked in: the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
		fmt.Sprintf("the shared config and credentials files, profile %q (AWS_PROFILE)", e.profile),
		"web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)",
		"a container or EC2 instance role",
	}, ", ")
}

// Unwrap returns ErrNoCredentials.
func (e *noCredentialsError) Unwrap() error { return ErrNoCredentials }

// metadataError reports that the instance metadata service answered the
// credential chain's last resort with a failure. It names the status,
// not the SDK's account of its retries.
type metadataError struct {
	status int
	// tokenLost: the IMDSv2 token request got no answer before the
	// refusal (see tokenWatch).
	tokenLost bool
	err       error
}

func (e *metadataError) Error() string {
	msg := fmt.Sprintf("s3: the EC2 instance metadata service failed to give credentials: it answered HTTP %d (%s)", e.status, http.StatusText(e.status))
	if e.tokenLost {
		msg += " to a request without an IMDSv2 session token, and the token request got no answer: " +
			"in a container, the instance's metadata hop limit must be 2 or more " +
			"(aws ec2 modify-instance-metadata-options --http-put-response-hop-limit 2)"
	}
	return msg
}

// Is makes errors.Is(err, ErrCredentialService) hold.
func (e *metadataError) Is(target error) bool { return target == ErrCredentialService }

// Unwrap returns the SDK's error.
func (e *metadataError) Unwrap() error { return e.err }

// RetryableError reports false: the SDK's metadata client has retried
// already, and retrying each request again multiplies the wait.
func (e *metadataError) RetryableError() bool { return false }

// credentialError reports that the source of credentials the chain came
// down to (see wrapCredentials) refused or failed. It keeps the SDK's
// message, which says why (STS's "Not authorized to perform
// sts:AssumeRoleWithWebIdentity", an expired SSO session).
type credentialError struct {
	source string
	err    error
}

func (e *credentialError) Error() string {
	return fmt.Sprintf("s3: getting AWS credentials from %s failed: %v", e.source, e.err)
}

// Is makes errors.Is(err, ErrCredentialService) hold.
func (e *credentialError) Is(target error) bool { return target == ErrCredentialService }

// Unwrap returns the SDK's error.
func (e *credentialError) Unwrap() error { return e.err }

// RetryableError reports false: the source's own client has retried
// already, and each S3 request's retries would ask it again.
func (e *credentialError) RetryableError() bool { return false }
