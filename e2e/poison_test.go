//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache/internal/treetest"
)

// scopedPull is the subset of `pull --json` the scope tests read.
type scopedPull struct {
	Hit       bool     `json:"hit"`
	Key       string   `json:"key"`
	Scope     string   `json:"scope"`
	Untrusted []string `json:"untrusted"`
}

// pullScoped pulls key (with args before it) into a new directory with
// --json and returns the result and the tag of the tree restored.
func pullScoped(t *testing.T, e env, key string, args ...string) (scopedPull, string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst")
	out, _ := mustRun(t, e, append(append([]string{"pull", "--json"}, args...), key, dst)...)
	var p scopedPull
	decodeJSON(t, out, &p)
	if !p.Hit {
		return p, ""
	}
	tag, err := treetest.CheckSmall(dst)
	if err != nil {
		t.Fatal(err)
	}
	return p, tag
}

// TestScopes: a push writes its job's scope only; a pull reads its own
// scope, then its read scopes in order, the key in every scope before any
// restore key; another scope without the fallback sees nothing; ls, rm
// and the default scope keep to their scopes.
func TestScopes(t *testing.T) {
	b := bucket(t)
	const main, pr = "refs/heads/main", "refs/pull/7/merge"
	base := newEnv(t, b)
	mainJob := base.with("TIERCACHE_SCOPE", main)
	prJob := func() env {
		return base.freshMachine(t).with("TIERCACHE_SCOPE", pr, "TIERCACHE_READ_SCOPES", main)
	}
	mustRun(t, mainJob, "push", "-q", "deps-k", smallTree(t, "main-deps"))
	mustRun(t, mainJob, "push", "-q", "tool-1", smallTree(t, "main-tool"))
	mustRun(t, base, "push", "-q", "deps-k", smallTree(t, "default-deps"))

	// No fallback: another scope sees nothing of main's.
	lone := base.freshMachine(t).with("TIERCACHE_SCOPE", pr)
	if p, _ := pullScoped(t, lone, "deps-k", "--restore-key", "tool-"); p.Hit {
		t.Fatalf("a scope without a read scope restored %+v", p)
	}
	// The fallback restores main's entry.
	if p, tag := pullScoped(t, prJob(), "deps-k"); !p.Hit || p.Scope != main || tag != "main-deps" {
		t.Fatalf("pull with the fallback: %+v, tree %q; want main's", p, tag)
	}
	// The job pushes its own; main's stays, and the job's own wins.
	mustRun(t, prJob(), "push", "-q", "deps-k", smallTree(t, "pr-deps"))
	if p, tag := pullScoped(t, mainJob.freshMachine(t), "deps-k"); p.Scope != "" && p.Scope != main || tag != "main-deps" {
		t.Fatalf("main's deps-k after the pull request's push: %+v, tree %q", p, tag)
	}
	if p, tag := pullScoped(t, prJob(), "deps-k"); p.Scope != pr || tag != "pr-deps" {
		t.Fatalf("the pull request's own deps-k: %+v, tree %q", p, tag)
	}
	// The default scope is its own too.
	if p, tag := pullScoped(t, base.freshMachine(t), "deps-k"); p.Scope != "" || tag != "default-deps" {
		t.Fatalf("the default scope's deps-k: %+v, tree %q", p, tag)
	}

	// Restore keys: each in each scope in turn, the newest match within
	// a scope first. The pull request's lint-a is older than main's
	// lint-b and still wins; tool- only main has.
	mustRun(t, prJob(), "push", "-q", "lint-a", smallTree(t, "pr-lint-a"))
	time.Sleep(20 * time.Millisecond)
	mustRun(t, mainJob, "push", "-q", "lint-b", smallTree(t, "main-lint-b"))
	if p, tag := pullScoped(t, prJob(), "lint-zzz", "--restore-key", "lint-"); p.Scope != pr || tag != "pr-lint-a" {
		t.Fatalf("restore key lint-: %+v, tree %q; want the job's own lint-a", p, tag)
	}
	if p, tag := pullScoped(t, prJob(), "lint-zzz", "--restore-key", "nope-", "--restore-key", "tool-"); p.Scope != main || tag != "main-tool" {
		t.Fatalf("restore key tool-: %+v, tree %q; want main's tool-1", p, tag)
	}
	// KEY in every scope comes before the restore keys: main's deps-k
	// before the job's own lint-a.
	fresh := base.freshMachine(t).with("TIERCACHE_SCOPE", "refs/pull/8/merge", "TIERCACHE_READ_SCOPES", main+",")
	mustRun(t, fresh, "push", "-q", "lint-c", smallTree(t, "pr8-lint-c"))
	if p, tag := pullScoped(t, fresh.freshMachine(t), "deps-k", "--restore-key", "lint-"); p.Scope != main || tag != "main-deps" {
		t.Fatalf("deps-k with restore key lint-: %+v, tree %q; want main's deps-k", p, tag)
	}

	// ls: every scope without --scope, named; one scope with it.
	var all []struct {
		Key, Scope, Tier string
	}
	out, _ := mustRun(t, base.freshMachine(t), "ls", "--json", "--tier", "remote")
	decodeJSON(t, out, &all)
	var got []string
	for _, e := range all {
		got = append(got, e.Scope+"|"+e.Key)
	}
	slices.Sort(got)
	want := []string{"refs/heads/main|deps-k", "refs/heads/main|lint-b", "refs/heads/main|tool-1",
		"refs/pull/7/merge|deps-k", "refs/pull/7/merge|lint-a", "refs/pull/8/merge|lint-c", "|deps-k"}
	if !slices.Equal(got, want) {
		t.Fatalf("ls of every scope = %q, want %q", got, want)
	}
	out, _ = mustRun(t, base.freshMachine(t), "ls", "--tier", "remote", "--scope", pr)
	if !strings.Contains(out, "SCOPE") || !strings.Contains(out, "lint-a") || strings.Contains(out, "tool-1") {
		t.Fatalf("ls --scope %s:\n%s", pr, out)
	}

	// rm in one scope leaves the others' entries of the key.
	mustRun(t, prJob(), "rm", "deps-k")
	if p, tag := pullScoped(t, prJob(), "deps-k"); p.Scope != main || tag != "main-deps" {
		t.Fatalf("after rm in the pull request's scope, deps-k: %+v, tree %q; want main's", p, tag)
	}
	if p, _ := pullScoped(t, base.freshMachine(t), "deps-k"); !p.Hit {
		t.Fatal("rm in a scope removed the default scope's deps-k")
	}

	// fsck knows scoped names in both tiers: nothing is broken, deep or
	// not, on a machine that holds several scopes' entries.
	mustFsck(t, prJob(), "--deep")
	mustFsck(t, mainJob, "--deep")

	// An invalid scope is a usage error naming it.
	if _, stderr, code := runCLI(t, base.with("TIERCACHE_SCOPE", "a\tb"), "ls"); code != 2 || !strings.Contains(stderr, "scope") {
		t.Fatalf("invalid scope: exit %d, %s", code, stderr)
	}
}

// manifestName is the object name of key's manifest in scope (the S3
// layout's escaping of what the tests use: '/' and the scope's NUL).
func manifestName(scope, key string) string {
	stem := key
	if scope != "" {
		stem = scope + "%00" + key
	}
	return remotePrefix + "manifests/" + strings.ReplaceAll(stem, "/", "%2F") + ".json"
}

// editManifest rewrites the manifest of key through minio-go with edit,
// as a job holding the bucket's credentials could.
func editManifest(t *testing.T, b, scope, key string, edit func(m map[string]any)) {
	t.Helper()
	m := readManifest(t, b, scope, key)
	edit(m)
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := minioClient(t).PutObject(t.Context(), b, manifestName(scope, key), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

func readManifest(t *testing.T, b, scope, key string) map[string]any {
	t.Helper()
	obj, err := minioClient(t).GetObject(t.Context(), b, manifestName(scope, key), minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	body, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("manifest of %q: %v", key, err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("manifest of %q: %v", key, err)
	}
	return m
}

// refused pulls key with e into a directory holding one file of its own
// and checks the pull is a miss (exit 0) with a warning naming why, that
// --strict makes it exit 1, and that the directory is unchanged.
func refused(t *testing.T, e env, key, why string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "mine"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr := mustRun(t, e, "pull", "--json", key, dst)
	var p scopedPull
	decodeJSON(t, out, &p)
	if p.Hit || len(p.Untrusted) != 1 || !strings.Contains(p.Untrusted[0], why) || !strings.Contains(stderr, "warning") || !strings.Contains(stderr, why) {
		t.Errorf("pull %s: %+v\n%s\nwant a miss with a warning naming %q", key, p, stderr, why)
	}
	_, stderr, code := runCLI(t, e, "pull", "--strict", key, dst)
	if code != 1 || !strings.Contains(stderr, why) {
		t.Errorf("pull --strict %s: exit %d, %s; want 1 naming %q", key, code, stderr, why)
	}
	entries, err := os.ReadDir(dst)
	if err != nil || len(entries) != 1 || entries[0].Name() != "mine" {
		t.Errorf("pull %s changed DIR: %v, %v", key, entries, err)
	}
}

// TestSignedEntries: with TIERCACHE_TRUSTED_KEYS, a pull restores only
// entries signed by a trusted key and unchanged since; an unsigned entry,
// one signed by another key, and a signed manifest whose fields were
// edited or whose archive was swapped (through minio-go) are each a miss
// with a warning (an error with --strict), DIR unchanged. A local copy
// fetched unsigned never serves a trusting pull.
func TestSignedEntries(t *testing.T) {
	b := bucket(t)
	e := newEnv(t, b)
	keyFile := filepath.Join(t.TempDir(), "ci-key")
	pub, _ := mustRun(t, e, "keygen", keyFile)
	pub = strings.TrimSpace(pub)
	priv, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the private key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if pubFile, _ := os.ReadFile(keyFile + ".pub"); strings.TrimSpace(string(pubFile)) != pub {
		t.Fatalf("%s.pub holds %q, keygen printed %q", keyFile, pubFile, pub)
	}
	if _, _, code := runCLI(t, e, "keygen", keyFile); code == 0 {
		t.Fatal("keygen overwrote a key")
	}
	strangerFile := filepath.Join(t.TempDir(), "stranger")
	otherPub, _ := mustRun(t, e, "keygen", strangerFile)
	strangerPriv, err := os.ReadFile(strangerFile)
	if err != nil {
		t.Fatal(err)
	}

	trustedJob := e.with("TIERCACHE_SIGNING_KEY", string(priv))
	out, stderr := mustRun(t, trustedJob, "push", "--json", "signed", smallTree(t, "signed"))
	var pushed struct{ Signed bool }
	decodeJSON(t, out, &pushed)
	if !pushed.Signed || strings.Contains(stderr+out, strings.TrimSpace(string(priv))) {
		t.Fatalf("signed push: %s\n%s", out, stderr)
	}
	mustRun(t, trustedJob, "push", "-q", "victim", smallTree(t, "victim"))
	mustRun(t, trustedJob, "push", "-q", "edited", smallTree(t, "edited"))
	mustRun(t, e, "push", "-q", "unsigned", smallTree(t, "unsigned"))
	mustRun(t, e, "push", "-q", "evil", smallTree(t, "evil"))
	mustRun(t, e.with("TIERCACHE_SIGNING_KEY", string(strangerPriv)), "push", "-q", "stranger", smallTree(t, "stranger"))
	if out, _ := mustRun(t, e, "ls", "--tier", "remote"); !strings.Contains(out, "SIGNED") {
		t.Errorf("ls shows no SIGNED column:\n%s", out)
	}

	// The signing job's own machine serves its pushes locally to a job
	// that requires the signature.
	out, _ = mustRun(t, trustedJob.with("TIERCACHE_TRUSTED_KEYS", pub), "pull", "--json", "signed", filepath.Join(t.TempDir(), "d"))
	var own struct{ Tier string }
	decodeJSON(t, out, &own)
	if own.Tier != "local" {
		t.Fatalf("a signed push's local copy: %s; want a local hit", out)
	}

	if _, stderr, code := runCLI(t, e.with("TIERCACHE_TRUSTED_KEYS", strings.TrimSpace(otherPub)+"-not,"+pub), "ls"); code != 2 || !strings.Contains(stderr, "TIERCACHE_TRUSTED_KEYS") {
		t.Fatalf("a malformed trusted key: exit %d, %s; want 2 naming the variable", code, stderr)
	}
	if _, stderr, code := runCLI(t, e.with("TIERCACHE_SIGNING_KEY", "tiercache-ed25519-private:c2VjcmV0"), "push", "x", smallTree(t, "x")); code != 2 || strings.Contains(stderr, "c2VjcmV0") {
		t.Fatalf("a malformed signing key: exit %d, %s; want 2 without the value", code, stderr)
	}
	// Rotation: a new key listed first, ours second, both trusted.
	newPub, _ := mustRun(t, e, "keygen", filepath.Join(t.TempDir(), "next"))
	trusting := func() env {
		return e.freshMachine(t).with("TIERCACHE_TRUSTED_KEYS", "  "+strings.TrimSpace(newPub)+" ,\n"+pub+"\n")
	}
	if p, tag := pullScoped(t, trusting(), "signed"); !p.Hit || tag != "signed" || len(p.Untrusted) != 0 {
		t.Fatalf("signed entry: %+v, tree %q", p, tag)
	}
	refused(t, trusting(), "unsigned", "not signed")
	refused(t, trusting(), "stranger", "not trusted")

	// Fields edited through minio-go.
	editManifest(t, b, "", "edited", func(m map[string]any) {
		m["meta"].(map[string]any)["description"] = "harmless, surely"
	})
	refused(t, trusting(), "edited", "bad signature")
	// The archive swapped for another (the manifest's data and every
	// field that describes it), so the digest checks but the signature
	// does not.
	evil := readManifest(t, b, "", "evil")
	for _, o := range objects(t, b, remotePrefix+"data/evil/") {
		dst := minio.CopyDestOptions{Bucket: b, Object: remotePrefix + "data/victim/" + filepath.Base(o)}
		if _, err := minioClient(t).CopyObject(t.Context(), dst, minio.CopySrcOptions{Bucket: b, Object: o}); err != nil {
			t.Fatal(err)
		}
	}
	editManifest(t, b, "", "victim", func(m map[string]any) {
		m["data"] = evil["data"]
		vm, em := m["meta"].(map[string]any), evil["meta"].(map[string]any)
		for _, f := range []string{"sha256", "archive_size", "size", "files", "index"} {
			vm[f] = em[f]
		}
	})
	refused(t, trusting(), "victim", "bad signature")
	// Without trusted keys the swapped entry restores the other tree: the
	// signature is what stops it.
	if _, tag := pullScoped(t, e.freshMachine(t), "victim"); tag != "evil" {
		t.Fatalf("the swapped victim without trusted keys restores %q", tag)
	}

	// One machine: a job without trusted keys fetches the unsigned entry
	// into the local tier; a trusting job there still refuses it, and
	// finds the signed one it fetched locally.
	machine := e.freshMachine(t)
	pullScoped(t, machine, "unsigned")
	pullScoped(t, machine, "signed")
	trustingHere := machine.with("TIERCACHE_TRUSTED_KEYS", pub)
	refused(t, trustingHere, "unsigned", "not signed")
	out, _ = mustRun(t, trustingHere, "pull", "--json", "signed", filepath.Join(t.TempDir(), "d"))
	var local struct{ Tier string }
	decodeJSON(t, out, &local)
	if local.Tier != "local" {
		t.Fatalf("the signed entry fetched on this machine: %s; want a local hit", out)
	}

	// ls with the trusted keys tells which entries a pull would restore,
	// from the manifests alone; without them it has no TRUSTED column.
	out, _ = mustRun(t, trustingHere, "ls", "--tier", "remote")
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			rows[f[1]] = line
		}
	}
	for key, want := range map[string]string{
		"signed": " yes ", "unsigned": " no: unsigned ", "stranger": " no: other key ",
		"edited": " NO: BAD SIGNATURE ", "victim": " NO: BAD SIGNATURE ",
	} {
		if !strings.Contains(rows[key]+" ", want) {
			t.Errorf("ls with trusted keys, %s: %q, want %q in it", key, rows[key], strings.TrimSpace(want))
		}
	}
	if !strings.Contains(rows["KEY"], "TRUSTED") {
		t.Errorf("ls with trusted keys has no TRUSTED column:\n%s", out)
	}
	out, _ = mustRun(t, trustingHere, "ls", "--json", "--tier", "remote")
	var listed []struct {
		Key       string
		Trusted   *bool
		Untrusted string
	}
	decodeJSON(t, out, &listed)
	for _, l := range listed {
		if want := l.Key == "signed"; l.Trusted == nil || *l.Trusted != want || (l.Untrusted == "") != want {
			t.Errorf("ls --json with trusted keys, %s: trusted %v, untrusted %q", l.Key, l.Trusted, l.Untrusted)
		}
	}
	if out, _ := mustRun(t, machine, "ls", "--json"); strings.Contains(out, "trusted") {
		t.Errorf("ls --json without trusted keys reports trust:\n%s", out)
	}
}
