package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
)

func TestQuiet(t *testing.T) {
	e := newEnv(t)
	src := smallTree(t, "q")
	for _, args := range [][]string{
		{"push", "--quiet", "q", src},
		{"pull", "-q", "q", filepath.Join(t.TempDir(), "d")},
		{"pull", "-q", "absent", filepath.Join(t.TempDir(), "d")},
		{"rm", "-q", "absent"},
		{"prune", "-q", "--max-entries", "10"},
		{"ls", "-q", "none-such-prefix"},
	} {
		r := mustCLI(t, e, args...)
		if r.stderr != "" {
			t.Errorf("%v: stderr %q, want nothing", args, r.stderr)
		}
	}
	// TIERCACHE_QUIET does the same.
	r := mustCLI(t, e.with("TIERCACHE_QUIET", "true"), "pull", "q", filepath.Join(t.TempDir(), "d"))
	if r.stderr != "" {
		t.Errorf("TIERCACHE_QUIET: stderr %q", r.stderr)
	}
	// Errors still show.
	r = cli(t, e, "pull", "-q", "--fail-on-miss", "absent", filepath.Join(t.TempDir(), "d"))
	if r.code != exitMiss || r.stderr != "tiercache: pull \"absent\": cache miss (--fail-on-miss)\n" {
		t.Errorf("quiet failure: exit %d, stderr %q", r.code, r.stderr)
	}
	// --json output is the result, not chatter: it stays.
	r = mustCLI(t, e, "pull", "-q", "--json", "q", filepath.Join(t.TempDir(), "d"))
	if r.stderr != "" || !strings.Contains(r.stdout, `"hit": true`) {
		t.Errorf("quiet json: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

func TestVerbose(t *testing.T) {
	e := newEnv(t)
	r := mustCLI(t, e, "push", "--verbose", "v", smallTree(t, "v"))
	if !strings.Contains(r.stderr, "local tier: "+e["TIERCACHE_DIR"]) || !strings.Contains(r.stderr, "remote tier: none") {
		t.Errorf("verbose push stderr: %q", r.stderr)
	}
	r = mustCLI(t, e, "pull", "-v", "v", filepath.Join(t.TempDir(), "d"))
	if !strings.Contains(r.stderr, "extracted the local archive into") {
		t.Errorf("verbose pull stderr: %q", r.stderr)
	}
	r = mustCLI(t, e, "pull", "-v", "--link", "v", filepath.Join(t.TempDir(), "l"))
	if !strings.Contains(r.stderr, "copied into") || !strings.Contains(r.stderr, "22 hardlinked from the cache") {
		t.Errorf("verbose pull --link stderr: %q", r.stderr)
	}
	r = cli(t, e, "ls", "-q", "-v")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--quiet and --verbose") {
		t.Errorf("-q -v: exit %d, stderr %q", r.code, r.stderr)
	}
	// A flag wins over the other's variable.
	quiet := env{"TIERCACHE_QUIET": "true"}
	for k, v := range e {
		quiet[k] = v
	}
	if r := mustCLI(t, quiet, "ls", "-v"); !strings.Contains(r.stderr, "local tier: ") {
		t.Errorf("TIERCACHE_QUIET with -v: stderr %q; want verbose output", r.stderr)
	}
	quiet["TIERCACHE_VERBOSE"] = "true"
	if r := mustCLI(t, quiet, "ls", "-q"); strings.Contains(r.stderr, "local tier: ") {
		t.Errorf("TIERCACHE_VERBOSE and TIERCACHE_QUIET with -q: stderr %q; want it quiet", r.stderr)
	}
	if r := cli(t, quiet, "ls"); r.code != exitUsage || !strings.Contains(r.stderr, "TIERCACHE_QUIET and TIERCACHE_VERBOSE") {
		t.Errorf("both variables: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEnvPrecedence(t *testing.T) {
	envDir := filepath.Join(t.TempDir(), "from-env")
	flagDir := filepath.Join(t.TempDir(), "from-flag")
	e := env{"TIERCACHE_DIR": envDir, "TIERCACHE_NO_SYNC": "true"}
	mustCLI(t, e, "push", "in-env-dir", smallTree(t, "e"))
	mustCLI(t, e, "--cache-dir", flagDir, "push", "in-flag-dir", smallTree(t, "f"))

	keys := func(args ...string) []string {
		t.Helper()
		var entries []tiercache.Entry
		decode(t, mustCLI(t, e, append([]string{"ls", "--json"}, args...)...), &entries)
		var ks []string
		for _, en := range entries {
			ks = append(ks, en.Key)
		}
		return ks
	}
	if got := keys(); len(got) != 1 || got[0] != "in-env-dir" {
		t.Errorf("TIERCACHE_DIR: keys %v, want [in-env-dir]", got)
	}
	if got := keys("--cache-dir", flagDir); len(got) != 1 || got[0] != "in-flag-dir" {
		t.Errorf("--cache-dir over TIERCACHE_DIR: keys %v, want [in-flag-dir]", got)
	}

	// A boolean from the environment, overridden by the flag.
	ro := e.with("TIERCACHE_READ_ONLY", "true")
	r := cli(t, ro, "push", "ro", smallTree(t, "ro"))
	if r.code != exitFailure || !strings.Contains(r.stderr, `tiercache: push "ro": cache is read-only`) {
		t.Errorf("TIERCACHE_READ_ONLY push: exit %d, stderr %q", r.code, r.stderr)
	}
	mustCLI(t, ro, "--read-only=false", "push", "ro", smallTree(t, "ro"))
	for _, args := range [][]string{{"rm", "ro"}, {"prune", "--max-entries", "1"}} {
		if r := cli(t, ro, args...); r.code != exitFailure || !strings.Contains(r.stderr, "read-only") {
			t.Errorf("read-only %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	// Pulls work read-only.
	mustCLI(t, ro, "pull", "--fail-on-miss", "ro", filepath.Join(t.TempDir(), "d"))

	// TIERCACHE_JSON and --no-sync.
	r = mustCLI(t, e.with("TIERCACHE_JSON", "true"), "--no-sync", "stats")
	var st map[string]any
	decode(t, r, &st)
	if _, ok := st["local"]; !ok {
		t.Errorf("TIERCACHE_JSON stats: %v", st)
	}
	if r := mustCLI(t, e.with("TIERCACHE_JSON", "true"), "--json=false", "stats"); !strings.HasPrefix(r.stdout, "TIER") {
		t.Errorf("--json=false over TIERCACHE_JSON: %q", r.stdout)
	}

	// A bad value names the variable but never echoes the value.
	r = cli(t, e.with("TIERCACHE_READ_ONLY", "sekrit-value"), "ls")
	if r.code != exitUsage || !strings.Contains(r.stderr, "TIERCACHE_READ_ONLY") || strings.Contains(r.stderr, "sekrit") {
		t.Errorf("bad bool env: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, e.with("TIERCACHE_REMOTE", "https://user:sekrit@example.com/x"), "ls")
	if r.code != exitUsage || !strings.Contains(r.stderr, "TIERCACHE_REMOTE must look like s3://bucket/prefix") || strings.Contains(r.stderr, "sekrit") {
		t.Errorf("bad remote env: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestS3Config checks how flags and TIERCACHE_* variables map onto the S3
// store's configuration, and that empty fields are left to the AWS SDK.
func TestS3Config(t *testing.T) {
	cases := []struct {
		name string
		env  env
		args []string
		want string // Bucket Prefix Region Endpoint Addressing ReadOnly
		err  string
	}{
		{"none", env{}, nil, "local-only", ""},
		{"env", env{"TIERCACHE_REMOTE": "s3://b/p/q", "TIERCACHE_S3_ENDPOINT": "http://127.0.0.1:9000", "TIERCACHE_S3_PATH_STYLE": "1", "TIERCACHE_REGION": "eu-west-1", "TIERCACHE_READ_ONLY": "yes"},
			nil, "", "TIERCACHE_READ_ONLY is not a boolean"},
		{"env all", env{"TIERCACHE_REMOTE": "s3://b/p/q", "TIERCACHE_S3_ENDPOINT": "http://127.0.0.1:9000", "TIERCACHE_S3_PATH_STYLE": "1", "TIERCACHE_REGION": "eu-west-1", "TIERCACHE_READ_ONLY": "true"},
			nil, "b p/q eu-west-1 http://127.0.0.1:9000 path true", ""},
		{"flags win", env{"TIERCACHE_REMOTE": "s3://b/p", "TIERCACHE_S3_ENDPOINT": "http://127.0.0.1:9000", "TIERCACHE_S3_PATH_STYLE": "true", "TIERCACHE_REGION": "eu-west-1"},
			[]string{"--remote", "s3://other", "--endpoint", "https://s3.example.com", "--path-style=false", "--region", "us-west-2"},
			"other  us-west-2 https://s3.example.com virtual false", ""},
		{"AWS vars are the SDK's", env{"TIERCACHE_REMOTE": "s3://b", "AWS_REGION": "ap-south-1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"},
			nil, "b    auto false", ""},
		{"path style flag alone", env{"TIERCACHE_REMOTE": "s3://b", "TIERCACHE_S3_PATH_STYLE": "false"}, []string{"--path-style"}, "b    path false", ""},
		{"path style false from env", env{"TIERCACHE_REMOTE": "s3://b", "TIERCACHE_S3_PATH_STYLE": "false"}, nil, "b    virtual false", ""},
		{"path style unset is auto", env{"TIERCACHE_REMOTE": "s3://b"}, []string{"--endpoint", "http://minio.internal:9000"}, "b   http://minio.internal:9000 auto false", ""},
		{"path style junk", env{"TIERCACHE_REMOTE": "s3://b", "TIERCACHE_S3_PATH_STYLE": "sekrit"}, nil, "", "TIERCACHE_S3_PATH_STYLE is not a boolean"},
		{"timeout without a unit", env{"TIERCACHE_REMOTE": "s3://b", "TIERCACHE_TIMEOUT": "600"}, nil, "", "TIERCACHE_TIMEOUT is not a duration (a number with a unit: 90s, 10m, 1h)"},
		{"bad scheme", env{}, []string{"--remote", "gs://b"}, "", `--remote must look like s3://bucket/prefix, got "gs://b"`},
		{"endpoint as remote", env{"TIERCACHE_REMOTE": "http://127.0.0.1:9000/b"}, nil, "",
			`TIERCACHE_REMOTE must look like s3://bucket/prefix, got "http://127.0.0.1:9000/b"; the endpoint goes in --endpoint (TIERCACHE_S3_ENDPOINT), the bucket in s3://bucket/prefix`},
		{"endpoint with credentials as remote", env{}, []string{"--remote", "https://AKIA:sekrit@s3.example.com/b?X-Amz-Signature=sekrit"}, "",
			`--remote must look like s3://bucket/prefix, got "https://[REDACTED]@s3.example.com/b?[REDACTED]"; the endpoint goes in --endpoint`},
		{"bucket only, no scheme", env{}, []string{"--remote", "my-bucket/ci"}, "", `--remote must look like s3://bucket/prefix, got "my-bucket/ci"`},
		{"no bucket", env{}, []string{"--remote", "s3:///p"}, "", "--remote must look like s3://bucket/prefix"},
		{"credentials in URL", env{}, []string{"--remote", "s3://AKIA:sekrit@b/p"}, "", `--remote must not hold credentials (got "s3://[REDACTED]@b/p")`},
		{"query", env{}, []string{"--remote", "s3://b/p?token=sekrit"}, "", `--remote must not have a query or fragment, got "s3://b/p?[REDACTED]"`},
		{"bad endpoint", env{"TIERCACHE_REMOTE": "s3://b", "TIERCACHE_S3_ENDPOINT": "127.0.0.1:9000"}, nil, "", "TIERCACHE_S3_ENDPOINT must be an http:// or https:// URL"},
		{"endpoint credentials", env{"TIERCACHE_REMOTE": "s3://b"}, []string{"--endpoint", "http://u:sekrit@127.0.0.1"}, "", "--endpoint must not hold credentials"},
		{"endpoint naming the bucket", env{"TIERCACHE_REMOTE": "s3://b/p"}, []string{"--endpoint", "http://127.0.0.1:9000/b"}, "", `--endpoint must not name the bucket (its path is "/b")`},
		{"AWS_MAX_ATTEMPTS", env{"TIERCACHE_REMOTE": "s3://b", "AWS_MAX_ATTEMPTS": "12"}, nil, "b    auto false attempts=12", ""},
		{"AWS_MAX_ATTEMPTS zero", env{"TIERCACHE_REMOTE": "s3://b", "AWS_MAX_ATTEMPTS": "0"}, nil, "", `AWS_MAX_ATTEMPTS="0" must be a whole number from 1 to 100`},
		{"AWS_MAX_ATTEMPTS junk", env{"TIERCACHE_REMOTE": "s3://b", "AWS_MAX_ATTEMPTS": "lots"}, nil, "", `AWS_MAX_ATTEMPTS="lots" must be`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newApp(func(k string) string { return c.env[k] })
			root := newRootCommand(a)
			cmd, _, err := root.Find([]string{"stats"})
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.ParseFlags(c.args); err != nil {
				t.Fatal(err)
			}
			got, err := func() (string, error) {
				if err := a.applyEnv(cmd.Flags()); err != nil {
					return "", err
				}
				cfg, ok, err := a.s3Config(cmd)
				if err != nil || !ok {
					return "local-only", err
				}
				s := fmt.Sprintf("%s %s %s %s %v %t", cfg.Bucket, cfg.Prefix, cfg.Region, cfg.Endpoint, cfg.Addressing, a.flags.readOnly)
				if cfg.MaxAttempts != 0 {
					s += fmt.Sprintf(" attempts=%d", cfg.MaxAttempts)
				}
				return s, nil
			}()
			if c.err != "" {
				var ee *exitError
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &ee) || ee.code != exitUsage {
					t.Fatalf("err = %v, want a usage error containing %q", err, c.err)
				}
				if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "AKIA") {
					t.Errorf("error echoes the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("config %q, want %q", got, c.want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"push", "--no-such-flag", "k", dir}, "unknown flag: --no-such-flag"},
		{[]string{"push", "k"}, "push takes KEY and at least one PATH, got 1 argument(s)"},
		{[]string{"pull", "--key", "k"}, "pull takes at least one PATH (KEY is given with --key), got 0 argument(s)"},
		{[]string{"push", "--exclude", "a//b", "k", dir}, `exclude pattern "a//b"`},
		{[]string{"rm"}, "rm takes at least one KEY"},
		{[]string{"ls", "a", "b"}, "ls takes at most one argument"},
		{[]string{"ls", "--tier", "cloud"}, `--tier must be "local" or "remote"`},
		{[]string{"stats", "x"}, "stats takes no arguments"},
		{[]string{"prune"}, "prune needs at least one limit"},
		{[]string{"prune", "--max-bytes", "10XB"}, `invalid argument "10XB" for "--max-bytes"`},
		{[]string{"prune", "--max-entries", "-1"}, "max entries -1 is negative"},
		{[]string{"prune", "--remote-max-entries", "3"}, "no remote is configured"},
		{[]string{"prune", "--max-bytes", "0.5"}, `"0.5" is less than one byte`},
		{[]string{"ls", "--tier", "remote"}, "ls --tier remote: no remote is configured"},
		{[]string{"--timeout", "-1s", "ls", "--tier", "remote", "--remote", "s3://b/p"}, "--timeout must not be negative"},
		{[]string{"push", "", dir}, `push "": invalid key: empty key`},
		{[]string{"push", "bad\x01key", dir}, `tiercache: push "bad\x01key": invalid key: key "bad\x01key" has control character U+0001`},
		{[]string{"pull", strings.Repeat("k", 600), dir}, "invalid key: key is 600 bytes, the limit is 512"},
		{[]string{"rm", "ok", "bad\nkey"}, `rm "bad\nkey": invalid key`},
	}
	for _, c := range cases {
		r := cli(t, e, c.args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", c.args, r.code, exitUsage, r.stderr)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "tiercache: ") || !strings.Contains(lines[0], c.msg) || !strings.HasPrefix(lines[1], "Run 'tiercache") {
			t.Errorf("%q: stderr %q, want one error line containing %q and a --help hint", c.args, r.stderr, c.msg)
		}
	}
}

func TestFailures(t *testing.T) {
	e := newEnv(t)
	missing := filepath.Join(t.TempDir(), "missing")
	r := cli(t, e, "push", "k", missing)
	if r.code != exitFailure || r.stderr != fmt.Sprintf("tiercache: push %q: directory %s does not exist\n", "k", missing) {
		t.Errorf("missing DIR: exit %d, stderr %q", r.code, r.stderr)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := writeString(file, "x"); err != nil {
		t.Fatal(err)
	}
	// Of several PATHs a missing one is left out with a warning (see
	// TestPushMissingPaths); with --strict it fails.
	r = cli(t, e, "--strict", "push", "k", file, missing)
	if r.code != exitFailure || r.stderr != fmt.Sprintf("tiercache: push %q: path %s does not exist\n", "k", missing) {
		t.Errorf("missing PATH: exit %d, stderr %q", r.code, r.stderr)
	}
	// A cache dir that is not a cache is refused, naming the tier.
	notCache := t.TempDir()
	if err := writeString(filepath.Join(notCache, "precious"), "x"); err != nil {
		t.Fatal(err)
	}
	r = cli(t, e.with("TIERCACHE_DIR", notCache), "ls")
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, "tiercache: ls: local tier: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("foreign cache dir: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	e := newEnv(t)
	r := mustCLI(t, e, "--help")
	for _, want := range []string{"Exit codes:", "TIERCACHE_REMOTE", "AWS_ENDPOINT_URL_S3", "Examples:", "completion"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("root --help lacks %q", want)
		}
	}
	for _, c := range []string{"push", "pull", "ls", "rm", "prune", "stats", "version", "fsck", "keygen", "completion"} {
		r := mustCLI(t, e, c, "--help")
		if !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "--cache-dir") {
			t.Errorf("%s --help lacks examples or global flags:\n%s", c, r.stdout)
		}
	}
	if r := mustCLI(t, e, "pull", "--help"); !strings.Contains(r.stdout, "tar -x") || !strings.Contains(r.stdout, "--restore-key") {
		t.Errorf("pull --help does not document replacement or restore keys")
	}
	if r := mustCLI(t, e, "prune", "--help"); !strings.Contains(r.stdout, "10GiB") {
		t.Errorf("prune --help does not document sizes")
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if r := mustCLI(t, e, "completion", sh); !strings.Contains(r.stdout, "tiercache") {
			t.Errorf("completion %s: %q", sh, r.stdout[:min(len(r.stdout), 200)])
		}
	}
	// Dynamic completion of keys from the local tier.
	mustCLI(t, e, "push", "complete-me", smallTree(t, "c"))
	r = mustCLI(t, e, "__complete", "rm", "")
	if !strings.Contains(r.stdout, "complete-me\n") {
		t.Errorf("key completion: %q", r.stdout)
	}
}

func TestRedaction(t *testing.T) {
	secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	token := "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
	getenv := func(k string) string {
		return map[string]string{"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token, "AWS_ACCESS_KEY_ID": "short"}[k]
	}
	var buf bytes.Buffer
	w := &redactWriter{w: &buf, secrets: secretValues(getenv)}
	msg := "server said: bad signature for " + secret + " with token " + token + "\n"
	n, err := w.Write([]byte(msg))
	if err != nil || n != len(msg) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if strings.Contains(buf.String(), secret) || strings.Contains(buf.String(), token) || strings.Count(buf.String(), "[REDACTED]") != 2 {
		t.Errorf("redacted output: %q", buf.String())
	}
	// Short values are left alone rather than mangling common words.
	if len(secretValues(func(string) string { return "abc" })) != 0 {
		t.Error("short values are treated as secrets")
	}
}

func TestErrorLine(t *testing.T) {
	err := fmt.Errorf("pull %q: %w", "k", errors.New("first line\nsecond line\r\nthird"))
	if got := errorLine(err); got != `tiercache: pull "k": first line second line third` {
		t.Errorf("errorLine = %q", got)
	}
}

// TestJSONOnFailure: with --json, a command that fails prints an object
// naming the error and the exit code on stdout, for the script parsing
// it, besides the message on stderr.
func TestJSONOnFailure(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"push", "--json", "k", filepath.Join(t.TempDir(), "absent")},
		{"ls", "--json", "--bogus"},
	} {
		r := cli(t, e, args...)
		var out struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Error == "" || out.ExitCode != r.code || r.code == 0 {
			t.Errorf("%v: exit %d, stdout %q (%v); want an error object with the exit code", args, r.code, r.stdout, err)
		}
		if !strings.Contains(r.stderr, out.Error) {
			t.Errorf("%v: stderr %q lacks the error %q", args, r.stderr, out.Error)
		}
	}
}
