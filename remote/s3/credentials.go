package s3

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// lastResortCredentials wraps the default chain when the SDK resolved it
// to its last resort, the EC2 instance role: nothing else (environment,
// profile, web identity, container) was configured. Its failure then
// means no credentials exist at all, which it reports as a
// *noCredentialsError instead of the metadata service's error.
//
// The lookup happens at the first request, as before: the SDK bounds
// each metadata call (5s), and a machine without credentials pays that
// once per failing request, not on every New.
type lastResortCredentials struct {
	next    aws.CredentialsProvider
	profile string
}

// Retrieve returns next's credentials, or a *noCredentialsError.
func (c *lastResortCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.next.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return v, &noCredentialsError{profile: c.profile}
	}
	return v, err
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
	return &lastResortCredentials{next: awsCfg.Credentials, profile: profile}
}
