package tiered

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/memstore"
	"github.com/tiercache/tiercache/sign"
	"github.com/tiercache/tiercache/tiertest"
)

func TestConformanceScoped(t *testing.T) {
	tiertest.Run(t, func(t *testing.T) tiercache.Backend {
		return newTiered(t, memstore.New(), Options{Scope: "pr-1", ReadScopes: []string{"refs/heads/main"}, TouchInterval: -1})
	})
}

// pullTag pulls key (then prefixes) with c into a new directory and
// returns the hit and the tag of the small tree restored.
func pullTag(t *testing.T, c *Cache, key string, prefixes []string, opts PullOptions) (Hit, string, bool) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dst")
	h, ok, err := c.Pull(t.Context(), key, prefixes, dir, opts)
	if err != nil {
		t.Fatalf("Pull(%q, %q): %v", key, prefixes, err)
	}
	if !ok {
		return h, "", false
	}
	tag, err := treetest.CheckSmall(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h, tag, true
}

func push(t *testing.T, c *Cache, key, tag string) {
	t.Helper()
	if _, err := c.Push(t.Context(), key, smallTree(t, tag), PushOptions{}); err != nil {
		t.Fatalf("Push(%q): %v", key, err)
	}
}

// TestScopeOrder: a pull reads its own scope, then its read scopes in
// order, for the key and then for each restore key; a push writes its own
// scope only; a scope without read scopes sees nothing of the others.
func TestScopeOrder(t *testing.T) {
	store := memstore.New()
	const main = "refs/heads/main"
	mainC := newTiered(t, store, Options{Scope: main})
	push(t, mainC, "k", "main-k")
	push(t, mainC, "dep-b", "main-dep-b")
	dflt := newTiered(t, store, Options{})
	push(t, dflt, "k", "default-k")

	pr := newTiered(t, store, Options{Scope: "pr-1", ReadScopes: []string{main, ""}})
	if h, tag, ok := pullTag(t, pr, "k", nil, PullOptions{}); !ok || tag != "main-k" || h.Scope != main || h.Key != "k" {
		t.Fatalf("pr pulled k: %v, tree %q, scope %q; want main's", ok, tag, h.Scope)
	}
	lone := newTiered(t, store, Options{Scope: "pr-2"})
	if _, _, ok := pullTag(t, lone, "k", []string{"dep-"}, PullOptions{}); ok {
		t.Fatal("a scope with no read scopes restored another scope's entry")
	}

	// The job's own scope wins over the fallback, and its push changed
	// nothing in main's scope.
	push(t, pr, "k", "pr-k")
	if h, tag, ok := pullTag(t, dropLocal(t, pr), "k", nil, PullOptions{}); !ok || tag != "pr-k" || h.Scope != "pr-1" {
		t.Fatalf("pr pulled k after pushing it: tree %q, scope %q", tag, h.Scope)
	}
	if _, tag, _ := pullTag(t, dropLocal(t, mainC), "k", nil, PullOptions{}); tag != "main-k" {
		t.Fatalf("main's k holds %q after pr's push", tag)
	}

	// Restore keys: each prefix in each scope in turn, the newest match
	// within a scope first. pr's own dep-a is older than main's dep-b and
	// still wins; a prefix only main has comes from main.
	push(t, pr, "dep-a", "pr-dep-a")
	push(t, mainC, "dep-c", "main-dep-c")
	fresh := dropLocal(t, pr)
	if h, tag, ok := pullTag(t, fresh, "missing", []string{"dep-"}, PullOptions{}); !ok || tag != "pr-dep-a" || h.Scope != "pr-1" {
		t.Fatalf("restore key dep- gave %q from scope %q; want pr's own dep-a", tag, h.Scope)
	}
	if h, tag, ok := pullTag(t, fresh, "missing", []string{"nope-", "dep-c"}, PullOptions{}); !ok || tag != "main-dep-c" || h.Scope != main {
		t.Fatalf("restore key dep-c gave %q from scope %q; want main's", tag, h.Scope)
	}
	// The exact key in every scope comes before any restore key: the
	// default scope's k (the last read scope) beats pr's own dep-a.
	other := newTiered(t, store, Options{Scope: "pr-3", ReadScopes: []string{main, ""}})
	push(t, other, "dep-z", "pr3-dep-z")
	if h, tag, _ := pullTag(t, dropLocal(t, other), "k", []string{"dep-"}, PullOptions{}); tag != "main-k" || h.Scope != main {
		t.Fatalf("key k with restore key dep- gave %q from %q; want main's k", tag, h.Scope)
	}

	// Every scope's entries are listed, named by scope; List keeps to
	// the Cache's own.
	_, remotes, err := pr.ListTiers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	scopes := map[string]int{}
	for _, e := range remotes {
		scopes[e.Scope]++
	}
	if scopes[main] != 3 || scopes["pr-1"] != 2 || scopes[""] != 1 || scopes["pr-3"] != 1 {
		t.Fatalf("remote entries by scope: %v", scopes)
	}
	own, err := pr.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range own {
		if e.Scope != "pr-1" {
			t.Errorf("List of scope pr-1 holds %q of scope %q", e.Key, e.Scope)
		}
	}
}

func keyPair(t *testing.T) (*sign.Trust, Options) {
	t.Helper()
	privText, pubText, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.ParsePrivateKey(privText)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := sign.ParsePublicKeys(pubText)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := sign.NewTrust(keys)
	if err != nil {
		t.Fatal(err)
	}
	return trust, Options{Signer: priv}
}

// TestSignedEntries: a Cache with Trust restores only entries signed by a
// trusted key and unchanged since; the others are misses it reports (or
// errors, strict). Local entries keep their signature state: one fetched
// unsigned never serves a trusting pull, one fetched signed does.
func TestSignedEntries(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	_, stranger := keyPair(t)
	push(t, newTiered(t, store, signer), "signed", "signed")
	push(t, newTiered(t, store, Options{}), "unsigned", "unsigned")
	push(t, newTiered(t, store, stranger), "stranger", "stranger")

	shared := newLocal(t)
	trusting, err := New(shared, Options{Remote: store, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	if h, tag, ok := pullTag(t, trusting, "signed", nil, PullOptions{}); !ok || tag != "signed" || len(h.Untrusted) != 0 {
		t.Fatalf("signed entry: %v %q %v", ok, tag, h.Untrusted)
	}
	for key, want := range map[string]error{"unsigned": sign.ErrUnsigned, "stranger": sign.ErrUnknownSigner} {
		h, _, ok := pullTag(t, trusting, key, nil, PullOptions{})
		if ok || len(h.Untrusted) != 1 || !errors.Is(h.Untrusted[0], want) || !IsUntrusted(h.Untrusted[0]) {
			t.Errorf("%s: hit %v, untrusted %v; want a miss reporting %v", key, ok, h.Untrusted, want)
		}
		dir := filepath.Join(t.TempDir(), "dst")
		if _, _, err := trusting.Pull(t.Context(), key, nil, dir, PullOptions{Strict: true}); !errors.Is(err, want) {
			t.Errorf("%s, strict: %v, want %v", key, err, want)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a refused pull made %s", key, dir)
		}
		if _, ok, err := trusting.Get(t.Context(), key); ok || err != nil {
			t.Errorf("%s: Get = %v, %v; want a miss", key, ok, err)
		}
	}
	// A restore key goes on past a refused candidate to a trusted one.
	if h, tag, ok := pullTag(t, trusting, "none", []string{"unsigned", "signed"}, PullOptions{}); !ok || tag != "signed" || len(h.Untrusted) != 1 {
		t.Fatalf("restore keys past an unsigned entry: %v %q %v", ok, tag, h.Untrusted)
	}

	// The same local tier, used by a job without trusted keys, fetches
	// every entry; the trusting one then still refuses the unsigned
	// ones, and finds the signed one locally.
	careless, err := New(shared, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"signed", "unsigned", "stranger"} {
		if _, _, ok := pullTag(t, careless, key, nil, PullOptions{}); !ok {
			t.Fatalf("a job without trusted keys missed %s", key)
		}
	}
	if h, _, ok := pullTag(t, trusting, "unsigned", nil, PullOptions{}); ok {
		t.Fatalf("the trusting job got the unsigned entry from the %s tier", h.Tier)
	}
	if h, _, ok := pullTag(t, trusting, "signed", nil, PullOptions{}); !ok || h.Tier != tiercache.TierLocal {
		t.Fatalf("signed entry after a local fetch: %v from %q; want a local hit", ok, h.Tier)
	}
	// A signing push signs its local copy too: a trusting job on the
	// same machine finds it locally.
	pushed := newLocal(t)
	pusher, err := New(pushed, Options{Remote: store, Signer: signer.Signer})
	if err != nil {
		t.Fatal(err)
	}
	push(t, pusher, "pushed-here", "pushed-here")
	again, err := New(pushed, Options{Remote: store, Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	if h, tag, ok := pullTag(t, again, "pushed-here", nil, PullOptions{}); !ok || tag != "pushed-here" || h.Tier != tiercache.TierLocal {
		t.Fatalf("an entry pushed signed on this machine: %v %q from %q; want a local hit", ok, tag, h.Tier)
	}

	// A local entry whose recorded fields no longer match its signature
	// is not served.
	s, ok, err := shared.Lookup(t.Context(), "signed")
	if err != nil || !ok || s.Entry.Signature == nil {
		t.Fatalf("the local entry of signed: %v %v, signature %v", ok, err, s.Entry.Signature)
	}
	forged, err := New(shared, Options{Remote: memstore.New(), Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	if !forged.trustedLocal(s) {
		t.Fatal("the local signed entry does not check")
	}
	flip := map[byte]string{'0': "1"}[s.SHA256[63]]
	if flip == "" {
		flip = "0"
	}
	s.SHA256 = s.SHA256[:63] + flip
	if forged.trustedLocal(s) {
		t.Fatal("a local entry with another digest passed its signature")
	}
}

// TestSignedPushReuploadsUnsigned: a signing push of a tree the remote
// already holds unsigned uploads it again, signed, instead of skipping.
func TestSignedPushReuploadsUnsigned(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	src := smallTree(t, "same")
	if _, err := newTiered(t, store, Options{}).Push(t.Context(), "k", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := newTiered(t, store, signer).Push(t.Context(), "k", src, PushOptions{})
	if err != nil || res.UploadSkipped || !res.Uploaded {
		t.Fatalf("signing push over the unsigned twin: %+v, %v; want an upload", res, err)
	}
	res, err = newTiered(t, store, signer).Push(t.Context(), "k", src, PushOptions{})
	if err != nil || !res.UploadSkipped {
		t.Fatalf("signing push over its own signed twin: %+v, %v; want it skipped", res, err)
	}
	m, err := store.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	v := &Cache{opts: Options{Trust: trust}}
	if err := v.checkRemote("k", m); err != nil {
		t.Fatalf("the stored entry: %v", err)
	}
	// Fields edited in the store fail the check.
	m.Files++
	if err := v.checkRemote("k", m); !errors.Is(err, sign.ErrBadSignature) {
		t.Fatalf("an edited entry: %v, want ErrBadSignature", err)
	}
}

// TestPruneScope: a scope's prune counts and evicts its own entries only,
// in each tier.
func TestPruneScope(t *testing.T) {
	store := memstore.New()
	l := newLocal(t)
	pr, err := New(l, Options{Remote: store, Scope: "pr-1"})
	if err != nil {
		t.Fatal(err)
	}
	mainC, err := New(l, Options{Remote: store, Scope: "main"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		push(t, mainC, k, "main-"+k)
		push(t, pr, k, "pr-"+k)
	}
	res, err := pr.PruneScope(t.Context(), policy.Limits{MaxEntries: 1}, policy.Limits{MaxEntries: 2})
	if err != nil || res.Local != 2 || res.Remote != 1 {
		t.Fatalf("PruneScope = %+v, %v; want 2 local and 1 remote evicted", res, err)
	}
	locals, remotes, err := pr.ListTiers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	count := func(es []tiercache.Entry) map[string]int {
		m := map[string]int{}
		for _, e := range es {
			m[e.Scope]++
		}
		return m
	}
	if c := count(locals); c["main"] != 3 || c["pr-1"] != 1 {
		t.Errorf("local entries by scope after the prune: %v", c)
	}
	if c := count(remotes); c["main"] != 3 || c["pr-1"] != 2 {
		t.Errorf("remote entries by scope after the prune: %v", c)
	}
	if _, err := pr.PruneScope(t.Context(), policy.Limits{MaxEntries: -1}, policy.Limits{}); !errors.Is(err, tiercache.ErrInvalidArgument) {
		t.Errorf("a negative limit: %v", err)
	}
}

// TestSignedEveryUploadPath: a push with a local tier, a push with
// NoLocal and the library's Put each commit an entry whose signature a
// trusting Cache accepts.
func TestSignedEveryUploadPath(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	noLocal := signer
	noLocal.NoLocal, noLocal.Remote = true, store
	remoteOnly, err := New(nil, noLocal)
	if err != nil {
		t.Fatal(err)
	}
	push(t, newTiered(t, store, signer), "local", "local")
	push(t, remoteOnly, "no-local", "no-local")
	if _, err := newTiered(t, store, signer).Put(t.Context(), "put", smallTree(t, "put"), ""); err != nil {
		t.Fatal(err)
	}
	trusting := newTiered(t, store, Options{Trust: trust})
	for _, key := range []string{"local", "no-local", "put"} {
		if h, tag, ok := pullTag(t, trusting, key, nil, PullOptions{}); !ok || tag != key || len(h.Untrusted) != 0 {
			t.Errorf("%s: %v, tree %q, refused %v; want the signed entry", key, ok, tag, h.Untrusted)
		}
	}
}

// TestIfAbsentSignerReplacesUnsigned: a signing push with IfAbsent does
// not count as stored an entry it would not skip an upload for (unsigned,
// so refused by every trusting job): it replaces it, signed.
func TestIfAbsentSignerReplacesUnsigned(t *testing.T) {
	store := memstore.New()
	trust, signer := keyPair(t)
	src := smallTree(t, "same")
	// Whoever holds the bucket credential writes the key unsigned.
	if _, err := newTiered(t, store, Options{}).Push(t.Context(), "k", src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := newTiered(t, store, signer).Push(t.Context(), "k", src, PushOptions{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	trusting := newTiered(t, store, Options{Trust: trust})
	h, _, ok := pullTag(t, trusting, "k", nil, PullOptions{})
	if !ok {
		t.Fatalf("signing push --if-absent over an unsigned entry: %+v (AlreadyIn %q); a trusting pull then misses: %v", res, res.AlreadyIn, h.Untrusted)
	}
}

// TestListTrust: ListTrust tells, for each copy of each entry, what a
// pull with trusted keys makes of it, in the entry's own scope, without
// downloading: signed by a trusted key, unsigned, signed by another key,
// edited after signing, and a local copy kept as a tree alone.
func TestListTrust(t *testing.T) {
	const main = "refs/heads/main"
	store := memstore.New()
	trust, signer := keyPair(t)
	_, stranger := keyPair(t)
	inMain := signer
	inMain.Scope = main
	push(t, newTiered(t, store, inMain), "signed", "signed")
	push(t, newTiered(t, store, signer), "edited", "edited")
	push(t, newTiered(t, store, Options{}), "unsigned", "unsigned")
	push(t, newTiered(t, store, stranger), "stranger", "stranger")
	store.CorruptMeta("edited", func(m remote.Meta) remote.Meta { m.Description = "edited"; return m })

	shared := newLocal(t)
	fetcher, err := New(shared, Options{Remote: store, Scope: main})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := pullTag(t, fetcher, "signed", nil, PullOptions{}); !ok {
		t.Fatal("pull of the signed entry missed")
	}
	if _, err := shared.Put(t.Context(), "tree", smallTree(t, "tree"), ""); err != nil {
		t.Fatal(err)
	}
	opens := store.Opens()

	// A cache of another scope checks each entry in its own.
	lister, err := New(shared, Options{Remote: store, Scope: "pr-1", Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	locals, remotes, err := lister.ListTrust(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]error{}
	for _, l := range slices.Concat(locals, remotes) {
		got[string(l.Tier)+" "+l.Key] = l.Untrusted
	}
	for name, want := range map[string]error{
		"remote signed":   nil,
		"local signed":    nil,
		"remote unsigned": sign.ErrUnsigned,
		"remote stranger": sign.ErrUnknownSigner,
		"remote edited":   sign.ErrBadSignature,
		"local tree":      sign.ErrUnsigned,
	} {
		err, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not listed (%v)", name, got)
		case want == nil && err != nil:
			t.Errorf("%s: %v, want trusted", name, err)
		case want != nil && !errors.Is(err, want):
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if len(got) != 6 {
		t.Errorf("listed %v, want 6 copies", got)
	}
	if n := store.Opens() - opens; n != 0 {
		t.Errorf("ListTrust opened %d remote entries", n)
	}

	// Without trusted keys nothing is checked.
	plain, err := New(shared, Options{Remote: store})
	if err != nil {
		t.Fatal(err)
	}
	locals, remotes, err = plain.ListTrust(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range slices.Concat(locals, remotes) {
		if l.Untrusted != nil {
			t.Errorf("%s %s without trusted keys: %v", l.Tier, l.Key, l.Untrusted)
		}
	}
}
