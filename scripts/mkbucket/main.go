// Command mkbucket creates an S3 bucket, waiting for the server to come up.
// The demo uses it against a freshly started MinIO, since tiercache itself
// never creates buckets.
//
//	mkbucket -endpoint http://127.0.0.1:9000 -wait 30s BUCKET
//
// Credentials and the region come from the standard AWS chain
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, ...). A bucket
// that already exists and is ours is not an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL (default: AWS or AWS_ENDPOINT_URL_S3)")
	region := flag.String("region", "", "region (default: the AWS chain, else us-east-1)")
	wait := flag.Duration("wait", 30*time.Second, "how long to retry while the server starts")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: mkbucket [-endpoint URL] [-region R] [-wait D] BUCKET")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := mkbucket(context.Background(), flag.Arg(0), *endpoint, *region, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func mkbucket(ctx context.Context, bucket, endpoint, region string, wait time.Duration) error {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = true
	})
	deadline := time.Now().Add(wait)
	for {
		_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		var owned *types.BucketAlreadyOwnedByYou
		if err == nil || errors.As(err, &owned) {
			return nil
		}
		// A server still starting refuses connections or answers 503:
		// retry until the deadline, then report the last error.
		if time.Now().After(deadline) {
			return fmt.Errorf("creating bucket %q: %w", bucket, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
