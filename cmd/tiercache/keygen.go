package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache/sign"
)

func newKeygenCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen FILE",
		Short: "Write a key pair for signing entries (FILE, FILE.pub)",
		Long: `Keygen writes a new Ed25519 key pair: the private key to FILE (readable by
you alone) and the public key to FILE.pub, one line each, and prints the
public key. It never overwrites a file.

The private key signs: put FILE's content in a CI secret that only
trusted jobs (protected branches, releases) can read, as
TIERCACHE_SIGNING_KEY, and every entry they push is signed. The public key
checks: set TIERCACHE_TRUSTED_KEYS to it (it is safe to publish, in the
repository or a CI variable), and pull restores only entries signed by
it. Several keys, separated by commas, are all trusted: add the new key
there before a rotation, and drop the old one after. See the README's
"Cache poisoning".

With --json, prints {"private_key_file", "public_key_file", "public_key"}.`,
		Example: `  tiercache keygen ci-cache-key
  gh secret set TIERCACHE_SIGNING_KEY < ci-cache-key
  gh variable set TIERCACHE_TRUSTED_KEYS < ci-cache-key.pub
  rm ci-cache-key`,
		Args: exactArgs(1, "a FILE to write the private key to"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeygen(a, cmd, args[0])
		},
	}
}

func runKeygen(a *app, cmd *cobra.Command, file string) error {
	fail := func(err error) error { return fmt.Errorf("keygen: %w", err) }
	priv, pub, err := sign.GenerateKey()
	if err != nil {
		return fail(err)
	}
	pubFile := file + ".pub"
	for _, f := range []string{file, pubFile} {
		if _, err := os.Lstat(f); err == nil {
			return fail(fmt.Errorf("%s exists; keygen never overwrites a key", f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fail(err)
		}
	}
	if err := writeNew(file, priv+"\n", 0o600); err != nil {
		return fail(err)
	}
	if err := writeNew(pubFile, pub+"\n", 0o644); err != nil {
		_ = os.Remove(file)
		return fail(err)
	}
	a.infof(cmd, "wrote the private key to %s (keep it secret: TIERCACHE_SIGNING_KEY) and the public key to %s (TIERCACHE_TRUSTED_KEYS)", file, pubFile)
	if a.flags.json {
		return writeJSON(cmd, map[string]string{"private_key_file": file, "public_key_file": pubFile, "public_key": pub})
	}
	fmt.Fprintln(cmd.OutOrStdout(), pub)
	return nil
}

// writeNew writes content to a new file of mode perm, failing if path
// exists, and removes what it wrote on failure.
func writeNew(path, content string, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}
