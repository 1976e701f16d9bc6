package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// isolateAWS gives the test an AWS environment of its own: no
// credentials, region, endpoint or profile from the machine, an empty
// HOME, and the shared config file at the path it returns (absent until
// the test writes it).
func isolateAWS(t *testing.T) (configFile string) {
	t.Helper()
	home := t.TempDir()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_STS", "AWS_CA_BUNDLE",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", home)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "credentials"))
	configFile = filepath.Join(home, "config")
	t.Setenv("AWS_CONFIG_FILE", configFile)
	return configFile
}

// clientFunc is an aws.HTTPClient made of a function.
type clientFunc func(*http.Request) (*http.Response, error)

func (f clientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// s3Miss is the answer of an S3 server to a GET of a missing object.
func s3Miss(r *http.Request) *http.Response {
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`
	return &http.Response{
		StatusCode: http.StatusNotFound,
		Header:     http.Header{"Content-Type": {"application/xml"}, "X-Amz-Request-Id": {"1"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    r,
	}
}

func TestAddressing(t *testing.T) {
	const custom, aws = "http://minio.internal:9000", "https://s3.eu-west-1.amazonaws.com"
	cases := []struct {
		name       string
		profile    string // AWS_PROFILE
		config     string // the shared config file
		endpoint   string
		addressing Addressing
		pathStyle  bool
		wantPath   bool
	}{
		{name: "auto, custom endpoint", endpoint: custom, wantPath: true},
		{name: "auto, custom endpoint by IP", endpoint: "http://127.0.0.1:9000", wantPath: true},
		{name: "auto, AWS endpoint", endpoint: aws},
		{name: "auto, China AWS endpoint", endpoint: "https://s3.cn-north-1.amazonaws.com.cn"},
		{name: "auto, no endpoint"},
		{name: "auto, look-alike host", endpoint: "https://s3.notamazonaws.com", wantPath: true},
		{name: "virtual forced on a custom endpoint", endpoint: custom, addressing: AddressingVirtual},
		{name: "path forced on AWS", endpoint: aws, addressing: AddressingPath, wantPath: true},
		{name: "PathStyle", endpoint: aws, pathStyle: true, wantPath: true},
		{name: "profile path on AWS", endpoint: aws, wantPath: true,
			config: "[default]\nregion = eu-west-1\ns3 =\n  addressing_style = path\n"},
		{name: "profile virtual on a custom endpoint", endpoint: custom,
			config: "[default]\ns3 =\n    max_concurrent_requests = 20\n    addressing_style = virtual\nregion = eu-west-1\n"},
		{name: "profile auto", endpoint: custom, wantPath: true,
			config: "[default]\ns3 =\n  addressing_style = auto\n"},
		{name: "explicit beats profile", endpoint: custom, addressing: AddressingPath, wantPath: true,
			config: "[default]\ns3 =\n  addressing_style = virtual\n"},
		{name: "AWS_PROFILE's section", profile: "ci", endpoint: custom,
			config: "[default]\ns3 =\n  addressing_style = path\n\n[profile ci]\n# comment\ns3 =\n\taddressing_style = virtual\n"},
		{name: "other profile's section", endpoint: custom, wantPath: true,
			config: "[default]\nregion = eu-west-1\n[profile other]\ns3 =\n  addressing_style = virtual\n"},
		{name: "not nested", endpoint: custom, wantPath: true,
			config: "[default]\naddressing_style = virtual\n"},
		{name: "other nested section", endpoint: custom, wantPath: true,
			config: "[default]\ns3api =\n  addressing_style = virtual\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := isolateAWS(t)
			if c.config != "" {
				if err := os.WriteFile(file, []byte(c.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.profile != "" {
				t.Setenv("AWS_PROFILE", c.profile)
			}
			var host, path string
			s, err := New(context.Background(), Config{
				Bucket:      "bkt",
				Region:      "eu-west-1",
				Endpoint:    c.endpoint,
				Addressing:  c.addressing,
				PathStyle:   c.pathStyle,
				Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
				HTTPClient: clientFunc(func(r *http.Request) (*http.Response, error) {
					host, path = r.URL.Host, r.URL.Path
					return s3Miss(r), nil
				}),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Stat(context.Background(), "k"); !errors.Is(err, tiercache.ErrNotFound) {
				t.Fatalf("Stat: %v, want a miss", err)
			}
			gotPath := strings.HasPrefix(path, "/bkt/")
			if gotPath != c.wantPath || gotPath == strings.HasPrefix(host, "bkt.") {
				t.Errorf("request to host %q path %q, want path style %t", host, path, c.wantPath)
			}
		})
	}
}

func TestAddressingErrors(t *testing.T) {
	file := isolateAWS(t)
	cfg := Config{Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}

	bad := cfg
	bad.PathStyle, bad.Addressing = true, AddressingVirtual
	if _, err := New(context.Background(), bad); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("PathStyle with AddressingVirtual: %v", err)
	}
	bad = cfg
	bad.Addressing = AddressingVirtual + 1
	if _, err := New(context.Background(), bad); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("unknown addressing: %v", err)
	}

	// A typo in the profile is an error, not a silent default.
	if err := os.WriteFile(file, []byte("[default]\ns3 =\n  addressing_style = pth\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), cfg)
	if !errors.Is(err, tiercache.ErrInvalidArgument) || !strings.Contains(err.Error(), `addressing_style "pth"`) ||
		!strings.Contains(err.Error(), `profile "default"`) {
		t.Errorf("bad addressing_style: %v", err)
	}
	// An explicit choice does not need the profile's.
	good := cfg
	good.Addressing = AddressingPath
	if _, err := New(context.Background(), good); err != nil {
		t.Errorf("explicit addressing with a bad profile setting: %v", err)
	}
}

func TestNoRegion(t *testing.T) {
	isolateAWS(t)
	_, err := New(context.Background(), Config{Bucket: "b",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	if !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Fatalf("New without a region: %v", err)
	}
	for _, want := range []string{"no region", "--region", "TIERCACHE_REGION", "AWS_REGION"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// captureStderr runs f with os.Stderr redirected and returns what was
// written there: the SDK's default logger writes to os.Stderr.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stderr
	os.Stderr = w
	var out strings.Builder
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(&out, r) })
	defer func() {
		os.Stderr = orig
		_ = w.Close()
		wg.Wait()
		_ = r.Close()
	}()
	f()
	os.Stderr = orig
	_ = w.Close()
	wg.Wait()
	return out.String()
}

func TestNoCredentials(t *testing.T) {
	for _, profile := range []string{"", "ci"} {
		t.Run("profile "+profile, func(t *testing.T) {
			file := isolateAWS(t)
			wantProfile := "default"
			if profile != "" {
				// A profile that exists but holds no credentials.
				if err := os.WriteFile(file, []byte("[profile ci]\nregion = us-east-1\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("AWS_PROFILE", profile)
				wantProfile = profile
			}
			// A metadata service that knows no role and refuses tokens
			// with 404, which makes the SDK log "falling back to IMDSv1".
			var imdsReqs atomic.Int64
			imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				imdsReqs.Add(1)
				http.NotFound(w, nil)
			}))
			defer imds.Close()
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
			var s3Reqs atomic.Int64
			var statErr error
			stderr := captureStderr(t, func() {
				s, err := New(context.Background(), Config{
					Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", MaxBackoff: time.Millisecond,
					HTTPClient: clientFunc(func(r *http.Request) (*http.Response, error) {
						s3Reqs.Add(1)
						return s3Miss(r), nil
					}),
				})
				if err != nil {
					t.Fatal(err)
				}
				_, statErr = s.Stat(context.Background(), "k")
			})
			if !errors.Is(statErr, ErrNoCredentials) || errors.Is(statErr, tiercache.ErrNotFound) || errors.Is(statErr, context.DeadlineExceeded) {
				t.Fatalf("Stat without credentials: %v", statErr)
			}
			msg := statErr.Error()
			for _, want := range []string{
				"no AWS credentials found", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
				fmt.Sprintf("profile %q (AWS_PROFILE)", wantProfile), "AWS_WEB_IDENTITY_TOKEN_FILE", "instance role",
				`key "k"`,
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, "IMDS") || strings.Contains(msg, "ec2imds") {
				t.Errorf("error talks about the metadata service: %q", msg)
			}
			if imdsReqs.Load() == 0 {
				t.Error("the chain never asked the metadata service: the test does not test the last resort")
			}
			if n := s3Reqs.Load(); n != 0 {
				t.Errorf("%d S3 requests sent without credentials", n)
			}
			if stderr != "" {
				t.Errorf("the SDK wrote on stderr: %q", stderr)
			}
		})
	}
}

// TestCredentialServiceFails: on an instance whose metadata service
// fails (5xx, or 429 when throttled) the error says so, and is not
// ErrNoCredentials, which would send the user looking for a missing
// role.
func TestCredentialServiceFails(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusTooManyRequests} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			isolateAWS(t)
			var roleReqs atomic.Int64
			imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut { // IMDSv2's token works
					_, _ = w.Write([]byte("token"))
					return
				}
				roleReqs.Add(1)
				http.Error(w, "busy", code)
			}))
			defer imds.Close()
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
			var s3Reqs atomic.Int64
			// The default retries and backoff, as the CLI has them: the
			// metadata client must not take them on.
			s, err := New(context.Background(), Config{
				Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000",
				HTTPClient: clientFunc(func(r *http.Request) (*http.Response, error) {
					s3Reqs.Add(1)
					return s3Miss(r), nil
				}),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := s.Stat(context.Background(), "k")
			if !errors.Is(statErr, ErrCredentialService) || errors.Is(statErr, ErrNoCredentials) || errors.Is(statErr, tiercache.ErrNotFound) {
				t.Fatalf("Stat with a failing metadata service: %v", statErr)
			}
			msg := statErr.Error()
			for _, want := range []string{"metadata service", fmt.Sprintf("HTTP %d", code), `key "k"`} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, "no AWS credentials") {
				t.Errorf("error says there are no credentials: %q", msg)
			}
			// One lookup, on the SDK's own metadata retryer (3 attempts).
			// Ours (5 attempts, longer backoffs) outlasted the SDK's 5 s
			// bound on the lookup, and retrying the S3 request on top
			// would multiply the wait.
			if n := roleReqs.Load(); n == 0 || n > 3 {
				t.Errorf("%d requests for the role, want 1 to 3: one credential lookup on the SDK's metadata retryer", n)
			}
			if n := s3Reqs.Load(); n != 0 {
				t.Errorf("%d S3 requests sent without credentials", n)
			}
		})
	}
}

// TestCredentialSourceFails: a source of credentials that refuses or
// fails is named in the error, which is ErrCredentialService: STS
// refusing a web identity token is not the bucket refusing access, and
// a failing container endpoint is asked once per request, with its own
// retries, not again for each retry of the S3 request.
func TestCredentialSourceFails(t *testing.T) {
	for _, c := range []struct {
		name, want string
		maxReqs    int64
		setup      func(t *testing.T, url string)
		answer     func(w http.ResponseWriter)
	}{
		{
			name: "web identity refused", want: "Not authorized to perform sts:AssumeRoleWithWebIdentity", maxReqs: 1,
			setup: func(t *testing.T, url string) {
				token := filepath.Join(t.TempDir(), "token")
				if err := os.WriteFile(token, []byte("oidc-token"), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
				t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci")
				t.Setenv("AWS_ENDPOINT_URL_STS", url)
			},
			answer: func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
			},
		},
		{
			name: "container endpoint fails", want: "AWS_CONTAINER_CREDENTIALS_FULL_URI", maxReqs: 5,
			setup: func(t *testing.T, url string) { t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url+"/creds") },
			answer: func(w http.ResponseWriter) {
				http.Error(w, `{"code":"InternalError","message":"agent down"}`, http.StatusInternalServerError)
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			isolateAWS(t)
			var reqs atomic.Int64
			source := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				reqs.Add(1)
				c.answer(w)
			}))
			defer source.Close()
			c.setup(t, source.URL)
			var s3Reqs atomic.Int64
			s, err := New(context.Background(), Config{
				Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", MaxBackoff: time.Millisecond,
				HTTPClient: clientFunc(func(r *http.Request) (*http.Response, error) {
					if r.URL.Host == "127.0.0.1:9000" {
						s3Reqs.Add(1)
						return s3Miss(r), nil
					}
					return http.DefaultClient.Do(r)
				}),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := s.Stat(context.Background(), "k")
			if !errors.Is(statErr, ErrCredentialService) || errors.Is(statErr, ErrAccessDenied) || errors.Is(statErr, ErrNoCredentials) {
				t.Fatalf("Stat: %v; want ErrCredentialService alone", statErr)
			}
			for _, want := range []string{c.want, "getting AWS credentials from", `key "k"`} {
				if !strings.Contains(statErr.Error(), want) {
					t.Errorf("error %q does not mention %q", statErr, want)
				}
			}
			if n := reqs.Load(); n == 0 || n > c.maxReqs {
				t.Errorf("%d requests to the source, want 1 to %d: one lookup, on its own client's retries", n, c.maxReqs)
			}
			if n := s3Reqs.Load(); n != 0 {
				t.Errorf("%d S3 requests sent without credentials", n)
			}
		})
	}
}

// TestInstanceRoleCredentials: on an instance with a role, requests are
// signed with the credentials its metadata service hands out.
func TestInstanceRoleCredentials(t *testing.T) {
	isolateAWS(t)
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
			_, _ = w.Write([]byte("token"))
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "token":
			http.Error(w, "no token", http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
			_, _ = w.Write([]byte("ci-role"))
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/ci-role":
			fmt.Fprintf(w, `{"Code":"Success","AccessKeyId":"ROLEKEY","SecretAccessKey":"s","Token":"t","Expiration":%q}`,
				time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		default:
			http.NotFound(w, r)
		}
	}))
	defer imds.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	var auth string
	s, err := New(context.Background(), Config{
		Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000",
		HTTPClient: clientFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "127.0.0.1:9000" {
				auth = r.Header.Get("Authorization")
				return s3Miss(r), nil
			}
			return http.DefaultClient.Do(r)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(context.Background(), "k"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Fatalf("Stat with an instance role: %v", err)
	}
	if !strings.Contains(auth, "Credential=ROLEKEY/") {
		t.Errorf("request signed with %q, want the instance role's key", auth)
	}
}

func TestCredentialsFoundAreNotWrapped(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	var auth string
	s, err := New(context.Background(), Config{
		Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000",
		HTTPClient: clientFunc(func(r *http.Request) (*http.Response, error) {
			auth = r.Header.Get("Authorization")
			return s3Miss(r), nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(context.Background(), "k"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Fatalf("Stat: %v", err)
	}
	if !strings.Contains(auth, "Credential=AKID/") {
		t.Errorf("request signed with %q, want the environment's key", auth)
	}
}

// notS3Server is a web server that is not S3, answering every request
// as answer does, and counting them.
func notS3Server(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (endpoint string, reqs *atomic.Int64) {
	t.Helper()
	reqs = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, reqs
}

func TestNotS3Endpoint(t *testing.T) {
	html := func(status int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprint(w, "<!doctype html><html><head><TITLE>\n  Welcome to\tnginx!</TITLE></head><body><h1>Welcome</h1></body></html>")
		}
	}
	answers := map[string]func(http.ResponseWriter, *http.Request){
		"404 HTML": html(http.StatusNotFound),
		"200 HTML": html(http.StatusOK),
		"403 HTML": html(http.StatusForbidden),
		"501 text": func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "not implemented", http.StatusNotImplemented)
		},
		"404 empty": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) },
		"405 JSON": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			fmt.Fprint(w, `{"error":"method not allowed"}`)
		},
	}
	ops := map[string]func(s *Store) error{
		"Stat": func(s *Store) error { _, err := s.Stat(context.Background(), "k"); return err },
		"Open": func(s *Store) error {
			rc, _, err := s.Open(context.Background(), "k")
			if err == nil {
				rc.Close()
			}
			return err
		},
		"List": func(s *Store) error { _, err := s.List(context.Background(), ""); return err },
		"Put": func(s *Store) error {
			_, err := s.Put(context.Background(), remote.Meta{Key: "k", Size: 5, Files: 1}, strings.NewReader("hello"))
			return err
		},
		"Delete": func(s *Store) error { return s.Delete(context.Background(), "k") },
	}
	for name, answer := range answers {
		for opName, op := range ops {
			t.Run(name+"/"+opName, func(t *testing.T) {
				endpoint, reqs := notS3Server(t, answer)
				s, err := New(context.Background(), Config{
					Bucket: "b", Region: "us-east-1", Endpoint: endpoint, MaxBackoff: time.Millisecond,
					Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
				})
				if err != nil {
					t.Fatal(err)
				}
				err = op(s)
				if !errors.Is(err, ErrNotS3) || errors.Is(err, tiercache.ErrNotFound) || errors.Is(err, tiercache.ErrIntegrity) {
					t.Fatalf("%s: %v, want ErrNotS3", opName, err)
				}
				host := strings.TrimPrefix(endpoint, "http://")
				wants := []string{host + " is not an S3 endpoint", "check --endpoint"}
				// What the server sent tells whose it is; a HEAD has no
				// body to show.
				if opName != "Stat" {
					switch name {
					case "404 HTML", "403 HTML":
						wants = append(wants, `a page titled "Welcome to nginx!"`)
					case "405 JSON":
						wants = append(wants, `a body starting "{\"error\":\"method not allowed\"}"`)
					}
				}
				for _, want := range wants {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("error holds the secret: %q", err)
				}
				// A wrong endpoint is not retried (List sends its two
				// listings at once).
				want := int64(1)
				if opName == "List" {
					want = 2
				}
				if n := reqs.Load(); n < 1 || n > want {
					t.Errorf("%d requests, want 1 to %d", n, want)
				}
			})
		}
	}
}

// TestS3AnswersWithoutHeaders checks that answers of S3-compatible
// servers that send no x-amz-request-id (R2, GCS) are not taken for a
// wrong endpoint.
func TestS3AnswersWithoutHeaders(t *testing.T) {
	cases := map[string]struct {
		answer func(http.ResponseWriter, *http.Request)
		want   error
	}{
		"GET 404 with an S3 error document": {func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code><Message>No such object.</Message></Error>`)
		}, tiercache.ErrNotFound},
		"GET 403 with an S3 error document": {func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
		}, ErrAccessDenied},
		"GET 404 with NoSuchBucket": {func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`)
		}, ErrNoSuchBucket},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			endpoint, _ := notS3Server(t, c.answer)
			s, err := New(context.Background(), Config{
				Bucket: "b", Region: "us-east-1", Endpoint: endpoint, MaxBackoff: time.Millisecond,
				Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Stat(context.Background(), "k")
			if !errors.Is(err, c.want) || errors.Is(err, ErrNotS3) {
				t.Errorf("Stat: %v, want %v", err, c.want)
			}
		})
	}
}

func TestNotS3Answer(t *testing.T) {
	xmlErr := []byte(`<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>`)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		method string
		status int
		header http.Header
		body   []byte
		want   bool
	}{
		{"GET", 404, h("Content-Type", "text/html"), nil, true},
		{"GET", 404, h("Content-Type", "text/html", "X-Amz-Request-Id", "1"), nil, false},
		{"GET", 404, h("X-Amz-Id-2", "x"), nil, false},
		{"GET", 404, h("Content-Type", "application/xml"), xmlErr, false},
		{"GET", 404, h(), nil, true},
		{"PUT", 501, h("Content-Type", "text/plain"), []byte("nope"), true},
		{"HEAD", 404, h(), nil, false},
		{"HEAD", 404, h("Content-Type", "text/html"), nil, true},
		{"GET", 200, h("Content-Type", "text/html; charset=utf-8"), nil, true},
		{"GET", 200, h("Content-Type", "application/json"), nil, false},
		{"GET", 206, h("Content-Type", "application/zstd"), nil, false},
		// Outages behind a proxy stay transient faults.
		{"GET", 502, h("Content-Type", "text/plain"), []byte("bad gateway"), false},
		{"GET", 503, h(), nil, false},
		{"GET", 429, h(), nil, false},
		{"GET", 502, h("Content-Type", "text/html"), nil, false},
		{"PUT", 301, h("Content-Type", "text/html"), nil, true},
	}
	for _, c := range cases {
		if got := notS3Answer(c.method, c.status, c.header, c.body); got != c.want {
			t.Errorf("notS3Answer(%s, %d, %v, %q) = %t, want %t", c.method, c.status, c.header, c.body, got, c.want)
		}
	}
}

func TestNestedSetting(t *testing.T) {
	const file = `# comment
[default]
s3 =
  addressing_style = path
[profile ci]
region = eu-west-1
s3 =
  ; comment
  addressing_style = virtual
  addressing_style = auto
[sso-session ci]
s3 =
  addressing_style = path
[profile default]
s3 =
  addressing_style = virtual
`
	cases := []struct {
		profile, want string
		found         bool
	}{
		{"default", "virtual", true}, // [profile default] comes last
		{"ci", "auto", true},
		{"other", "", false},
	}
	for _, c := range cases {
		got, found := nestedSetting(strings.NewReader(file), c.profile, "s3", "addressing_style")
		if got != c.want || found != c.found {
			t.Errorf("profile %q: %q, %t, want %q, %t", c.profile, got, found, c.want, c.found)
		}
	}
}

// TestMetadataHopLimit: an instance that requires IMDSv2, seen from a
// container with a metadata hop limit of 1, drops the token's answer,
// and the SDK's fallback without a token is refused (401). The error
// names the hop limit, not "no AWS credentials found", which sent users
// looking for a missing role.
func TestMetadataHopLimit(t *testing.T) {
	isolateAWS(t)
	var tokenReqs, roleReqs atomic.Int64
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			// The answer never arrives: the client gives up first.
			tokenReqs.Add(1)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		roleReqs.Add(1)
		http.Error(w, "", http.StatusUnauthorized)
	}))
	defer imds.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	s, err := New(context.Background(), Config{
		Bucket: "b", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000",
		HTTPClient: clientFunc(func(r *http.Request) (*http.Response, error) {
			t.Errorf("S3 request sent without credentials: %s %s", r.Method, r.URL)
			return s3Miss(r), nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := s.Stat(context.Background(), "k")
	if !errors.Is(statErr, ErrCredentialService) || errors.Is(statErr, ErrNoCredentials) {
		t.Fatalf("Stat with IMDSv2 out of reach: %v", statErr)
	}
	for _, want := range []string{"HTTP 401", "IMDSv2", "hop limit"} {
		if !strings.Contains(statErr.Error(), want) {
			t.Errorf("error %q does not mention %q", statErr, want)
		}
	}
	if tokenReqs.Load() == 0 || roleReqs.Load() == 0 {
		t.Errorf("%d token and %d role requests, want both tried", tokenReqs.Load(), roleReqs.Load())
	}
}
