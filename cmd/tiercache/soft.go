package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/remote/s3"
	"github.com/tiercache/tiercache/tiered"
)

// A cache never breaks the build: by default, a remote or integrity
// failure turns a pull into a miss and a push into a local-only save, and
// is reported as a warning instead of an error. --strict turns them back
// into failures (exit 1).

// warnf prints a one-line warning on stderr, even with --quiet: it stands
// for a failure the command chose to survive, which the user must see.
// Under GitHub Actions it is also printed as a workflow annotation, so it
// shows on the run's summary page.
func (a *app) warnf(cmd *cobra.Command, format string, args ...any) {
	msg := printable(singleLine(fmt.Sprintf(format, args...)))
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "tiercache: warning: %s\n", msg)
	if a.getenv("GITHUB_ACTIONS") == "true" {
		fmt.Fprintf(w, "::warning title=tiercache::%s\n", escapeAnnotation(msg))
	}
}

// singleLine folds line breaks so a message stays on its line.
func singleLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// printable escapes the control characters of s (C0, DEL and C1) and
// its invalid UTF-8 bytes as Go quotes them (\x1b, \u009b, \xff), so a
// message a server, a bucket or a file name chose cannot drive the
// terminal or forge lines in a job's log. Everything else, non-ASCII
// text included, is left as it is. The CLI's status, verbose, warning
// and error lines go through it; --json output is escaped by JSON.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError || unicode.IsControl(r) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r) // '\x1b', '\u009b', '\t'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// escapeAnnotation escapes a workflow command's message as the runner
// expects, so a '%' in a key cannot be read as an escape.
func escapeAnnotation(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// survive reports whether err, which failed a push or a pull, is one the
// command goes on from with a warning: a failure of the remote or of the
// object it served (tiered.RemoteError), unless --strict or the command
// was interrupted. Failures of the local tier, of DIR or of the
// command's own arguments always fail it.
func (a *app) survive(cmd *cobra.Command, err error) bool {
	return err != nil && !a.flags.strict && tiered.IsRemote(err) && cmd.Context().Err() == nil
}

// withHint appends to err's message what to do about it, when the cause
// is one a user can fix.
func withHint(err error) string {
	msg := err.Error()
	if h := hint(err); h != "" {
		msg += "; " + h
	}
	return msg
}

func hint(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	var corrupt *tiered.CorruptError
	var certErr *tls.CertificateVerificationError
	var entryErr *archive.EntryError
	switch {
	case errors.Is(err, s3.ErrNoCredentials):
		return "give the job AWS credentials, or unset TIERCACHE_REMOTE for a local-only cache"
	case errors.Is(err, s3.ErrCredentialService):
		return "check the source it names (for web identity, that the role's trust policy allows this job's token), or run the job again if that source was down"
	case errors.Is(err, s3.ErrAccessDenied):
		return "the README lists the permissions tiercache needs"
	case errors.Is(err, s3.ErrNoSuchBucket):
		return "create the bucket (aws s3 mb, mc mb) or correct --remote (TIERCACHE_REMOTE)"
	case errors.Is(err, s3.ErrNotS3):
		return "" // its message says to check --endpoint
	case errors.Is(err, tiered.ErrNoRoom):
		return "free space on the disk it names (for the local tier, where --cache-dir (TIERCACHE_DIR) is: 'tiercache prune' frees some)"
	case errors.As(err, &corrupt) && corrupt.Removed:
		return "nothing of the stored entry was used; the next push stores the tree again"
	case errors.As(err, &corrupt) && errors.Is(corrupt.Kept, tiercache.ErrReadOnly):
		return "nothing of the stored entry was used; a writable job's pull, or 'tiercache rm KEY', removes it"
	case errors.Is(err, s3.ErrDeadline):
		return "--timeout (TIERCACHE_TIMEOUT) set that deadline: raise it, or find out why the remote is slow"
	case errors.Is(err, s3.ErrNewerManifest):
		// Not "rm": the entry is sound, for the tiercache that wrote it.
		return "the entry is left in place for the newer tiercache that wrote it; upgrade this one to use it"
	case errors.As(err, &entryErr) && entryErr.System:
		// Not "rm": other systems restore the entry.
		return "this system cannot hold a name the entry holds, which the system that pushed it can; give each system a key of its own (the runner's OS in the key) rather than remove it"
	case errors.Is(err, tiercache.ErrIntegrity), errors.Is(err, tiercache.ErrUnsafeArchive), errors.Is(err, tiercache.ErrLimitExceeded):
		// Not "the next push replaces it", untrue of some: a refusal by
		// this job's own limits (a push of the same tree finds the
		// archive identical), a manifest that does not parse (the
		// push's lookup fails).
		return "the stored entry was refused and nothing of it was used; 'tiercache rm KEY' removes it"
	case errors.As(err, &certErr):
		// A private CA's, usually; else the host is not the one meant.
		return "the endpoint's TLS certificate was refused: give its CA's certificate in AWS_CA_BUNDLE (a PEM file), or check the host in --endpoint (TIERCACHE_S3_ENDPOINT)"
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return "check that the endpoint is up and reachable (--endpoint, TIERCACHE_S3_ENDPOINT)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "the remote did not answer in time; --idle-timeout sets how long a stalled request may wait"
	}
	return ""
}
