//go:build unix

package e2e

// Misconfigurations a new user makes, with the real binary: each must get
// a message that names the mistake, never a misleading one.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/internal/treetest"
)

// TestCLIAutomaticPathStyle checks that a custom endpoint named by a host
// name works without --path-style: the bucket must not be put in the host
// name (bucket.localhost), which would not resolve.
func TestCLIAutomaticPathStyle(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	endpoint := strings.Replace(e["TIERCACHE_S3_ENDPOINT"], "127.0.0.1", "localhost", 1)
	if endpoint == e["TIERCACHE_S3_ENDPOINT"] {
		t.Fatalf("endpoint %q is not on 127.0.0.1", endpoint)
	}
	e = e.with("TIERCACHE_S3_PATH_STYLE", "", "TIERCACHE_S3_ENDPOINT", endpoint)
	src := smallTree(t, "auto")
	_, stderr := mustRun(t, e, "--verbose", "push", "auto-1", src)
	if !strings.Contains(stderr, "addressing from the AWS profile or the endpoint") {
		t.Errorf("verbose push does not describe the addressing: %q", stderr)
	}
	dst := filepath.Join(t.TempDir(), "d")
	mustRun(t, e.freshMachine(t), "pull", "--strict", "--fail-on-miss", "auto-1", dst)
	if diff, err := treetest.Diff(src, dst); err != nil || len(diff) != 0 {
		t.Errorf("pulled tree differs: %v %v", diff, err)
	}
}

// TestCLINoCredentials runs the binary where the AWS credential chain
// finds nothing: the message must say so and list where it looked, and
// none of the SDK's log lines (its IMDSv1 fallback warning) may appear.
func TestCLINoCredentials(t *testing.T) {
	// The metadata service of a machine without a role, refusing
	// tokens with 404 as some do: the SDK then logs a warning.
	imds := httptest.NewServer(http.NotFoundHandler())
	defer imds.Close()
	home := t.TempDir()
	e := env{
		"HOME":                              home,
		"TIERCACHE_DIR":                     filepath.Join(home, "cache"),
		"TIERCACHE_REMOTE":                  "s3://cache/ci",
		"TIERCACHE_S3_ENDPOINT":             "http://127.0.0.1:1",
		"AWS_REGION":                        "us-east-1",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL,
	}
	dst := filepath.Join(t.TempDir(), "d")
	for _, args := range [][]string{
		{"pull", "--strict", "k", dst},
		{"push", "--strict", "k", smallTree(t, "nocred")},
		{"pull", "k", dst},
	} {
		// A fresh local tier each time: a soft-failed push still saves
		// locally, and a local hit would hide the remote.
		_, stderr, code := runCLI(t, e.freshMachine(t), args...)
		for _, want := range []string{"no AWS credentials found", "AWS_ACCESS_KEY_ID", `profile "default" (AWS_PROFILE)`,
			"AWS_WEB_IDENTITY_TOKEN_FILE", "instance role"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("%v: stderr does not mention %q: %q", args, want, stderr)
			}
		}
		for _, bad := range []string{"WARN", "IMDS", "ec2imds"} {
			if strings.Contains(stderr, bad) {
				t.Errorf("%v: stderr holds %q: %q", args, bad, stderr)
			}
		}
		if args[1] == "--strict" && code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
}

// TestCLINotS3Endpoint points the binary at web servers that are not S3:
// a pull must report the endpoint, never a miss, and a push must not
// report a save.
func TestCLINotS3Endpoint(t *testing.T) {
	answers := map[string]http.HandlerFunc{
		"404 HTML": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, "<html><body>404 Not Found</body></html>")
		},
		"501": func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "Unsupported method", http.StatusNotImplemented)
		},
		"200 HTML": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<!doctype html><html><body>Welcome</body></html>")
		},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(answer)
			defer srv.Close()
			home := t.TempDir()
			secret := "NOTS3secret" + strings.Repeat("z", 29)
			e := env{
				"HOME":                        home,
				"TIERCACHE_DIR":               filepath.Join(home, "cache"),
				"TIERCACHE_REMOTE":            "s3://cache/ci",
				"TIERCACHE_S3_ENDPOINT":       srv.URL,
				"AWS_ACCESS_KEY_ID":           "AKIAEXAMPLE",
				"AWS_SECRET_ACCESS_KEY":       secret,
				"AWS_REGION":                  "us-east-1",
				"AWS_EC2_METADATA_DISABLED":   "true",
				"AWS_CONFIG_FILE":             filepath.Join(home, "none"),
				"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			dst := filepath.Join(t.TempDir(), "d")
			for _, args := range [][]string{
				{"pull", "--strict", "k", dst},
				{"push", "--strict", "k", smallTree(t, "nots3")},
				{"pull", "k", dst},
			} {
				stdout, stderr, code := runCLI(t, e.freshMachine(t), args...)
				if !strings.Contains(stderr, host+" is not an S3 endpoint") || !strings.Contains(stderr, "check --endpoint") {
					t.Errorf("%v: stderr does not name the endpoint: %q", args, stderr)
				}
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("%v: the secret appears in the output", args)
				}
				if args[1] == "--strict" {
					if code != 1 {
						t.Errorf("%v: exit %d, want 1", args, code)
					}
					if strings.Contains(stderr, "miss") || strings.Contains(stderr, "pushed") {
						t.Errorf("%v: stderr reports a miss or a save: %q", args, stderr)
					}
				}
			}
		})
	}
}

// TestCLIMisconfigMessages checks the one-line messages of a --remote that
// is an endpoint URL and of a missing region.
func TestCLIMisconfigMessages(t *testing.T) {
	home := t.TempDir()
	e := env{
		"HOME":                        home,
		"TIERCACHE_DIR":               filepath.Join(home, "cache"),
		"AWS_ACCESS_KEY_ID":           "AKIAEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "secret" + strings.Repeat("s", 34),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
	}
	dst := filepath.Join(t.TempDir(), "d")

	_, stderr, code := runCLI(t, e.with("TIERCACHE_REMOTE", "https://user:pa55word@minio.example.com:9000/cache"), "pull", "k", dst)
	want := `TIERCACHE_REMOTE must look like s3://bucket/prefix, got "https://[REDACTED]@minio.example.com:9000/cache"; the endpoint goes in --endpoint (TIERCACHE_S3_ENDPOINT), the bucket in s3://bucket/prefix` + "\n"
	if code != 2 || !strings.Contains(stderr, want) || strings.Contains(stderr, "pa55word") {
		t.Errorf("endpoint as --remote: exit %d, stderr %q, want %q", code, stderr, want)
	}

	// No region anywhere and AWS's own endpoint: nothing to default to.
	_, stderr, code = runCLI(t, e.with("TIERCACHE_REMOTE", "s3://cache/ci"), "pull", "--strict", "k", dst)
	for _, w := range []string{"no region", "--region", "TIERCACHE_REGION", "AWS_REGION"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("no region: stderr does not mention %q: %q", w, stderr)
		}
	}
	if code != 1 {
		t.Errorf("no region: exit %d, want 1", code)
	}
}
