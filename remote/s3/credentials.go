package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// failingCredentials wraps the provider the default chain came down to,
// when that source is asked for credentials at run time and can fail,
// so that its failure says which source failed and why (see
// wrapCredentials): failed turns the source's error into one of ours.
// The lookup happens at the first request, as before.
type failingCredentials struct {
	next   aws.CredentialsProvider
	failed func(error) credentialFailure
}

// Retrieve returns next's credentials, or failed's account of its error.
func (c *failingCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.next.Retrieve(ctx)
	if err == nil || ctx.Err() != nil {
		return v, err
	}
	return v, c.failed(err)
}

// ProviderSources reports next's sources, which the SDK records in its
// User-Agent.
func (c *failingCredentials) ProviderSources() []aws.CredentialSource {
	return c.next.(aws.CredentialProviderSource).ProviderSources()
}

// lastResortFailure is the failure of the chain's last resort, the EC2
// instance role, which it comes down to when nothing else (environment,
// profile, web identity, container) was configured. It then means no
// credentials exist at all (a *noCredentialsError), unless the metadata
// service answered that it failed: on an instance with a role, a busy or
// broken service is not a missing role (a *metadataError), nor is a
// token that never arrives (see tokenWatch). Off EC2 the service is
// unreachable, and on an instance without a role it answers 404: both
// mean no credentials. The SDK bounds each metadata call (5s), and a
// machine without credentials pays that once per failing request, not
// on every New.
func lastResortFailure(profile string, w *tokenWatch) func(error) credentialFailure {
	return func(err error) credentialFailure {
		if w != nil && w.hopLimit() {
			return &metadataError{status: http.StatusUnauthorized, tokenLost: true, err: err}
		}
		var resp interface{ HTTPStatusCode() int }
		if errors.As(err, &resp) {
			if code := resp.HTTPStatusCode(); code >= 500 || code == http.StatusTooManyRequests {
				return &metadataError{status: code, err: err}
			}
		}
		return &noCredentialsError{profile: profile}
	}
}

// tokenWatch sends the metadata client's requests and notes the sign of
// a container behind a metadata hop limit of 1 on an instance that
// requires IMDSv2: the token's answer is dropped on its way (the request
// gets none), and the SDK's fallback without a token is refused (401).
// The lookup then ends in the SDK's deadline, which says neither.
type tokenWatch struct {
	next aws.HTTPClient
	// When the last token request got no answer, and the last request
	// was refused for want of a token (Unix nanoseconds).
	lost, refused atomic.Int64
}

// Do sends r with next, and notes what it watches for.
func (w *tokenWatch) Do(r *http.Request) (*http.Response, error) {
	resp, err := w.next.Do(r)
	now := time.Now().UnixNano()
	switch {
	case err != nil && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/api/token"):
		w.lost.Store(now)
	case err == nil && resp.StatusCode == http.StatusUnauthorized:
		w.refused.Store(now)
	}
	return resp, err
}

// hopLimit reports whether both signs were seen in the last lookup's
// time (the SDK bounds a lookup at 5 s), not in an old one.
func (w *tokenWatch) hopLimit() bool {
	since := time.Now().Add(-30 * time.Second).UnixNano()
	return w.lost.Load() > since && w.refused.Load() > since
}

// watchTokens returns the metadata client's HTTP client, made as the SDK
// makes it from awsCfg's (its short dial and answer timeouts, which
// notice a metadata service out of reach, are what lets the fallback
// run), inside a tokenWatch; nil and no watch if awsCfg's client is not
// the SDK's, which then goes as is. Unlike the SDK's, it never goes
// through HTTP_PROXY: the service is the instance's own, on a link-local
// address, and a proxy would ask its own (another machine's role, or
// none).
func watchTokens(awsCfg aws.Config) (aws.HTTPClient, *tokenWatch) {
	c := awshttp.NewBuildableClient()
	if awsCfg.HTTPClient != nil { // AWS_CA_BUNDLE's
		var ok bool
		if c, ok = awsCfg.HTTPClient.(*awshttp.BuildableClient); !ok {
			return nil, nil
		}
	}
	w := &tokenWatch{next: c.
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 250 * time.Millisecond }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = 500 * time.Millisecond
			tr.Proxy = nil
		})}
	return w, w
}

// wrapCredentials returns awsCfg's credentials, wrapped in a
// failingCredentials if the chain came down to a source that can fail
// when asked: the instance role (see lastResortFailure), or another that
// describeSource names (its failure is then a *credentialError). Without
// it, STS refusing a web identity token read as the bucket refusing
// access ("check the bucket policy"), and each S3 request's retries
// asked the source again.
func wrapCredentials(awsCfg aws.Config) aws.CredentialsProvider {
	ps, ok := awsCfg.Credentials.(aws.CredentialProviderSource)
	if !ok {
		return awsCfg.Credentials
	}
	profile, _ := sharedProfile(awsCfg)
	if !slices.Equal(ps.ProviderSources(), []aws.CredentialSource{aws.CredentialSourceIMDS}) {
		source := describeSource(ps.ProviderSources(), profile)
		if source == "" {
			return awsCfg.Credentials
		}
		return &failingCredentials{next: awsCfg.Credentials, failed: func(err error) credentialFailure {
			return &credentialError{source: source, err: err}
		}}
	}
	// The instance role's provider again, on a metadata client with the
	// SDK's own retryer. Ours, made for S3 (MaxAttempts, MaxBackoff),
	// outlasts the SDK's 5 s bound on a metadata call, which then ends
	// in a bare deadline that hides what the service answered.
	client, watch := watchTokens(awsCfg)
	role := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.NewFromConfig(awsCfg, func(o *imds.Options) {
			o.Retryer = retry.NewStandard()
			if client != nil {
				o.HTTPClient = client
			}
		})
	})
	return &failingCredentials{next: aws.NewCredentialsCache(role), failed: lastResortFailure(profile, watch)}
}

// describeSource names, for an error, the source of credentials ss
// describes, with what configures it; "" for the sources that cannot
// fail when asked (the environment, static keys in a profile) and for
// ones not told apart here.
func describeSource(ss []aws.CredentialSource, profile string) string {
	has := func(want ...aws.CredentialSource) bool {
		return slices.ContainsFunc(ss, func(s aws.CredentialSource) bool { return slices.Contains(want, s) })
	}
	switch {
	case has(aws.CredentialSourceEnvVarsSTSWebIDToken, aws.CredentialSourceSTSAssumeRoleWebID, aws.CredentialSourceProfileSTSWebIDToken):
		return "web identity (STS, for AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN or the profile's web_identity_token_file)"
	case has(aws.CredentialSourceHTTP):
		return "the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"
	case has(aws.CredentialSourceSSO, aws.CredentialSourceProfileSSO, aws.CredentialSourceSSOLegacy, aws.CredentialSourceProfileSSOLegacy):
		return fmt.Sprintf("IAM Identity Center (SSO) for profile %q (aws sso login)", profile)
	case has(aws.CredentialSourceProcess, aws.CredentialSourceProfileProcess):
		return fmt.Sprintf("the credential_process of profile %q", profile)
	case has(aws.CredentialSourceSTSAssumeRole):
		return fmt.Sprintf("the role profile %q assumes (role_arn)", profile)
	}
	return ""
}
