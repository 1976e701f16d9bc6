//go:build unix

package main

// MinIO cannot be started from inside Wine, so this runs on Unix only.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tiercache/tiercache/internal/miniotest"
)

// minioEnv returns newEnv's environment with a remote tier: a fresh
// bucket on the MinIO server the package's tests share.
func minioEnv(t *testing.T) env {
	t.Helper()
	srv := miniotest.Require(t)
	bucket := fmt.Sprintf("nocache-%x", rand.Uint32())
	client := s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: srv.Transport()},
	})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	// The SDK reads its credentials from the process environment.
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	return newEnv(t).with(
		"TIERCACHE_REMOTE", "s3://"+bucket+"/ci",
		"TIERCACHE_S3_ENDPOINT", srv.Endpoint,
		"TIERCACHE_S3_PATH_STYLE", "true",
		"TIERCACHE_REGION", srv.Region,
	)
}

// TestNoCacheDirWithRemote: with a remote, the commands that only look
// (pull --lookup-only, ls, stats, fsck) or remove (rm, prune) work on
// the remote alone when the local tier's directory does not exist,
// report the local tier empty, and leave the directory uncreated.
func TestNoCacheDirWithRemote(t *testing.T) {
	full := minioEnv(t)
	for _, k := range []string{"k-1", "k-2", "k-3"} {
		mustCLI(t, full, "push", "-q", k, smallTree(t, k))
	}
	e, absent := missingCacheDir(t, full)

	var hit pullJSON
	dst := filepath.Join(t.TempDir(), "dst")
	decode(t, mustCLI(t, e, "pull", "--json", "--lookup-only", "k-1", dst), &hit)
	absent("pull --lookup-only")
	if !hit.Hit || hit.Key != "k-1" || hit.Tier != "remote" {
		t.Errorf("pull --lookup-only: %+v, want a remote hit on k-1", hit)
	}

	remoteKeys := func(what string) []string {
		t.Helper()
		var entries []struct{ Key, Tier string }
		decode(t, mustCLI(t, e, "ls", "--json"), &entries)
		absent(what + ", then ls")
		var keys []string
		for _, en := range entries {
			if en.Tier != "remote" {
				t.Errorf("%s, then ls: entry %+v of the missing local tier", what, en)
			}
			keys = append(keys, en.Key)
		}
		slices.Sort(keys)
		return keys
	}
	if got := remoteKeys("push"); !slices.Equal(got, []string{"k-1", "k-2", "k-3"}) {
		t.Errorf("ls: keys %v, want the three remote ones", got)
	}

	var st statsJSON
	decode(t, mustCLI(t, e, "stats", "--json"), &st)
	absent("stats")
	if st.Local.Entries != 0 || st.Remote == nil || st.Remote.Entries != 3 {
		t.Errorf("stats: local %+v, remote %+v; want 0 local and 3 remote entries", st.Local, st.Remote)
	}

	var fsck fsckJSON
	decode(t, mustCLI(t, e, "fsck", "--json", "--repair"), &fsck)
	absent("fsck --repair")
	if fsck.Local.Entries != 0 || fsck.Remote == nil || fsck.Remote.Entries != 3 || fsck.Problems != 0 {
		t.Errorf("fsck: %+v, want the 3 remote entries checked", fsck)
	}

	var rm rmJSON
	decode(t, mustCLI(t, e, "rm", "--json", "k-1", "k-9"), &rm)
	absent("rm")
	if !slices.Equal(rm.Removed, []string{"k-1"}) || !slices.Equal(rm.NotStored, []string{"k-9"}) {
		t.Errorf("rm: %+v, want k-1 removed, k-9 not stored", rm)
	}
	if got := remoteKeys("rm"); !slices.Equal(got, []string{"k-2", "k-3"}) {
		t.Errorf("after rm k-1: remote keys %v", got)
	}

	if r := cli(t, e, "--read-only", "prune", "--remote-max-entries", "1"); r.code != exitFailure {
		t.Errorf("prune --read-only: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
	absent("prune --read-only")
	var pr struct{ Local, Remote int }
	decode(t, mustCLI(t, e, "prune", "--json", "--max-entries", "1", "--remote-max-entries", "1"), &pr)
	absent("prune")
	if pr.Local != 0 || pr.Remote != 1 {
		t.Errorf("prune: %+v, want 0 local and 1 remote entries evicted", pr)
	}
	if got := remoteKeys("prune"); len(got) != 1 {
		t.Errorf("after prune --remote-max-entries 1: remote keys %v", got)
	}
	if r := mustCLI(t, e, "stats"); !strings.Contains(r.stdout, "\nlocal ") || !strings.Contains(r.stdout, "\nremote ") {
		t.Errorf("stats: %q, want a row per tier", r.stdout)
	}
	absent("stats")
}
