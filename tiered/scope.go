package tiered

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/sign"
)

// state is what a Cache shares with its views of other scopes.
type state struct {
	// group runs one hydration per stored key (see hydrate).
	group singleflight.Group
	// touches are access records being sent in the background; touching
	// holds a slot for each, up to maxTouches.
	touches  sync.WaitGroup
	touching chan struct{}
	// rawLocal and rawRemote are the tiers across every scope: List,
	// Prune and Fsck see all of them.
	rawLocal  *local.Cache
	rawRemote remote.Store
}

// view returns the Cache of scope over c's tiers, sharing c's state: its
// key-taking methods work on the scope's entries (see local.Cache.InScope
// and remote.InScope). It reads no other scope.
func (c *Cache) view(scope string) (*Cache, error) {
	v := &Cache{state: c.state, opts: c.opts}
	v.opts.Scope, v.opts.ReadScopes = scope, nil
	var err error
	if c.rawLocal != nil {
		if v.local, err = c.rawLocal.InScope(scope); err != nil {
			return nil, err
		}
	}
	if c.rawRemote != nil {
		if v.remote, err = remote.InScope(c.rawRemote, scope); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// scopes returns the Caches a lookup tries, in order: c's own scope,
// then each of Options.ReadScopes.
func (c *Cache) scopes() []*Cache { return append([]*Cache{c}, c.reads...) }

// Scope returns the scope the Cache writes to ("" for the default).
func (c *Cache) Scope() string { return c.opts.Scope }

// storedKey is key's stored key in c's scope, for what is shared across
// scopes.
func (c *Cache) storedKey(key string) string { return tiercache.ScopedKey(c.opts.Scope, key) }

// UntrustedError reports an entry a Cache with Options.Trust refused:
// unsigned, signed by a key it does not trust, or changed since it was
// signed (Err wraps sign.ErrUntrusted and says which). A lookup takes it
// as a miss of that entry and goes on with the next candidate, reporting
// it in Hit.Untrusted, unless it is strict.
type UntrustedError struct {
	Scope, Key string
	Err        error
}

// Error names the entry and why it is not trusted.
func (e *UntrustedError) Error() string {
	where := ""
	if e.Scope != "" {
		where = " in scope " + strconv.Quote(e.Scope)
	}
	return fmt.Sprintf("entry %q%s refused: %v", e.Key, where, e.Err)
}

// Unwrap returns why the entry is not trusted (see UntrustedError.Err).
func (e *UntrustedError) Unwrap() error { return e.Err }

// IsUntrusted reports whether err is, or wraps, an *UntrustedError.
func IsUntrusted(err error) bool {
	var ue *UntrustedError
	return errors.As(err, &ue)
}

// fieldsOf is what a signature of the remote entry m of c's scope covers.
// The description and paths are covered as both tiers keep them, as JSON
// text (see asKept): a push signs them before they are stored, a pull
// checks them as read back.
func (c *Cache) fieldsOf(key string, m remote.Meta) sign.Fields {
	return fieldsIn(c.opts.Scope, key, m)
}

// fieldsIn is what a signature of the remote entry m of key in scope
// covers.
func fieldsIn(scope, key string, m remote.Meta) sign.Fields {
	paths := m.Paths
	if slices.ContainsFunc(paths, func(p string) bool { return !utf8.ValidString(p) }) {
		paths = make([]string, len(m.Paths))
		for i, p := range m.Paths {
			paths[i] = asKept(p)
		}
	}
	return sign.Fields{Scope: scope, Key: key, Description: asKept(m.Description), Paths: paths,
		Size: m.Size, Files: m.Files, ArchiveSize: m.ArchiveSize, SHA256: m.SHA256,
		IndexOffset: m.Index.Offset, IndexLength: m.Index.Length, IndexSHA256: m.Index.SHA256}
}

// asKept is s as JSON text keeps it: each byte that is not part of valid
// UTF-8 becomes U+FFFD, as in a conversion to runes. No stored entry can
// tell the two apart, so a signature loses nothing by covering this form.
func asKept(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}

// checkRemote checks the remote entry m of key before any byte of its
// archive is trusted: its description within the limit every tier keeps
// (a RemoteError), and its signature against Options.Trust.
func (c *Cache) checkRemote(key string, m remote.Meta) error {
	if err := local.CheckDescription(key, m.Description); err != nil {
		// Stored by another writer: the local tier could not keep it.
		return remoteErr(fmt.Errorf("%w: %w", tiercache.ErrLimitExceeded, err))
	}
	if c.opts.Trust == nil {
		return nil
	}
	if err := c.opts.Trust.Verify(c.fieldsOf(key, m), m.Signature); err != nil {
		return &UntrustedError{Scope: c.opts.Scope, Key: key, Err: err}
	}
	return nil
}

// trustedLocal reports whether the local version s may serve a Cache
// with Options.Trust: it was fetched from a signed remote entry whose
// signature checks again against its recorded fields. A version kept
// as a tree alone has no digest a signature could cover. Always true
// without Trust.
func (c *Cache) trustedLocal(s local.Stored) bool {
	return c.opts.Trust == nil || c.localUntrusted(c.opts.Scope, s.Entry, storedMeta(s)) == nil
}

// trustedTree is trustedLocal for a caller given s's tree itself (Get):
// with Trust, a tree hardlinked into a directory outside the tier may
// have been changed there, and the archive's signed digest no longer
// vouches for it.
func (c *Cache) trustedTree(s local.Stored) bool {
	return c.trustedLocal(s) && (c.opts.Trust == nil || !s.Linked)
}

// localUntrusted is why a pull with Options.Trust (set) would not restore
// the local version e of scope, whose archive m records (see archiveMeta);
// nil if it would. A version kept as a tree alone has no digest a
// signature could cover.
func (c *Cache) localUntrusted(scope string, e tiercache.Entry, m remote.Meta) error {
	if m.SHA256 == "" {
		return fmt.Errorf("%w: the local copy is kept as a tree alone", sign.ErrUnsigned)
	}
	return c.opts.Trust.Verify(fieldsIn(scope, e.Key, m), e.Signature)
}

// storedMeta is what a signature covers of the local version s, as a
// remote entry would record it.
func storedMeta(s local.Stored) remote.Meta {
	return archiveMeta(s.Entry, s.ArchiveSize, s.SHA256, s.Index)
}

// archiveMeta is the local version e, whose archive has the recorded
// size, digest and index ("" digest: kept as a tree alone), as a remote
// entry would record it.
func archiveMeta(e tiercache.Entry, size int64, sha string, index archive.IndexInfo) remote.Meta {
	return remote.Meta{Description: e.Description, Paths: e.Paths, Size: e.Size, Files: e.Files,
		ArchiveSize: size, SHA256: sha, Index: remote.IndexInfo(index)}
}

// localInfo is what a push records of its local version: the upload's
// signature too, when it signs (see local.Info.Seal).
func (c *Cache) localInfo(description string, paths []string) local.Info {
	info := local.Info{Description: description, Paths: paths}
	if c.opts.Signer != nil {
		info.Seal = func(s local.Stored) *tiercache.Signature {
			return sign.Sign(c.opts.Signer, c.fieldsOf(s.Entry.Key, storedMeta(s)))
		}
	}
	return info
}

// signedByUs reports whether the remote entry m of key carries a valid
// signature by Options.Signer: a push that signs must not skip its
// upload in favour of an identical entry that someone else signed, or
// nobody.
func (c *Cache) signedByUs(key string, m remote.Meta) bool {
	if m.Signature == nil {
		return false
	}
	pub := c.opts.Signer.Public().(ed25519.PublicKey)
	return bytes.Equal(m.Signature.Key, pub) &&
		ed25519.Verify(pub, sign.Message(c.fieldsOf(key, m)), m.Signature.Sig)
}

// PruneScope is PruneTiers for the Cache's scope alone: in each tier, the
// scope's least recently used entries are evicted until its entries
// satisfy that tier's limits, other scopes' entries neither counted nor
// touched (a pull request's scope, say, bounded on its own). Sizes count
// as PruneTiers counts them; ages go by this machine's clock. Data left
// by interrupted pushes is left to PruneTiers. The evicted entries are
// listed and reported as PruneTiers does. In read-only mode it fails
// with tiercache.ErrReadOnly.
func (c *Cache) PruneScope(ctx context.Context, lim, rem policy.Limits) (PruneResult, error) {
	var res PruneResult
	if err := c.checkPrune(lim, rem); err != nil {
		return res, err
	}
	lim.OnEvict = recordTo(&res, tiercache.TierLocal, lim.OnEvict)
	rem.OnEvict = recordTo(&res, tiercache.TierRemote, rem.OnEvict)
	if !lim.Unlimited() && c.rawLocal != nil { // remote-only: nothing to evict locally
		es, err := c.rawLocal.ListVersions(ctx)
		if err != nil {
			return res, fmt.Errorf("local prune: %w", err)
		}
		var items []policy.Item
		listed := make(map[string]local.Version)
		for _, e := range es {
			if e.Scope == c.opts.Scope {
				items = append(items, policy.Item{Key: e.Key, Size: cmp.Or(e.Stored, e.Size), LastAccess: e.LastAccess})
				listed[e.Key] = e.Version
			}
		}
		if testHookPruneListed != nil {
			testHookPruneListed(tiercache.TierLocal)
		}
		// Only the listed version goes: a push may have committed a
		// newer one since, which the listing did not judge.
		n, err := evictVictims(ctx, items, lim, c.opts.Scope, func(ctx context.Context, key string) (bool, error) {
			return c.local.InvalidateIf(ctx, key, listed[key])
		})
		res.Local = n
		if err != nil {
			return res, fmt.Errorf("local prune: %w", err)
		}
	}
	if c.remote != nil && !rem.Unlimited() {
		metas, err := c.remote.List(ctx, "")
		if err != nil {
			return res, remoteErr(fmt.Errorf("remote prune: %w", err))
		}
		items := make([]policy.Item, 0, len(metas))
		listed := make(map[string]remote.Meta, len(metas))
		for _, m := range metas {
			items = append(items, policy.Item{Key: m.Key, Size: m.Size, LastAccess: m.LastAccess})
			listed[m.Key] = m
		}
		if testHookPruneListed != nil {
			testHookPruneListed(tiercache.TierRemote)
		}
		// Only the listed version goes, as in the local tier: a push
		// committed since keeps its version (see
		// remote.Store.DeleteVersion).
		n, err := evictVictims(ctx, items, rem, c.opts.Scope, func(ctx context.Context, key string) (bool, error) {
			return c.remote.DeleteVersion(ctx, key, listed[key])
		})
		res.Remote = n
		if err != nil {
			return res, fmt.Errorf("remote prune: %w", err)
		}
	}
	return res, nil
}

// testHookPruneListed, if set, runs once PruneScope has listed a tier's
// entries, before it evicts any.
var testHookPruneListed func(tiercache.Tier)

// evictVictims evicts with evict the items of scope that l chooses (see
// policy.Victims), reports each that evict removed to l.OnEvict under its
// stored key, and returns how many it removed.
func evictVictims(ctx context.Context, items []policy.Item, l policy.Limits, scope string, evict func(context.Context, string) (bool, error)) (int, error) {
	victims, err := policy.Victims(items, l, time.Now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range victims {
		removed, err := evict(ctx, v.Key)
		if err != nil {
			err = fmt.Errorf("evict %q: %w", v.Key, err)
		}
		if removed {
			n++
			v.Key = tiercache.ScopedKey(scope, v.Key)
			l.Report(v)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// recordTo returns an OnEvict hook that appends each eviction from tier
// to res.Evicted, then calls next, if set.
func recordTo(res *PruneResult, tier tiercache.Tier, next func(policy.Item)) func(policy.Item) {
	return func(it policy.Item) {
		scope, key := tiercache.SplitStoredKey(it.Key)
		res.Evicted = append(res.Evicted, Evicted{Tier: tier, Scope: scope, Key: key, Bytes: it.Size})
		if next != nil {
			next(it)
		}
	}
}

// checkPrune refuses invalid limits and a read-only Cache before a prune
// changes anything.
func (c *Cache) checkPrune(lim, rem policy.Limits) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	if err := rem.Validate(); err != nil {
		return err
	}
	if c.opts.ReadOnly {
		return fmt.Errorf("prune: %w", tiercache.ErrReadOnly)
	}
	return nil
}
