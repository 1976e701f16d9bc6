package tiered

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
	"github.com/tiercache/tiercache/sign"
)

// replayReader yields a copied archive and claims the copied entry's
// index and signature, as a bucket writer without the key can.
type replayReader struct {
	io.Reader
	m remote.Meta
}

func (r replayReader) Index() remote.IndexInfo         { return r.m.Index }
func (r replayReader) Signature() *tiercache.Signature { return r.m.Signature }

// replay copies the remote entry from of scope to stored key to, with
// its signature, after edit changes its metadata (if set).
func replay(t *testing.T, store *memstore.Store, from, to string, edit func(*remote.Meta)) {
	t.Helper()
	rc, m, err := store.Open(t.Context(), from)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if m.Signature == nil {
		t.Fatalf("%q is not signed", from)
	}
	m.Key = to
	if edit != nil {
		edit(&m)
	}
	if _, err := store.Put(t.Context(), m, replayReader{Reader: rc, m: m}); err != nil {
		t.Fatal(err)
	}
}

// TestSignedReplayRefused: a bucket writer who copies a signed entry,
// signature and all, under another key or into another scope, or edits
// where its files go, gets a miss from a trusting pull, never the tree.
func TestSignedReplayRefused(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	const main = "refs/heads/main"
	signer.Scope = main
	push(t, newTiered(t, store, signer), "k", "signed")
	src := tiercache.ScopedKey(main, "k")
	replay(t, store, src, tiercache.ScopedKey(main, "other"), nil)
	replay(t, store, src, tiercache.ScopedKey("pr-1", "k"), nil)

	trusting := newTiered(t, store, Options{Scope: main, Trust: trust})
	if _, tag, ok := pullTag(t, trusting, "k", nil, PullOptions{}); !ok || tag != "signed" {
		t.Fatalf("the signed entry itself: %v %q", ok, tag)
	}
	if h, _, ok := pullTag(t, trusting, "other", nil, PullOptions{}); ok || len(h.Untrusted) != 1 || !errors.Is(h.Untrusted[0], sign.ErrBadSignature) {
		t.Errorf("signed entry replayed under another key: hit %v, refused %v; want a miss with a bad signature", ok, h.Untrusted)
	}
	// The copy into pull request 1's scope is refused there, by a pull
	// of that scope that trusts the key.
	pr := newTiered(t, store, Options{Scope: "pr-1", Trust: trust})
	if h, _, ok := pullTag(t, pr, "k", nil, PullOptions{}); ok || len(h.Untrusted) != 1 || !errors.Is(h.Untrusted[0], sign.ErrBadSignature) {
		t.Errorf("signed entry replayed into another scope: hit %v, refused %v; want a miss with a bad signature", ok, h.Untrusted)
	}
	// Edited paths, under the signed key itself.
	replay(t, store, src, src, func(m *remote.Meta) { m.Paths = []string{"elsewhere"} })
	if h, _, ok := pullTag(t, newTiered(t, store, Options{Scope: main, Trust: trust}), "k", nil, PullOptions{}); ok || len(h.Untrusted) != 1 || !errors.Is(h.Untrusted[0], sign.ErrBadSignature) {
		t.Errorf("signed entry with its paths edited: hit %v, refused %v; want a miss with a bad signature", ok, h.Untrusted)
	}
}

// TestSignedLocalHitRechecksTrust: a local version is judged by the
// trust list of the job that reads it now, not of the job that fetched
// it, and one a job without a key pushed over a signed version is never
// served to a trusting job.
func TestSignedLocalHitRechecksTrust(t *testing.T) {
	store := memstore.New()
	trustA, signerA := keyPair(t)
	trustB, _ := keyPair(t)
	push(t, newTiered(t, store, signerA), "k", "signed")

	shared := newLocal(t)
	trustingA, err := New(shared, Options{Remote: store, Trust: trustA})
	if err != nil {
		t.Fatal(err)
	}
	if h, tag, ok := pullTag(t, trustingA, "k", nil, PullOptions{}); !ok || tag != "signed" || h.Tier != tiercache.TierRemote {
		t.Fatalf("first pull: %v %q from %q", ok, tag, h.Tier)
	}
	// Rotated: only B is trusted now. The local copy signed by A is a
	// miss (and the remote has nothing else).
	trustingB, err := New(shared, Options{Remote: memstore.New(), Trust: trustB})
	if err != nil {
		t.Fatal(err)
	}
	if h, _, ok := pullTag(t, trustingB, "k", nil, PullOptions{}); ok {
		t.Fatalf("a job trusting only key B got the entry signed by A from the %s tier", h.Tier)
	}
	if _, ok, err := trustingB.Get(t.Context(), "k"); ok || err != nil {
		t.Fatalf("Get by a job trusting only key B: %v, %v; want a miss", ok, err)
	}

	// A job without a key pushes another tree under k to this machine
	// (its own bucket); the trusting job must not take it.
	careless, err := New(shared, Options{Remote: memstore.New()})
	if err != nil {
		t.Fatal(err)
	}
	push(t, careless, "k", "planted")
	if h, tag, ok := pullTag(t, trustingA, "k", nil, PullOptions{}); !ok || tag != "signed" || h.Tier != tiercache.TierRemote {
		t.Fatalf("after an unsigned local push: %v, tree %q from %q; want the signed tree from the remote", ok, tag, h.Tier)
	}
}

// TestSignedDescriptionNotUTF8: a signed entry whose description is not
// valid UTF-8 still checks as its tiers keep it: the local tier's copy as
// read back, and the remote entry's metadata once kept as JSON text (as
// the S3 store's manifest keeps it, which turns each invalid byte into
// U+FFFD).
func TestSignedDescriptionNotUTF8(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	l := newLocal(t)
	signer.Remote = store
	pusher, err := New(l, signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pusher.Push(t.Context(), "k", smallTree(t, "latin1"), PushOptions{Description: "caf\xe9"}); err != nil {
		t.Fatal(err)
	}
	trusting, err := New(l, Options{Remote: store, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	if h, tag, ok := pullTag(t, trusting, "k", nil, PullOptions{}); !ok || tag != "latin1" || h.Tier != tiercache.TierLocal {
		t.Errorf("a signed push with a Latin-1 description, pulled on the same machine: %v, tree %q from %q, refused %v; want a local hit", ok, tag, h.Tier, h.Untrusted)
	}
	m, err := store.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var kept remote.Meta
	if err := json.Unmarshal(b, &kept); err != nil {
		t.Fatal(err)
	}
	if err := trusting.checkRemote("k", kept); err != nil {
		t.Fatalf("the remote entry, its metadata kept as JSON: %v", err)
	}
}

// TestTrustedPullIgnoresLinkedTree: a job without trusted keys pulls
// with Link on a shared machine, and its build changes a restored file
// in place, and so the local tier's tree. A trusting job restores what
// the signed archive holds all the same, with or without Link, and its
// Get returns no tree handed out by a link.
func TestTrustedPullIgnoresLinkedTree(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	push(t, newTiered(t, store, signer), "k", "signed")
	shared := newLocal(t)
	careless, err := New(shared, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(t.TempDir(), "linked")
	if _, ok, err := careless.Pull(t.Context(), "k", nil, linked, PullOptions{Link: true}); err != nil || !ok {
		t.Fatalf("link pull: %v, %v", ok, err)
	}
	// Same size, other bytes: what a build rewriting a file does.
	marker := filepath.Join(linked, treetest.SmallMarker)
	if err := os.Chmod(marker, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(marker, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("poison"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	trusting, err := New(shared, Options{Remote: store, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "dst")
		h, ok, err := trusting.Pull(t.Context(), "k", nil, dir, PullOptions{Link: link})
		if err != nil || !ok {
			t.Fatalf("trusting pull (Link %v): %v, %v", link, ok, err)
		}
		if tag, err := treetest.CheckSmall(dir); err != nil || tag != "signed" {
			t.Errorf("trusting pull (Link %v) from the %s tier restored %q, %v; want the signed tree", link, h.Tier, tag, err)
		}
	}
	p, ok, err := trusting.Get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("trusting Get: %v, %v", ok, err)
	}
	if tag, err := treetest.CheckSmall(p); err != nil || tag != "signed" {
		t.Errorf("trusting Get returned %q, %v; want the signed tree", tag, err)
	}
	// Without trust, the changed tree is still what a link shares: the
	// caveat PullOptions.Link states, and what made the above a test.
	if b, err := os.ReadFile(marker); err != nil || string(b) != "poison" {
		t.Errorf("the careless job's file: %q, %v", b, err)
	}
}
