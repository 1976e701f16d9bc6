package miniotest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStartStop(t *testing.T) {
	s := Require(t) // skips or fails per the package rule when minio is missing
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if srv.Endpoint == s.Endpoint {
		t.Fatalf("second server reuses endpoint %s", srv.Endpoint)
	}
	resp, err := http.Get(srv.Endpoint + "/minio/health/live")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %s", resp.Status)
	}

	// The random credentials work, and objects land in DataDir.
	client := s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("probe")}); err != nil {
		t.Fatalf("CreateBucket with the server's credentials: %v", err)
	}
	if _, err := os.Stat(filepath.Join(srv.DataDir, "probe")); err != nil {
		t.Fatalf("bucket not in DataDir: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(srv.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir still there after Stop: %v", err)
	}
	if resp, err := http.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("server still answers after Stop: %s", resp.Status)
	}
	if srv.cmd.ProcessState == nil {
		t.Fatal("process not reaped after Stop")
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("TIERCACHE_MINIO_BIN", filepath.Join(t.TempDir(), "no-such-minio"))
	if _, err := Start(); !errors.Is(err, ErrNoMinIO) {
		t.Fatalf("Start with a missing binary: %v, want ErrNoMinIO", err)
	}
}

func TestStaleDirRemoved(t *testing.T) {
	s := Require(t)
	// A directory owned by a pid that cannot exist is a leftover.
	dir, err := os.MkdirTemp("", dirPattern+"*")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte("2147483646"), 0o600); err != nil {
		t.Fatal(err)
	}
	removeStaleDirs()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		_ = os.RemoveAll(dir)
		t.Fatalf("stale dir kept: %v", err)
	}
	// The shared server's own directory is kept.
	if _, err := os.Stat(s.DataDir); err != nil {
		t.Fatalf("live server's dir removed: %v", err)
	}
}

func TestMain(m *testing.M) { os.Exit(Run(m)) }
