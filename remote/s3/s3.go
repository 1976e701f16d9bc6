// Package s3 implements remote.Store on Amazon S3 and S3-compatible
// servers (MinIO, Ceph RGW, Cloudflare R2, GCS interoperability) with
// aws-sdk-go-v2.
//
// # Layout and atomicity
//
// Every Put uploads the archive to a new, uniquely named data object and
// then writes a small JSON manifest, the commit point, naming it:
//
//	<prefix>manifests/<stem>.json
//	<prefix>data/<stem>/<time>-<random>-<tree size>.tar.zst
//	<prefix>access/<stem>
//
// Readers read the manifest, then the data object it names, so they see a
// complete old version, a complete new one or nothing, whatever concurrent
// writers do or however they die. A replaced data object stays readable
// for Config.OrphanGrace after the new manifest commits, so a reader that
// read the old manifest finishes with the old version: the new manifest
// lists it with the time it was replaced (its upload time says nothing of
// that), and a later Put, Prune or Check with Repair deletes it once that
// time is past the grace. Data left by writers that died or raced is
// collected by Prune once uploaded longer than Config.OrphanGrace ago.
// The data object is a plain .tar.zst: `zstd -d | tar -x` restores it
// without tiercache.
//
// The stem is the key's encoding (see encodeKey), which is injective,
// cannot produce "." or ".." segments, and preserves prefixes, so
// List(prefix) is one listing. Every valid key fits: a key whose encoding
// is too long for S3 (512 escaped bytes) gets a stem made of the encoding
// of its leading part and the SHA-256 of the whole key (see stemFor); the
// manifest records the full key, which readers check.
//
// # LRU
//
// Touch writes the zero-byte access marker, whose LastModified is the
// last access; how often is the caller's choice. Prune and Check share
// one survey of three listings (data object names give tree sizes,
// markers and manifests give last accesses); it reads a manifest only
// for the rare key with several data objects or data but no manifest.
//
// # Requests
//
// Uploads are multipart and concurrent with bounded memory; downloads are
// parallel ranged GETs reassembled into one stream, and a body cut
// mid-transfer is resumed from the byte where it stopped. Requests are
// retried by the SDK's standard retryer (exponential backoff with jitter)
// for transient faults only. Every attempt is bounded: one that makes no
// progress for Config.IdleTimeout (a stalled server) or is not done after
// Config.RequestTimeout is cut off and retried like a reset, so a fault
// ends in success or in an error naming the key, never in a hang;
// Config.Deadline bounds them all together, for a server slow but never
// still. A multipart upload whose creation was retried aborts the uploads the
// lost answers created. Request checksums are computed, and response
// checksums validated, only when an operation requires it, because many
// S3-compatible servers reject the newer checksum headers.
package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// Bounds of Config.PartSize, S3's limits on multipart parts (all but the
// last part must be at least MinPartSize).
const (
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
)

// Defaults for the zero values of Config.
const (
	DefaultPartSize    = 16 << 20
	DefaultConcurrency = 4
	DefaultOrphanGrace = time.Hour
	DefaultMaxAttempts = 5
	DefaultMaxBackoff  = 20 * time.Second
	DefaultIdleTimeout = 60 * time.Second
	// DefaultRequestTimeout is the least default Config.RequestTimeout.
	DefaultRequestTimeout = 10 * time.Minute
)

// minRate is the slowest transfer of one part (or range) the default
// RequestTimeout allows: a large PartSize gets a longer default.
const minRate = 64 << 10 // bytes per second

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

// listConcurrency bounds the manifest GETs List runs at once.
const listConcurrency = 16

// detachedTimeout bounds cleanup requests (aborting an upload, deleting an
// uncommitted data object) that run after the caller's context ended.
const detachedTimeout = 30 * time.Second

// Config configures a Store. Zero values mean the documented defaults;
// negative ones are errors.
type Config struct {
	// Bucket is the bucket holding the cache. Required; it must exist.
	Bucket string
	// Prefix is prepended to every object name, e.g. "ci/"; a missing
	// trailing "/" is added. Empty means the bucket root. At most 256
	// bytes (with the "/"), so every key's names fit S3's limit. The prefix (or
	// bucket) should be dedicated to tiercache: objects under its
	// manifests/, data/ and access/ that are named like tiercache's own
	// are treated as such by Prune.
	Prefix string
	// Region is the bucket's region. Empty means the standard AWS chain
	// (AWS_REGION, profiles); if that is empty too and a custom endpoint
	// is configured (Endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or a
	// profile's endpoint_url), "us-east-1", which S3-compatible servers
	// accept. With neither, New fails.
	Region string
	// Endpoint is a custom endpoint URL for S3-compatible servers, e.g.
	// "http://127.0.0.1:9000". Empty means AWS (or AWS_ENDPOINT_URL_S3).
	Endpoint string
	// Addressing is how requests name the bucket. The zero value,
	// AddressingAuto, follows the AWS profile's s3 addressing_style, or
	// else uses path style for any custom endpoint that is not an AWS
	// host and virtual-host style for AWS.
	Addressing Addressing
	// PathStyle, if true, is Addressing: AddressingPath.
	PathStyle bool
	// PartSize is the multipart part size for uploads and the range size
	// for downloads. Default 16 MiB; at least 5 MiB, at most 5 GiB. An
	// archive may have at most 10000 parts (160 GB at the default).
	PartSize int64
	// Concurrency is the number of parts uploaded, or ranges downloaded,
	// at once by one Put or Open. Default 4. Each Put or open stream
	// holds at most PartSize × (Concurrency+1) bytes of buffers.
	Concurrency int
	// OrphanGrace is how old unreferenced data objects and stray access
	// markers must be before Prune deletes them, and how long a data
	// object replaced by a Put stays readable for readers that started
	// on it. It must exceed the longest upload, and the longest download,
	// plus clock differences (on AWS, a multipart object's LastModified
	// can be its upload's start). Default 1h.
	OrphanGrace time.Duration
	// HTTPClient, if set, sends every S3 request, as is (AWS_CA_BUNDLE
	// does not apply to it; IdleTimeout and RequestTimeout do); tests
	// use it to count or fault requests.
	// Default: the SDK's client. Credential providers always use the
	// SDK's client.
	HTTPClient aws.HTTPClient
	// Credentials, if set, signs requests. Default: the standard AWS chain
	// (environment, shared profiles, SSO, web identity, container and
	// instance roles).
	Credentials aws.CredentialsProvider
	// MaxAttempts is the most attempts for one request, retries of
	// transient faults included, and the most times one range of a
	// download is resumed. Default 5.
	MaxAttempts int
	// MaxBackoff caps the delay between attempts. Default 20s.
	MaxBackoff time.Duration
	// IdleTimeout is the longest one request may go without progress:
	// the wait for the response headers (from the start, or from the
	// last request-body bytes sent) and each wait for response-body
	// bytes. A stalled request is abandoned and retried like a reset
	// connection (a download resumes where it stopped), up to
	// MaxAttempts, but an attempt with no answer at all, begun after a
	// stall with nothing from the server since, is not: each request
	// in flight when the server went quiet gets one retry, and one sent
	// later none. The error then says "stalled". Default 60s.
	IdleTimeout time.Duration
	// RequestTimeout is the longest one attempt of one request may take
	// from start to the end of its response body, so a server trickling
	// bytes cannot hold a transfer either; an attempt that times out is
	// retried like a stall. Default 10 minutes, or the time to move one
	// PartSize at 64 KiB/s if that is longer. With the retries, one
	// request is bounded by about MaxAttempts × (RequestTimeout +
	// MaxBackoff), and a download range resumed MaxAttempts times.
	RequestTimeout time.Duration
	// Deadline, if set, is when the Store gives up on the server, so
	// that a slow remote costs a job no more than the time it allows: a
	// request still running then is cut off, and none is sent after it.
	// Either fails with an error wrapping ErrDeadline, not retried. A Put
	// cut off leaves what it uploaded for Prune, as a killed one does
	// (see OrphanGrace). Zero: none.
	Deadline time.Time
	// NoCopy stops Put from copying byte ranges of a base archive
	// server-side (UploadPartCopy, see remote.Reuser): every byte is
	// uploaded. withDefaults sets it for the servers known to be unable
	// to compose an object that way: Cloudflare R2 (every part but the
	// last must have the same size) and Google Cloud Storage's XML API
	// (no ranged copy). A server that answers a copy with 501
	// NotImplemented gets it too, for the Store's lifetime.
	NoCopy bool
}

// withDefaults returns c with every zero knob set to its default, the
// prefix normalized and PathStyle folded into Addressing, or an error
// naming the first setting out of range.
func (c Config) withDefaults() (Config, error) {
	var err error
	if c.Bucket == "" {
		return c, fmt.Errorf("%w: s3: no bucket configured", tiercache.ErrInvalidArgument)
	}
	if c.Prefix, err = validatePrefix(c.Prefix); err != nil {
		return c, err
	}
	if c.Endpoint != "" {
		// Without a scheme, every request would fail on the SDK's "not
		// a valid URI" instead.
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("%w: s3: endpoint %q is not an http:// or https:// URL", tiercache.ErrInvalidArgument, c.Endpoint)
		}
	}
	switch {
	case c.Addressing < AddressingAuto || c.Addressing > AddressingVirtual:
		return c, fmt.Errorf("%w: s3: unknown addressing %v", tiercache.ErrInvalidArgument, c.Addressing)
	case c.PathStyle && c.Addressing == AddressingVirtual:
		return c, fmt.Errorf("%w: s3: PathStyle contradicts virtual-host addressing", tiercache.ErrInvalidArgument)
	case c.PathStyle:
		c.Addressing = AddressingPath
	}
	switch {
	case c.PartSize == 0:
		c.PartSize = DefaultPartSize
	case c.PartSize < MinPartSize || c.PartSize > MaxPartSize:
		return c, fmt.Errorf("%w: s3: part size %d is outside [%d, %d]", tiercache.ErrInvalidArgument, c.PartSize, MinPartSize, int64(MaxPartSize))
	}
	c.NoCopy = c.NoCopy || cannotCopy(cmp.Or(c.Endpoint, os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL")))
	// After PartSize: a large part gets a longer default.
	reqTimeout := max(DefaultRequestTimeout, time.Duration(c.PartSize/minRate)*time.Second)
	err = cmp.Or(
		orDefault("concurrency", &c.Concurrency, DefaultConcurrency),
		orDefault("orphan grace", &c.OrphanGrace, DefaultOrphanGrace),
		orDefault("max attempts", &c.MaxAttempts, DefaultMaxAttempts),
		orDefault("max backoff", &c.MaxBackoff, DefaultMaxBackoff),
		orDefault("idle timeout", &c.IdleTimeout, DefaultIdleTimeout),
		orDefault("request timeout", &c.RequestTimeout, reqTimeout),
	)
	return c, err
}

// cannotCopy reports whether endpoint is a server known not to compose
// objects from ranges of others (see Config.NoCopy).
func cannotCopy(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	return strings.HasSuffix(host, ".r2.cloudflarestorage.com") || host == "storage.googleapis.com"
}

// orDefault sets a zero *v to def; a negative one is an error.
func orDefault[T int | time.Duration](name string, v *T, def T) error {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		return fmt.Errorf("%w: s3: %s %v is negative", tiercache.ErrInvalidArgument, name, *v)
	}
	return nil
}

// Store is a remote.Store in an S3 bucket. It is safe for concurrent use.
type Store struct {
	client *s3.Client
	cfg    Config // withDefaults applied
	// bucket and prefix are cfg's, named here because every request
	// names them.
	bucket, prefix string
	deleteBatch    int   // maxDeleteBatch but in tests
	pageSize       int32 // maxListPage but in tests

	bufs sync.Pool // *[]byte of len cfg.PartSize

	// noCopy is set once copies are known not to work here: by
	// cfg.NoCopy, or when the server answered one with 501.
	noCopy atomic.Bool
	// noIfMatch and noBatchETags are set once the server refused a
	// conditional delete (see deleteIfMatch and deleteIfUnchanged).
	noIfMatch, noBatchETags atomic.Bool
}

var _ remote.Store = (*Store)(nil)

// New returns a Store for cfg. It validates cfg and resolves credentials
// lazily: it sends no request, so a wrong bucket or credentials show up
// at the first call, as errors wrapping ErrNoSuchBucket, ErrAccessDenied,
// ErrNoCredentials, ErrCredentialService (the source of credentials
// failed) or, for an endpoint that is not S3, ErrNotS3. For a
// read-only store, wrap it with remote.ReadOnly.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{client: client, cfg: cfg, bucket: cfg.Bucket, prefix: cfg.Prefix, deleteBatch: maxDeleteBatch, pageSize: maxListPage}
	s.bufs.New = func() any { b := make([]byte, cfg.PartSize); return &b }
	s.noCopy.Store(cfg.NoCopy)
	return s, nil
}

// newClient returns the SDK client for cfg (withDefaults applied).
func newClient(ctx context.Context, cfg Config) (*s3.Client, error) {
	opts := []func(*config.LoadOptions) error{
		// The SDK's default logger prints on stderr, from credential
		// providers too ("falling back to IMDSv1"); a library must not,
		// and every failure that matters reaches the caller as an error.
		config.WithLogger(logging.Nop{}),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = cfg.MaxBackoff
				// No client-side retry quota: its token bucket, shared
				// by every request of the client, ran dry when a busy
				// server throttled a burst of parallel requests, and
				// then failed requests that still had attempts left
				// ("retry quota exceeded"). MaxAttempts and the backoff
				// bound the retries.
				o.RateLimiter = ratelimit.None
				// A certificate refused is refused again: no retry.
				o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
					var cert *tls.CertificateVerificationError
					if errors.As(err, &cert) {
						return aws.FalseTernary
					}
					return aws.UnknownTernary
				})}, o.Retryables...)
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's message names files and profiles, never secrets.
		return nil, fmt.Errorf("s3: loading AWS configuration: %w", err)
	}
	profileAddr := AddressingAuto
	if cfg.Addressing == AddressingAuto {
		if profileAddr, err = profileAddressing(awsCfg); err != nil {
			return nil, fmt.Errorf("%w: %w", tiercache.ErrInvalidArgument, err)
		}
	}
	if cfg.Credentials == nil {
		awsCfg.Credentials = wrapCredentials(awsCfg)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// By now o.BaseEndpoint also holds an endpoint configured outside
		// cfg (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, a profile's
		// endpoint_url), as the SDK resolved it: any custom endpoint is an
		// S3-compatible server, which accepts us-east-1.
		if o.Region == "" && o.BaseEndpoint != nil {
			o.Region = "us-east-1"
		}
		o.UsePathStyle = usePathStyle(cfg.Addressing, profileAddr, o.BaseEndpoint)
		if cfg.HTTPClient != nil {
			// Only here, not in LoadDefaultConfig: that one refuses a
			// plain client when AWS_CA_BUNDLE is set, and credential
			// providers keep the SDK's client.
			o.HTTPClient = cfg.HTTPClient
		}
		// Outermost, so the limits hold whichever client sends (and
		// bound the look at an error answer's body too).
		o.HTTPClient = &timeoutClient{next: &answerCheck{next: o.HTTPClient}, idle: cfg.IdleTimeout, request: cfg.RequestTimeout, deadline: cfg.Deadline}
		// Set on the client too (see WithLogger above): say, a warning
		// about a body it failed to drain after a reset.
		o.Logger = logging.Nop{}
		// Set on the client too: a client option must not undo it.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	if client.Options().Region == "" {
		return nil, fmt.Errorf("%w: s3: no region configured: set --region, TIERCACHE_REGION or AWS_REGION (or region in the AWS profile)", tiercache.ErrInvalidArgument)
	}
	return client, nil
}

// manifest is the JSON commit record of an entry.
type manifest struct {
	// Version is manifestVersion, or 1 where that describes the entry
	// (see versionFor); readers refuse others, and leave a higher one, a
	// newer tiercache's, alone (see newerManifestError).
	Version int `json:"version"`
	// Meta is the entry's metadata as committed (LastAccess = Created).
	Meta remote.Meta `json:"meta"`
	// Data is the id of the data object under the key's data prefix.
	Data string `json:"data"`
	// Replaced lists the key's earlier data objects still within their
	// grace, with when each was replaced (see Put). Readers ignore it.
	Replaced []replacedData `json:"replaced,omitempty"`
}

// manifestVersion is the newest manifest format. Version 2 differs from 1
// only in recording more than tiercache.LegacyMaxPaths paths, which
// releases reading version 1 refuse to store locally: written only for
// such entries, it makes them pass those releases over, while every other
// entry stays readable by them.
const manifestVersion = 2

// versionFor returns the oldest manifest version that can record meta.
func versionFor(meta remote.Meta) int {
	if len(meta.Paths) > tiercache.LegacyMaxPaths {
		return manifestVersion
	}
	return 1
}

// maxManifestSize bounds how much of a manifest object is read: a real
// one is a few hundred bytes, but a description (up to 64 KiB, as the
// local tier allows) and paths may make it larger. Put refuses metadata
// that would not leave manifestRoom for the rest.
const (
	maxManifestSize = 1 << 20
	manifestRoom    = 64 << 10
)

// errOtherKey marks a manifest that is stored under the requested key's
// fallback name but records another key with the same name: a SHA-256
// collision (see stemFor). It always comes wrapped with
// tiercache.ErrIntegrity.
var errOtherKey = errors.New("s3: the manifest belongs to another key with the same object name")

// newerManifestError is a manifest of a format version above
// manifestVersion: a newer tiercache sharing the bucket wrote it, in a
// form this one cannot judge, so Check and Prune leave the entry and its
// objects alone. It always comes wrapped with tiercache.ErrIntegrity, so
// readers refuse the entry as they would any they cannot read.
type newerManifestError struct{ version int }

func (e *newerManifestError) Error() string {
	return fmt.Sprintf("format version %d, written by a newer tiercache (this one reads %d)", e.version, manifestVersion)
}

// Is makes errors.Is(err, ErrNewerManifest) hold.
func (e *newerManifestError) Is(target error) bool { return target == ErrNewerManifest }

// isNewerManifest reports whether err comes from a manifest of a newer
// format.
func isNewerManifest(err error) bool {
	var ne *newerManifestError
	return errors.As(err, &ne)
}

// readManifest fetches and checks the manifest named by n. A missing one
// wraps tiercache.ErrNotFound, a malformed one, or one recording a key
// that does not belong under that name, tiercache.ErrIntegrity.
//
// The SDK retries a request only until its response headers arrive, so a
// body cut or stalled mid-transfer is re-requested here, up to
// MaxAttempts reads in all.
func (s *Store) readManifest(ctx context.Context, n names) (manifest, error) {
	m, _, err := s.readManifestETag(ctx, n)
	return m, err
}

// readManifestETag is readManifest that also returns the ETag of the
// manifest it read, a corrupt one's too.
func (s *Store) readManifestETag(ctx context.Context, n names) (manifest, string, error) {
	for attempt := 1; ; attempt++ {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &n.manifest})
		if err != nil {
			return manifest{}, "", mapError(err, s.bucket, "get manifest of", n.label)
		}
		b, err := io.ReadAll(io.LimitReader(out.Body, maxManifestSize+1))
		_ = out.Body.Close()
		if err == nil {
			m, err := parseManifest(b, n)
			if err == nil && out.LastModified != nil {
				m.Meta = serverTimes(m.Meta, *out.LastModified)
			}
			return m, aws.ToString(out.ETag), err
		}
		if ctx.Err() != nil || errors.Is(err, ErrDeadline) {
			return manifest{}, "", mapError(err, s.bucket, "read manifest of", n.label)
		}
		if attempt >= s.cfg.MaxAttempts {
			return manifest{}, "", mapError(fmt.Errorf("gave up after %d interrupted reads: %w", attempt, err), s.bucket, "read manifest of", n.label)
		}
		if err := sleepBackoff(ctx, attempt, s.cfg.MaxBackoff); err != nil {
			return manifest{}, "", mapError(err, s.bucket, "read manifest of", n.label)
		}
	}
}

// clockSkew is how far a manifest's recorded creation time may be from
// the server's time of the manifest's write before it is taken for a
// skewed client clock.
const clockSkew = 2 * time.Minute

// serverTimes returns m, committed by a manifest the server last wrote
// at modified, with the server's time as its creation (and last access,
// recorded as the same) when the time it records is more than clockSkew
// off: a machine whose clock is wrong (a VM booted with a stale one)
// would otherwise make its entries look older or newer than they are to
// ls, restore keys and a prune by age, which otherwise go by the
// server's clock (the access markers', and an unscoped prune's). Within
// it, the recorded time stays, for its finer resolution.
func serverTimes(m remote.Meta, modified time.Time) remote.Meta {
	if d := m.Created.Sub(modified); d > clockSkew || d < -clockSkew {
		m.Created = modified.UTC()
		m.LastAccess = m.Created
	}
	return m
}

// parseManifest parses and checks the manifest stored under n's name. The
// key it records must map to that name (so a listing can trust it for a
// fallback name, whose key it cannot decode) and, when n's key is known,
// be that key: a mismatch is reported as tiercache.ErrIntegrity, never
// served as the wrong entry. A key whose name holds another key's
// manifest (which takes a SHA-256 collision) gets an error that also
// wraps errOtherKey, so Delete can leave that entry alone.
func parseManifest(b []byte, n names) (manifest, error) {
	var m manifest
	label := n.label
	if len(b) > maxManifestSize {
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q is larger than %d bytes", tiercache.ErrIntegrity, label, maxManifestSize)
	}
	// The version first: a newer format may not parse as this one.
	var v struct {
		Version int `json:"version"`
	}
	if json.Unmarshal(b, &v) == nil && v.Version > manifestVersion {
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q: %w", tiercache.ErrIntegrity, label, &newerManifestError{v.Version})
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q: %v", tiercache.ErrIntegrity, label, err)
	}
	treeSize, idOK := parseDataID(m.Data)
	switch {
	case m.Version < 1:
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q has version %d, want 1 to %d", tiercache.ErrIntegrity, label, m.Version, manifestVersion)
	case tiercache.ValidateStoredKey(m.Meta.Key) != nil || stemFor(m.Meta.Key) != n.stem:
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q names key %q", tiercache.ErrIntegrity, label, m.Meta.Key)
	case n.key != "" && m.Meta.Key != n.key:
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q names key %q: %w", tiercache.ErrIntegrity, label, m.Meta.Key, errOtherKey)
	case !idOK:
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q names data object %q", tiercache.ErrIntegrity, label, m.Data)
	case treeSize != m.Meta.Size:
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q records %d tree bytes, its data object %q says %d",
			tiercache.ErrIntegrity, label, m.Meta.Size, m.Data, treeSize)
	case m.Meta.ArchiveSize < 0 || m.Meta.Files < 0 || !validSHA256(m.Meta.SHA256):
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q has a bad archive size, file count or SHA-256", tiercache.ErrIntegrity, label)
	}
	if err := tiercache.ValidatePaths(m.Meta.Paths); err != nil {
		// A tier storing the entry would refuse it later, after the
		// download.
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q: %v", tiercache.ErrIntegrity, label, err)
	}
	if err := m.Meta.Index.Check(m.Meta.ArchiveSize); err != nil {
		// Absent in manifests written before indexes were recorded:
		// the zero value, which passes.
		return manifest{}, fmt.Errorf("%w: s3: manifest of key %q: %v", tiercache.ErrIntegrity, label, err)
	}
	if m.Meta.LastAccess.Before(m.Meta.Created) {
		m.Meta.LastAccess = m.Meta.Created
	}
	return m, nil
}

func validSHA256(s string) bool { return len(s) == hashHexLen && isLowerHex(s) }

// Stat returns the Meta of the entry under key, with LastAccess from its
// access marker, or an error wrapping tiercache.ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (remote.Meta, error) {
	n, err := s.namesFor(key)
	if err != nil {
		return remote.Meta{}, err
	}
	m, err := s.readManifest(ctx, n)
	if err != nil {
		return remote.Meta{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &n.marker})
	switch {
	case err == nil:
		if out.LastModified != nil && out.LastModified.After(m.Meta.LastAccess) {
			m.Meta.LastAccess = *out.LastModified
		}
	case ctx.Err() != nil:
		return remote.Meta{}, mapError(err, s.bucket, "stat access marker of", key)
	default:
		// No marker (never touched) or a failed HEAD: the access time
		// is advisory, the entry itself was read fine.
	}
	return m.Meta, nil
}

// Delete removes the entry under key: the manifest first, so readers see
// a miss at once, then its data object and access marker. Deleting a
// missing key is a no-op. A manifest that cannot be parsed is deleted
// too (its data, if any, is left to Prune). Data objects of uncommitted or superseded puts
// are left to Prune, because they may belong to a Put in flight.
//
// The manifest is deleted only if it is still the one read (If-Match
// its ETag): a Put that commits after the read keeps its entry, data
// and marker, and Delete, ordered before that Put, succeeds. A server
// that ignores If-Match (MinIO) deletes the new manifest all the same,
// and the new entry is lost (a miss); one that refuses it gets an
// unconditional delete (see deleteIfMatch).
func (s *Store) Delete(ctx context.Context, key string) error {
	n, err := s.namesFor(key)
	if err != nil {
		return err
	}
	m, etag, err := s.readManifestETag(ctx, n)
	switch {
	case errors.Is(err, tiercache.ErrNotFound), errors.Is(err, errOtherKey):
		// Nothing of key's is stored: the name holds nothing, or
		// another key's entry (a SHA-256 collision), which stays.
		return nil
	case errors.Is(err, tiercache.ErrIntegrity):
		// A corrupt manifest is deleted all the same; its data, if any,
		// becomes an orphan for Prune.
	case err != nil:
		return err
	}
	// A re-put since the read stays whole.
	_, err = s.deleteRead(ctx, n, key, m, etag)
	return err
}

// DeleteVersion removes the entry under key as Delete does, if the
// manifest read still records the version v describes (see
// remote.Meta.SameVersion), and only if the manifest is still the one
// read (If-Match its ETag). A missing key is gone; a manifest of a newer
// format is another version, which stays; one that cannot be parsed is
// an error wrapping tiercache.ErrIntegrity, and stays. As for Delete, a
// server that ignores If-Match (MinIO) deletes a version committed
// between the read and the delete.
func (s *Store) DeleteVersion(ctx context.Context, key string, v remote.Meta) (bool, error) {
	n, err := s.namesFor(key)
	if err != nil {
		return false, err
	}
	m, etag, err := s.readManifestETag(ctx, n)
	switch {
	case errors.Is(err, tiercache.ErrNotFound), errors.Is(err, errOtherKey):
		return true, nil // see Delete
	case isNewerManifest(err):
		return false, nil
	case err != nil:
		return false, err
	case !m.Meta.SameVersion(v):
		return false, nil
	}
	return s.deleteRead(ctx, n, key, m, etag)
}

// deleteRead deletes the entry of key whose manifest m was read with
// ETag etag: the manifest if it still has etag (see deleteIfMatch), then
// its data object and access marker. gone reports whether the manifest
// read is deleted, even if its data or marker then fail to be (they are
// left to Prune): it is not if it failed to be, or if the manifest was
// replaced since the read, which stays with its data and marker.
func (s *Store) deleteRead(ctx context.Context, n names, key string, m manifest, etag string) (gone bool, err error) {
	changed, err := s.deleteIfMatch(ctx, n.manifest, etag)
	if err != nil {
		return false, mapError(err, s.bucket, "delete manifest of", key)
	}
	if changed {
		return false, nil
	}
	if m.Data != "" {
		dataName := n.data(m.Data)
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &dataName}); err != nil {
			return true, mapError(err, s.bucket, "delete data of", key)
		}
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &n.marker}); err != nil {
		return true, mapError(err, s.bucket, "delete access marker of", key)
	}
	return true, nil
}

// Touch records an access to key by writing its zero-byte access marker.
// It does not check that the entry exists; Prune removes markers of
// missing entries once older than OrphanGrace.
func (s *Store) Touch(ctx context.Context, key string) error {
	n, err := s.namesFor(key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &n.marker,
		Body:          bytes.NewReader(nil),
		ContentLength: aws.Int64(0),
	})
	return mapError(err, s.bucket, "record access to", key)
}

// getBuf returns a buffer of len partSize from the pool.
func (s *Store) getBuf() *[]byte { return s.bufs.Get().(*[]byte) }

// getBufFor returns a buffer of at least n (<= partSize) bytes: a pooled
// one, or for a small n a fresh one of exactly n bytes, so that reading a
// small archive does not cost a whole part.
func (s *Store) getBufFor(n int) *[]byte {
	if int64(n) >= s.cfg.PartSize/4 {
		return s.getBuf()
	}
	b := make([]byte, n)
	return &b
}

// putBuf returns a buffer to the pool if it came from there.
func (s *Store) putBuf(b *[]byte) {
	if int64(len(*b)) == s.cfg.PartSize {
		s.bufs.Put(b)
	}
}

// detached returns a context for cleanup after ctx ended: it keeps ctx's
// values but not its cancellation, bounded by detachedTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
}
