package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/sign"
)

// TestTrustedKeysSetEmpty: TIERCACHE_TRUSTED_KEYS set but empty (a CI
// secret that is missing expands to "") makes a pull warn that it
// accepts unsigned entries; unset, it says nothing.
func TestTrustedKeysSetEmpty(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "k", smallTree(t, "tk"))
	pull := func(e env) string {
		var stdout, stderr bytes.Buffer
		code, _ := runMain(context.Background(), []string{"pull", "k", filepath.Join(t.TempDir(), "d")}, &stdout, &stderr,
			func(k string) (string, bool) { v, ok := e[k]; return v, ok })
		if code != 0 {
			t.Fatalf("pull: exit %d: %s", code, stderr.String())
		}
		return stderr.String()
	}
	const warning = "TIERCACHE_TRUSTED_KEYS is set but empty: this pull accepts unsigned entries"
	if got := pull(e.with("TIERCACHE_TRUSTED_KEYS", "")); !strings.Contains(got, warning) {
		t.Errorf("set but empty: stderr %q; want the warning", got)
	}
	if got := pull(e.with("TIERCACHE_TRUSTED_KEYS", " \n")); !strings.Contains(got, warning) {
		t.Errorf("white space only: stderr %q; want the warning", got)
	}
	if got := pull(e); strings.Contains(got, "TRUSTED_KEYS") {
		t.Errorf("unset: stderr %q; want no word of it", got)
	}
}

// TestLinkWithTrustedKeys: with trusted keys, pull --link says it does
// not link (the pull extracts the signed archive); without, it says
// nothing of it.
func TestLinkWithTrustedKeys(t *testing.T) {
	e := newEnv(t)
	_, pub, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const note = "--link is not used with TIERCACHE_TRUSTED_KEYS"
	r := cli(t, e.with("TIERCACHE_TRUSTED_KEYS", pub), "pull", "--link", "k", filepath.Join(t.TempDir(), "d"))
	if r.code != 0 || !strings.Contains(r.stderr, note) {
		t.Errorf("with trusted keys: exit %d, stderr %q; want the note", r.code, r.stderr)
	}
	if r := cli(t, e, "pull", "--link", "k", filepath.Join(t.TempDir(), "d")); strings.Contains(r.stderr, note) {
		t.Errorf("without: stderr %q", r.stderr)
	}
}

// TestKeysFromFiles: TIERCACHE_SIGNING_KEY and TIERCACHE_TRUSTED_KEYS may
// name a file holding the key, as a GitLab CI variable of type File does;
// a file that cannot be read is a usage error saying so.
func TestKeysFromFiles(t *testing.T) {
	e := newEnv(t)
	priv, pub, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privFile, pubFile := filepath.Join(dir, "key"), filepath.Join(dir, "key.pub")
	if err := os.WriteFile(privFile, []byte(priv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, []byte(pub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, e.with("TIERCACHE_SIGNING_KEY", privFile), "push", "signed", smallTree(t, "signed"))
	mustCLI(t, e, "push", "unsigned", smallTree(t, "unsigned"))
	trusting := e.with("TIERCACHE_TRUSTED_KEYS", pubFile)
	hit := func(key string) bool {
		r := mustCLI(t, trusting, "pull", "--json", key, filepath.Join(t.TempDir(), "d"))
		var got struct{ Hit bool }
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("pull --json: %v\n%s", err, r.stdout)
		}
		return got.Hit
	}
	if !hit("signed") {
		t.Error("pull of the entry signed by the key file, trusting the public key file: a miss, want a hit")
	}
	if hit("unsigned") {
		t.Error("pull of an unsigned entry, trusting the public key file: a hit, want a miss")
	}
	// Missing, a directory (as a FIFO, which would block the open, is
	// no file), too large to be a key file.
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 64<<10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{filepath.Join(dir, "absent"), dir, big} {
		for _, v := range []string{"TIERCACHE_SIGNING_KEY", "TIERCACHE_TRUSTED_KEYS"} {
			r := cli(t, e.with(v, bad), "push", "x", smallTree(t, "x"))
			if r.code != 2 || !strings.Contains(r.stderr, v+": reading the key file it names") {
				t.Errorf("%s naming %s: exit %d, stderr %q; want a usage error saying so", v, bad, r.code, r.stderr)
			}
		}
	}
}
