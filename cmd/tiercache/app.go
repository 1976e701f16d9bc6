package main

import (
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/fsutil"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/s3"
	"github.com/tiercache/tiercache/sign"
	"github.com/tiercache/tiercache/tiered"
)

// Exit codes. They are part of the CLI's documented contract.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitMiss is returned by `pull --fail-on-miss` when nothing matched.
	exitMiss = 3
)

// app is the state of one CLI invocation: global flags, the environment and
// the output streams. Tests build one per run, so nothing here is global.
type app struct {
	// getenv reads the environment; tests pass a map lookup.
	getenv func(string) string
	// lookupEnv also tells a variable set empty from one unset, where
	// the caller can (newApp takes every empty one for unset).
	lookupEnv func(string) (string, bool)
	// isTerminal reports whether w is an interactive terminal (progress
	// bars) rather than a log (plain progress lines).
	isTerminal func(w io.Writer) bool
	// progressInterval is how often a plain progress line is printed
	// when stderr is not a terminal.
	progressInterval time.Duration

	flags globalFlags
	// started is set once flags and arguments are valid and a command
	// starts running: errors before that are usage errors.
	started bool
	// keepTrash is set by the commands on a job's critical path (push,
	// pull): their local tier leaves deleting trash to a detached
	// process, whose cache dir is then recorded in trashDir.
	keepTrash bool
	trashDir  string
	local     *local.Cache
	// softRemote is set by the commands that survive a remote failure
	// (push, pull): an S3 client that cannot be built then leaves the
	// cache local-only, with the failure in remoteErr, unless --strict.
	softRemote bool
	remoteErr  error
	// remote is the remote tier openCache opened, nil without one: rm
	// asks it whether a key was stored.
	remote remote.Store
	// lookupOnly is set by pull --lookup-only, which reads the local
	// tier only: openCache leaves a missing one uncreated, as for
	// noCreateCommands.
	lookupOnly bool
}

// noteTrash records the local tier's directory for a detached deletion if
// the command left trash in it (see keepTrash).
func (a *app) noteTrash() {
	if a.keepTrash && a.local != nil && a.local.HasTrash() {
		a.trashDir = a.local.Root()
	}
}

// globalFlags are the persistent flags of every command.
type globalFlags struct {
	cacheDir  string
	remote    string
	endpoint  string
	pathStyle optionalBool // unset means automatic addressing
	region    string
	// idleTimeout is s3.Config.IdleTimeout; 0 means its default.
	idleTimeout time.Duration
	// timeout is how long after the command starts the remote is given
	// up on (s3.Config.Deadline); 0 means never.
	timeout  time.Duration
	readOnly bool
	noSync   bool
	syncData bool
	noLocal  bool
	// strict makes remote and integrity failures errors (exit 1)
	// instead of warnings (see soft.go).
	strict  bool
	json    bool
	quiet   bool
	verbose bool
	// scope and readScopes are tiered.Options.Scope and ReadScopes.
	scope      string
	readScopes []string
}

// envFlags binds each global flag to its environment variable. Flags win,
// then these; the AWS SDK's own variables (AWS_REGION,
// AWS_ENDPOINT_URL_S3, AWS_PROFILE, ...) apply to whatever is left unset.
var envFlags = []struct{ flag, env string }{
	{"cache-dir", "TIERCACHE_DIR"},
	{"remote", "TIERCACHE_REMOTE"},
	{"endpoint", "TIERCACHE_S3_ENDPOINT"},
	{"path-style", "TIERCACHE_S3_PATH_STYLE"},
	{"region", "TIERCACHE_REGION"},
	{"idle-timeout", "TIERCACHE_S3_IDLE_TIMEOUT"},
	{"timeout", "TIERCACHE_TIMEOUT"},
	{"read-only", "TIERCACHE_READ_ONLY"},
	{"no-sync", "TIERCACHE_NO_SYNC"},
	{"sync-data", "TIERCACHE_SYNC_DATA"},
	{"no-local", "TIERCACHE_NO_LOCAL"},
	{"strict", "TIERCACHE_STRICT"},
	{"json", "TIERCACHE_JSON"},
	{"quiet", "TIERCACHE_QUIET"},
	{"verbose", "TIERCACHE_VERBOSE"},
	{"scope", "TIERCACHE_SCOPE"},
	{"read-scope", "TIERCACHE_READ_SCOPES"},
}

// The signing and trusted keys come from the environment only: a private
// key on a command line would show in process lists and shell history.
const (
	envSigningKey  = "TIERCACHE_SIGNING_KEY"
	envTrustedKeys = "TIERCACHE_TRUSTED_KEYS"
)

// keysOrFile returns v, the value of a key variable, or when v is the
// absolute path of a file (a GitLab CI variable of type File holds one),
// that file's text.
func keysOrFile(v string) (string, error) {
	p := strings.TrimSpace(v)
	if !filepath.IsAbs(p) {
		return v, nil
	}
	// A FIFO or a device would block the open or never end: only a
	// regular file, looked at before it is opened.
	fi, err := os.Stat(p)
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is a %s, not a file", p, fsutil.TypeName(fi.Mode()))
	}
	if err != nil {
		return "", fmt.Errorf("reading the key file it names: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("reading the key file it names: %w", err)
	}
	defer f.Close()
	// Keys are short: a larger file is not one of them.
	const maxKeyFile = 64 << 10
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err == nil && len(b) > maxKeyFile {
		err = fmt.Errorf("%s is larger than %d KiB, which no key file is", p, maxKeyFile>>10)
	}
	if err != nil {
		return "", fmt.Errorf("reading the key file it names: %w", err)
	}
	return string(b), nil
}

func envOf(flag string) string {
	for _, e := range envFlags {
		if e.flag == flag {
			return e.env
		}
	}
	return ""
}

func newApp(getenv func(string) string) *app {
	return &app{
		getenv: getenv,
		lookupEnv: func(k string) (string, bool) {
			v := getenv(k)
			return v, v != ""
		},
		isTerminal:       isTerminal,
		progressInterval: 5 * time.Second,
	}
}

// isTerminal reports whether w is a terminal file.
func isTerminal(w io.Writer) bool {
	for {
		switch v := w.(type) {
		case *os.File:
			return term.IsTerminal(int(v.Fd()))
		case *redactWriter:
			w = v.w
		default:
			return false
		}
	}
}

func (a *app) addGlobalFlags(fs *pflag.FlagSet) {
	f := &a.flags
	fs.StringVar(&f.cacheDir, "cache-dir", "", "local tier directory (env TIERCACHE_DIR; default: tiercache under the user cache dir)")
	fs.StringVar(&f.remote, "remote", "", "remote tier as s3://bucket/prefix; none means local-only (env TIERCACHE_REMOTE)")
	fs.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint URL for S3-compatible stores (env TIERCACHE_S3_ENDPOINT, then AWS_ENDPOINT_URL_S3)")
	fs.Var(&f.pathStyle, "path-style", "address buckets as endpoint/bucket (true) or as bucket.endpoint (false); default: the AWS profile's s3 addressing_style, else path style for any endpoint that is not AWS's (env TIERCACHE_S3_PATH_STYLE)")
	fs.Lookup("path-style").NoOptDefVal = "true"
	fs.StringVar(&f.region, "region", "", "S3 region (env TIERCACHE_REGION, then AWS_REGION and the AWS config)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 0, "retry an S3 request that makes no progress for this long, e.g. 30s (env TIERCACHE_S3_IDLE_TIMEOUT; default 60s)")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up on the remote this long after the command starts, e.g. 10m: a pull goes on as a miss, a push keeps its local copy, with a warning (exit 1 with --strict) (env TIERCACHE_TIMEOUT; default: none)")
	fs.BoolVar(&f.readOnly, "read-only", false, "never write to the remote: push, rm, prune and fsck --repair fail (env TIERCACHE_READ_ONLY)")
	fs.BoolVar(&f.noSync, "no-sync", false, "skip fsync in the local tier: faster, but a power loss may corrupt it; for throwaway machines (env TIERCACHE_NO_SYNC)")
	fs.BoolVar(&f.noLocal, "no-local", false, "push and pull straight between DIR and the remote, keeping no local archive: saves one sequential write on machines that live for one job (env TIERCACHE_NO_LOCAL)")
	fs.BoolVar(&f.syncData, "sync-data", false, "flush each stored tree to disk before publishing it, instead of marking it with the boot ID so it is dropped after a crash; --no-sync overrides it (env TIERCACHE_SYNC_DATA)")
	fs.BoolVar(&f.strict, "strict", false, "fail (exit 1) when the remote or an archive fails, instead of warning and going on as a miss or a local-only save (env TIERCACHE_STRICT)")
	fs.BoolVar(&f.json, "json", false, "print results as JSON on stdout (env TIERCACHE_JSON)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing on stderr but warnings and errors (env TIERCACHE_QUIET)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "print configuration and timings on stderr (env TIERCACHE_VERBOSE)")
	fs.StringVar(&f.scope, "scope", "", "the scope this job writes its entries to and reads first, e.g. the branch or pull request; ls, stats, rm and prune work on it alone (env TIERCACHE_SCOPE; default: the default scope, where every entry lived before scopes)")
	fs.Var(scopeList{&f.readScopes}, "read-scope", "a scope to read after --scope, never written, e.g. the default branch; repeat for several, tried in order; an empty name is the default scope (env TIERCACHE_READ_SCOPES, comma-separated)")
}

// scopeGiven reports whether --scope (or TIERCACHE_SCOPE) was given, so
// that ls, stats, rm and prune keep to it; without it, ls lists (and
// stats counts) every scope.
func (a *app) scopeGiven(cmd *cobra.Command) bool {
	if fl := cmd.Flags().Lookup("scope"); fl != nil && fl.Changed {
		return true
	}
	return strings.TrimSpace(a.getenv("TIERCACHE_SCOPE")) != ""
}

// trustOptions sets the scopes, signer and trusted keys of opts from the
// flags and the environment. A key that does not parse is a usage error
// naming the variable, never quoting a private key.
func (a *app) trustOptions(cmd *cobra.Command, opts *tiered.Options) error {
	if err := a.checkScopes(); err != nil {
		return err
	}
	opts.Scope, opts.ReadScopes = a.flags.scope, a.flags.readScopes
	if a.flags.scope != "" || len(a.flags.readScopes) > 0 {
		a.verbosef(cmd, "scope: %q, then reading %q", a.flags.scope, a.flags.readScopes)
	}
	if v := a.getenv(envSigningKey); strings.TrimSpace(v) != "" && cmd.Name() == "push" {
		v, err := keysOrFile(v)
		if err != nil {
			return usageErrorf("%s: %v", envSigningKey, err)
		}
		priv, err := sign.ParsePrivateKey(v)
		if err != nil {
			return usageErrorf("%s: %v", envSigningKey, err)
		}
		opts.Signer = priv
		a.verbosef(cmd, "signing: entries are signed by key %s", sign.Fingerprint(priv.Public().(ed25519.PublicKey)))
	}
	if v, set := a.lookupEnv(envTrustedKeys); set && strings.TrimSpace(v) == "" && cmd.Name() == "pull" {
		// A CI variable or secret that is missing expands to "": say
		// so, rather than trust every entry without a word.
		a.warnf(cmd, "%s is set but empty: this pull accepts unsigned entries (unset it, or set it to the public keys whose entries to trust)", envTrustedKeys)
	}
	if v := a.getenv(envTrustedKeys); strings.TrimSpace(v) != "" {
		v, err := keysOrFile(v)
		if err != nil {
			return usageErrorf("%s: %v", envTrustedKeys, err)
		}
		keys, err := sign.ParsePublicKeys(v)
		if err != nil {
			return usageErrorf("%s: %v", envTrustedKeys, err)
		}
		if opts.Trust, err = sign.NewTrust(keys); err != nil {
			return usageErrorf("%s: %v", envTrustedKeys, err)
		}
		fps := make([]string, len(keys))
		for i, k := range keys {
			fps[i] = sign.Fingerprint(k)
		}
		a.verbosef(cmd, "trusted keys: only entries signed by %s are restored", strings.Join(fps, ", "))
	}
	return nil
}

// checkScopes validates --scope and --read-scope: a bad one is a usage
// error.
func (a *app) checkScopes() error {
	// "main, dev" names dev, not " dev": the space is the list's.
	for i, s := range a.flags.readScopes {
		a.flags.readScopes[i] = strings.TrimSpace(s)
	}
	for _, s := range append([]string{a.flags.scope}, a.flags.readScopes...) {
		if err := tiercache.ValidateScope(s); err != nil {
			return usageErrorf("%v", err)
		}
	}
	return nil
}

// applyEnv fills every global flag not given on the command line from its
// environment variable. Values are never echoed: a misplaced secret must
// not end up in a CI log.
func (a *app) applyEnv(fs *pflag.FlagSet) error {
	for _, e := range envFlags {
		fl := fs.Lookup(e.flag)
		if fl == nil || fl.Changed {
			continue
		}
		v := strings.TrimSpace(a.getenv(e.env))
		if v == "" {
			continue
		}
		if fl.Value.Type() == "bool" {
			if _, err := strconv.ParseBool(v); err != nil {
				return usageErrorf("environment variable %s is not a boolean (use true or false)", e.env)
			}
		}
		if err := fl.Value.Set(v); err != nil {
			if fl.Value.Type() == "duration" {
				return usageErrorf("environment variable %s is not a duration (a number with a unit: 90s, 10m, 1h)", e.env)
			}
			return usageErrorf("environment variable %s is invalid; it takes what --%s takes (see --help)", e.env, e.flag)
		}
	}
	if a.flags.quiet && a.flags.verbose {
		q, v := fs.Lookup("quiet"), fs.Lookup("verbose")
		switch {
		case q != nil && v != nil && q.Changed && v.Changed:
			return usageErrorf("--quiet and --verbose cannot be used together")
		case q != nil && q.Changed:
			a.flags.verbose = false // the flag wins over TIERCACHE_VERBOSE
		case v != nil && v.Changed:
			a.flags.quiet = false // the flag wins over TIERCACHE_QUIET
		default:
			return usageErrorf("TIERCACHE_QUIET and TIERCACHE_VERBOSE cannot both be true")
		}
	}
	return nil
}

// optionalBool is a boolean flag that also knows whether it was set.
type optionalBool struct{ set, val bool }

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.set, b.val = true, v
	return nil
}

func (b *optionalBool) String() string {
	if !b.set {
		return ""
	}
	return strconv.FormatBool(b.val)
}

// Type is "bool", so help shows no value placeholder and applyEnv checks
// the variable as a boolean.
func (b *optionalBool) Type() string { return "bool" }

// remoteURL is a parsed --remote.
type remoteURL struct{ bucket, prefix string }

// parseRemote parses s3://bucket[/prefix]. The messages quote the value
// with its user info and query redacted (see redactURL): that is where
// someone would put credentials by mistake.
func parseRemote(s, origin string) (remoteURL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.Opaque != "" {
		msg := fmt.Sprintf("%s must look like s3://bucket/prefix, got %q", origin, redactURL(s))
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			msg += "; the endpoint goes in --endpoint (TIERCACHE_S3_ENDPOINT), the bucket in s3://bucket/prefix"
		}
		return remoteURL{}, usageErrorf("%s", msg)
	}
	if u.User != nil {
		return remoteURL{}, usageErrorf("%s must not hold credentials (got %q); they come from the AWS credential chain", origin, redactURL(s))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return remoteURL{}, usageErrorf("%s must not have a query or fragment, got %q", origin, redactURL(s))
	}
	return remoteURL{bucket: u.Host, prefix: strings.TrimPrefix(u.Path, "/")}, nil
}

// redactURL returns s for an error message with the parts that may hold
// secrets replaced: the user info (user:password@) and everything from a
// '?' or '#' on. It works on the text, so a value that does not parse as
// a URL is redacted too.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i+1] + "[REDACTED]"
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	end := len(s)
	if i := strings.IndexByte(s[start:], '/'); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
		s = s[:start] + "[REDACTED]" + s[start+at:]
	}
	return s
}

// origin names where a flag's value came from, for error messages.
func (a *app) origin(fs *pflag.FlagSet, flag string) string {
	if fl := fs.Lookup(flag); fl != nil && !fl.Changed {
		return envOf(flag)
	}
	return "--" + flag
}

// cacheDir is the local tier's root.
func (a *app) cacheDir() (string, error) {
	if a.flags.cacheDir != "" {
		// A YAML env: value is no shell's to expand: "~/tc" would
		// make a directory named "~" in the working directory.
		dirs, err := a.expandPaths([]string{a.flags.cacheDir})
		if err != nil {
			return "", err
		}
		return dirs[0], nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", usageErrorf("no user cache directory (%v); set --cache-dir or TIERCACHE_DIR", err)
	}
	return filepath.Join(base, "tiercache"), nil
}

// s3Config maps the global flags onto the S3 store's configuration. Empty
// fields are left to the AWS SDK, which reads AWS_REGION,
// AWS_ENDPOINT_URL_S3, profiles and the credential chain itself.
func (a *app) s3Config(cmd *cobra.Command) (s3.Config, bool, error) {
	if a.flags.remote == "" {
		return s3.Config{}, false, nil
	}
	r, err := parseRemote(a.flags.remote, a.origin(cmd.Flags(), "remote"))
	if err != nil {
		return s3.Config{}, false, err
	}
	if a.flags.endpoint != "" {
		u, err := url.Parse(a.flags.endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s3.Config{}, false, usageErrorf("%s must be an http:// or https:// URL", a.origin(cmd.Flags(), "endpoint"))
		}
		if u.User != nil {
			return s3.Config{}, false, usageErrorf("%s must not hold credentials; they come from the AWS credential chain", a.origin(cmd.Flags(), "endpoint"))
		}
		// A path is prefixed to every request (a gateway mounted below
		// a path needs it), but the remote's bucket there is a mistake
		// that would silently store everything under another prefix.
		if first, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); first == r.bucket {
			return s3.Config{}, false, usageErrorf("%s must not name the bucket (its path is %q): give the server's address alone, and the bucket in %s", a.origin(cmd.Flags(), "endpoint"), u.Path, a.origin(cmd.Flags(), "remote"))
		}
	}
	if a.flags.idleTimeout < 0 {
		return s3.Config{}, false, usageErrorf("%s must not be negative", a.origin(cmd.Flags(), "idle-timeout"))
	}
	if a.flags.timeout < 0 {
		return s3.Config{}, false, usageErrorf("%s must not be negative", a.origin(cmd.Flags(), "timeout"))
	}
	var deadline time.Time
	if a.flags.timeout > 0 {
		deadline = time.Now().Add(a.flags.timeout)
	}
	// The AWS SDKs' own variable for retries: the store sets its retryer
	// itself, so the SDK would not read it.
	var attempts int
	if v := a.getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAttempts {
			return s3.Config{}, false, usageErrorf("AWS_MAX_ATTEMPTS=%q must be a whole number from 1 to %d", v, maxAttempts)
		}
		attempts = n
	}
	addressing := s3.AddressingAuto
	if ps := a.flags.pathStyle; ps.set && ps.val {
		addressing = s3.AddressingPath
	} else if ps.set {
		addressing = s3.AddressingVirtual
	}
	return s3.Config{
		Bucket:      r.bucket,
		Prefix:      r.prefix,
		Region:      a.flags.region,
		Endpoint:    a.flags.endpoint,
		Addressing:  addressing,
		IdleTimeout: a.flags.idleTimeout,
		Deadline:    deadline,
		MaxAttempts: attempts,
	}, true, nil
}

// maxAttempts bounds AWS_MAX_ATTEMPTS: with backoffs capped at 20 s, a
// hundred attempts already retry one request for over half an hour.
const maxAttempts = 100

// openCache builds the tiered cache the global flags describe. progress,
// if not nil, receives transfer progress.
//
// With --no-local, push and pull get a remote-only cache: the local tier
// is not opened, so its directory is neither created nor touched (a job
// on a throwaway machine may point it anywhere, or nowhere writable).
//
// ls, stats, rm, prune, fsck and pull --lookup-only never create the
// local tier's directory: when it does not exist they get a remote-only
// cache, whose local tier reads as empty, or with no remote a nil cache
// and no error, since there is nothing to list, remove or check.
func (a *app) openCache(cmd *cobra.Command, progress func(tiered.Progress)) (*tiered.Cache, error) {
	remoteOnly := a.flags.noLocal && noLocalCommands[cmd.Name()]
	var dir string
	var absent bool
	if !remoteOnly {
		var err error
		if dir, err = a.cacheDir(); err != nil {
			return nil, err
		}
		absent = (noCreateCommands[cmd.Name()] || a.lookupOnly) && !localExists(dir)
	}
	cfg, hasRemote, err := a.s3Config(cmd)
	if err != nil {
		return nil, err
	}
	switch {
	case remoteOnly:
		a.verbosef(cmd, "local tier: none (--no-local)")
	case absent:
		a.verbosef(cmd, "local tier: %s does not exist yet: nothing stored", dir)
	default:
		a.verbosef(cmd, "local tier: %s", dir)
	}
	if hasRemote {
		a.verbosef(cmd, "remote tier: %s", describeRemote(cfg))
	} else {
		a.verbosef(cmd, "remote tier: none (local-only)")
	}
	if a.flags.readOnly {
		a.verbosef(cmd, "read-only: no write request will be sent")
	}
	if a.flags.noLocal {
		if !hasRemote {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("--no-local needs a remote tier (--remote or TIERCACHE_REMOTE)")}
		}
		a.verbosef(cmd, "no-local: push and pull go straight between DIR and the remote")
	}
	opts := tiered.Options{ReadOnly: a.flags.readOnly, Progress: progress, NoLocal: remoteOnly}
	if remoteOnly {
		// Unused, the tier is still where other jobs keep theirs: a
		// pull never writes into it, a push leaves it out.
		if root, err := a.cacheDir(); err == nil {
			opts.LocalRoot, _ = filepath.Abs(root)
		}
	}
	if err := a.trustOptions(cmd, &opts); err != nil {
		return nil, err
	}
	if absent && !hasRemote {
		return nil, nil
	}
	var l *local.Cache
	if !remoteOnly && !absent {
		l, err = local.Open(dir, local.Options{NoSync: a.flags.noSync, SyncData: a.flags.syncData, KeepTrash: a.keepTrash})
		if errors.Is(err, fs.ErrPermission) {
			// A user without a writable home (nobody's is
			// /nonexistent) gets a default that cannot be made.
			return nil, fmt.Errorf("local tier: %s: %w; set %s (--cache-dir) to a directory this user may write, or use --no-local with a remote",
				dir, err, envOf("cache-dir"))
		}
		if err != nil {
			return nil, fmt.Errorf("local tier: %w", err)
		}
		a.local = l
	}
	if hasRemote {
		store, err := s3.New(cmd.Context(), cfg)
		switch {
		case err == nil:
			opts.Remote = store
			if a.flags.readOnly {
				// No write request can leave through the wrapper.
				opts.Remote = remote.ReadOnly(store)
			}
			if a.remote, err = remote.InScope(opts.Remote, opts.Scope); err != nil {
				return nil, err
			}
		case a.softRemote && !a.flags.strict && cmd.Context().Err() == nil:
			a.remoteErr = &tiered.RemoteError{Err: fmt.Errorf("remote: %w", err)}
		default:
			return nil, fmt.Errorf("remote: %w", err)
		}
	}
	switch {
	case l == nil && opts.Remote == nil && absent:
		// No local tier yet and a remote that cannot be used: nothing
		// to look at; the command reports a.remoteErr as it would
		// beside a local tier.
		return nil, nil
	case l == nil && opts.Remote == nil:
		// --no-local and a remote that cannot be used: no cache at
		// all, which the command reports as the remote's failure.
		return nil, a.remoteErr
	}
	return tiered.New(l, opts)
}

// localExists reports whether the local tier's directory dir exists (or
// may: only a certain absence counts), for the commands that must not
// create it.
func localExists(dir string) bool {
	_, err := os.Stat(dir)
	return !errors.Is(err, fs.ErrNotExist)
}

// noCreateCommands are the commands that leave a missing local tier
// uncreated (see openCache; pull too with --lookup-only).
var noCreateCommands = map[string]bool{"ls": true, "stats": true, "rm": true, "prune": true, "fsck": true}

// noLocalCommands are the commands --no-local applies to; the others
// (ls, rm, prune, stats, fsck) still see the local tier.
var noLocalCommands = map[string]bool{"push": true, "pull": true}

// describeRemote is the verbose description of the remote: where, never
// with what credentials.
func describeRemote(cfg s3.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "s3://%s/%s", cfg.Bucket, cfg.Prefix)
	if cfg.Endpoint != "" {
		if u, err := url.Parse(cfg.Endpoint); err == nil {
			fmt.Fprintf(&b, " at %s://%s", u.Scheme, u.Host)
		}
	} else {
		b.WriteString(" at the AWS SDK's endpoint")
	}
	if cfg.Region != "" {
		fmt.Fprintf(&b, ", region %s", cfg.Region)
	}
	switch {
	case cfg.PathStyle || cfg.Addressing == s3.AddressingPath:
		b.WriteString(", path-style")
	case cfg.Addressing == s3.AddressingVirtual:
		b.WriteString(", virtual-host style")
	default:
		b.WriteString(", addressing from the AWS profile or the endpoint")
	}
	return b.String()
}

// infof prints a status line on stderr unless --quiet.
func (a *app) infof(cmd *cobra.Command, format string, args ...any) {
	if a.flags.quiet {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "tiercache: %s\n", printable(fmt.Sprintf(format, args...)))
}

// verbosef prints a detail line on stderr with --verbose.
func (a *app) verbosef(cmd *cobra.Command, format string, args ...any) {
	if !a.flags.verbose || a.flags.quiet {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "tiercache: %s\n", printable(fmt.Sprintf(format, args...)))
}

// exitError carries an exit code other than exitFailure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a mistake in how the CLI was called (exit 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// asUsage marks err as a usage error, keeping its message.
func asUsage(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitUsage, err: err}
}

// exitCode maps an error returned by the command tree onto an exit code.
func (a *app) exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if !a.started {
		// cobra's own errors: unknown command or flag, wrong arguments.
		return exitUsage
	}
	return exitFailure
}

// errorLine renders err as the single line printed on stderr.
func errorLine(err error) string {
	// The hint a warning gives for the same failure: rm, fsck, prune and
	// --strict fail on what other commands only warn of.
	msg := singleLine(withHint(err))
	if errors.Is(err, context.Canceled) {
		msg = "interrupted: " + msg
	}
	return "tiercache: " + msg
}

// scopeList is --read-scope's value: each use adds one scope, or several
// separated by commas (CSV, so a quoted name may hold one), as pflag's
// string slices do, except that an empty value is the default scope "",
// which a string slice would take for no scope at all.
type scopeList struct{ v *[]string }

func (l scopeList) Set(val string) error {
	if val == "" {
		*l.v = append(*l.v, "")
		return nil
	}
	r := csv.NewReader(strings.NewReader(val))
	r.TrimLeadingSpace = true // "main, dev", and `main, "dev,x"`
	fields, err := r.Read()
	if err != nil {
		return fmt.Errorf("%q: %w", val, err)
	}
	*l.v = append(*l.v, fields...)
	return nil
}

func (l scopeList) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l scopeList) Type() string { return "strings" }
