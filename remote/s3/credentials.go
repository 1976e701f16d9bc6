package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// lastResortCredentials wraps the default chain when the SDK resolved it
// to its last resort, the EC2 instance role: nothing else (environment,
// profile, web identity, container) was configured. Its failure then
// means no credentials exist at all, which it reports as a
// *noCredentialsError instead of the metadata service's error, unless
// the service answered that it failed: on an instance with a role, a
// busy or broken metadata service is not a missing role.
//
// The lookup happens at the first request, as before: the SDK bounds
// each metadata call (5s), and a machine without credentials pays that
// once per failing request, not on every New.
type lastResortCredentials struct {
	next    aws.CredentialsProvider
	profile string
}

// Retrieve returns next's credentials, a *metadataError or a
// *noCredentialsError.
func (c *lastResortCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.next.Retrieve(ctx)
	if err == nil || ctx.Err() != nil {
		return v, err
	}
	// Off EC2 the service is unreachable, and on an instance without a
	// role it answers 404: both mean no credentials.
	var resp interface{ HTTPStatusCode() int }
	if errors.As(err, &resp) {
		if code := resp.HTTPStatusCode(); code >= 500 || code == http.StatusTooManyRequests {
			return v, &metadataError{status: code, err: err}
		}
	}
	return v, &noCredentialsError{profile: c.profile}
}

// ProviderSources reports next's sources, which the SDK records in its
// User-Agent.
func (c *lastResortCredentials) ProviderSources() []aws.CredentialSource {
	if ps, ok := c.next.(aws.CredentialProviderSource); ok {
		return ps.ProviderSources()
	}
	return nil
}

// wrapCredentials returns awsCfg's credentials, wrapped in a
// lastResortCredentials if the chain came down to the instance role, or
// in a sourceCredentials if it came to another source that can fail when
// asked (see describeSource).
func wrapCredentials(awsCfg aws.Config) aws.CredentialsProvider {
	ps, ok := awsCfg.Credentials.(aws.CredentialProviderSource)
	if !ok {
		return awsCfg.Credentials
	}
	profile, _ := sharedProfile(awsCfg)
	if !slices.Equal(ps.ProviderSources(), []aws.CredentialSource{aws.CredentialSourceIMDS}) {
		if source := describeSource(ps.ProviderSources(), profile); source != "" {
			return &sourceCredentials{next: awsCfg.Credentials, source: source}
		}
		return awsCfg.Credentials
	}
	// The instance role's provider again, on a metadata client with the
	// SDK's own retryer. Ours, made for S3 (MaxAttempts, MaxBackoff),
	// outlasts the SDK's 5 s bound on a metadata call, which then ends
	// in a bare deadline that hides what the service answered.
	role := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.NewFromConfig(awsCfg, func(o *imds.Options) { o.Retryer = retry.NewStandard() })
	})
	return &lastResortCredentials{next: aws.NewCredentialsCache(role), profile: profile}
}

// sourceCredentials wraps the default chain when it resolved to a source
// that is asked for credentials at run time and can refuse or fail: STS
// for web identity or an assumed role, a container endpoint, SSO, a
// credential process. It reports their failure as a *credentialError
// naming the source. Without it, STS refusing a web identity token read
// as the bucket refusing access ("check the bucket policy"), and each
// S3 request's retries asked the source again.
type sourceCredentials struct {
	next   aws.CredentialsProvider
	source string
}

// Retrieve returns next's credentials, or a *credentialError.
func (c *sourceCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.next.Retrieve(ctx)
	if err == nil || ctx.Err() != nil {
		return v, err
	}
	return v, &credentialError{source: c.source, err: err}
}

// ProviderSources reports next's sources, which the SDK records in its
// User-Agent.
func (c *sourceCredentials) ProviderSources() []aws.CredentialSource {
	return c.next.(aws.CredentialProviderSource).ProviderSources()
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
