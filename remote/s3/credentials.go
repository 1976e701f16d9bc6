package s3

import (
	"context"
	"errors"
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

// wrapLastResort returns awsCfg's credentials, wrapped in a
// lastResortCredentials if the chain came down to the instance role.
func wrapLastResort(awsCfg aws.Config) aws.CredentialsProvider {
	ps, ok := awsCfg.Credentials.(aws.CredentialProviderSource)
	if !ok || !slices.Equal(ps.ProviderSources(), []aws.CredentialSource{aws.CredentialSourceIMDS}) {
		return awsCfg.Credentials
	}
	profile, _ := sharedProfile(awsCfg)
	// The instance role's provider again, on a metadata client with the
	// SDK's own retryer. Ours, made for S3 (MaxAttempts, MaxBackoff),
	// outlasts the SDK's 5 s bound on a metadata call, which then ends
	// in a bare deadline that hides what the service answered.
	role := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.NewFromConfig(awsCfg, func(o *imds.Options) { o.Retryer = retry.NewStandard() })
	})
	return &lastResortCredentials{next: aws.NewCredentialsCache(role), profile: profile}
}
