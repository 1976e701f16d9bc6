package main

import (
	"github.com/spf13/cobra"
)

const rootLong = `tiercache caches directory trees (module caches, node_modules, build
outputs) under a key, in two tiers: a local directory, and an S3-compatible
bucket shared by every machine. A CI job pulls before it builds and pushes
after, so the next job starts warm.

Configuration comes from flags, then TIERCACHE_* environment variables, then
the standard AWS ones (AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_PROFILE, ...).
Credentials always come from the standard AWS chain (environment, shared
files and profiles, SSO, web identity for CI OIDC, instance roles); tiercache
never prints them. Without --remote, tiercache is a local-only cache.

Environment:
  TIERCACHE_DIR            --cache-dir
  TIERCACHE_REMOTE         --remote
  TIERCACHE_S3_ENDPOINT    --endpoint (AWS_ENDPOINT_URL_S3 applies when neither is set)
  TIERCACHE_S3_PATH_STYLE  --path-style (unset: the profile's s3 addressing_style, else automatic)
  TIERCACHE_REGION         --region (AWS_REGION applies when neither is set)
  TIERCACHE_S3_IDLE_TIMEOUT --idle-timeout
  TIERCACHE_TIMEOUT        --timeout
  AWS_MAX_ATTEMPTS         attempts per S3 request, retries included (default 5)
  TIERCACHE_READ_ONLY      --read-only
  TIERCACHE_NO_SYNC        --no-sync
  TIERCACHE_SYNC_DATA      --sync-data
  TIERCACHE_NO_LOCAL       --no-local
  TIERCACHE_STRICT         --strict
  TIERCACHE_JSON           --json
  TIERCACHE_QUIET          --quiet
  TIERCACHE_VERBOSE        --verbose
  TIERCACHE_SCOPE          --scope
  TIERCACHE_READ_SCOPES    --read-scope, comma-separated
  TIERCACHE_SIGNING_KEY    push signs its entries with this private key
                           (keygen); a secret, never printed
  TIERCACHE_TRUSTED_KEYS   pull restores only entries signed by one of
                           these public keys (comma-separated)
  GITHUB_OUTPUT            pull appends cache-hit, cache-matched-key and
                           cache-primary-key to it

A cache outage never fails the build: when the remote fails or serves an
entry that fails verification, pull warns and goes on as a miss (DIR left
as it was) and push warns that nothing was saved remotely, both exiting 0.
--strict makes these failures exit 1. Under GitHub Actions
(GITHUB_ACTIONS=true) warnings are also printed as ::warning:: annotations.

Exit codes:
  0  success: a pull that misses, and a pull or push that survived a
     remote failure with a warning, succeed too
  1  failure: DIR or the local tier could not be read or written, a file
     changed while push read it, the command was interrupted (SIGINT,
     SIGTERM, SIGHUP), a write under --read-only, fsck problems left
     unrepaired, or (with --strict) the remote failed
  2  usage error: unknown command or flag, wrong arguments, invalid key
  3  pull --fail-on-miss found nothing (a pull whose remote failed counts)`

const rootExample = `  # In a CI job: restore the Go module cache, build, save it.
  export TIERCACHE_REMOTE=s3://ci-cache/myproject
  key="gomod-$(sha256sum go.sum | cut -c1-16)"
  tiercache pull "$key" --restore-key gomod- "$HOME/go/pkg/mod"
  go build ./...
  tiercache push "$key" "$HOME/go/pkg/mod"

  # Against MinIO or another S3-compatible store (path-style addressing is
  # automatic for an endpoint that is not AWS's).
  tiercache --remote s3://cache --endpoint http://127.0.0.1:9000 ls`

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:     "tiercache",
		Short:   "Two-tier (local + S3) cache of directory trees for CI",
		Long:    rootLong,
		Example: rootExample,
		Version: versionDetail(),
		// Errors are printed once, as one line, by run.
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.applyEnv(cmd.Flags()); err != nil {
				return err
			}
			a.started = true
			return nil
		},
	}
	a.addGlobalFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asUsage(err) })
	root.SetVersionTemplate("tiercache {{.Version}}\n")
	root.AddCommand(
		newPushCommand(a),
		newPullCommand(a),
		newLsCommand(a),
		newRmCommand(a),
		newPruneCommand(a),
		newFsckCommand(a),
		newStatsCommand(a),
		newKeygenCommand(a),
		newVersionCommand(a),
		newEmptyTrashCommand(a),
	)
	return root
}

// addCompletion adds cobra's completion command, which Execute would
// add, with examples that say how to install the script. It writes to
// root's output as set when it is called.
func addCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c != root {
		c.Example = completionExample
	}
}

const completionExample = `  # bash, for this shell (add the line to ~/.bashrc to keep it):
  source <(tiercache completion bash)
  # zsh (with "autoload -U compinit; compinit" in ~/.zshrc):
  tiercache completion zsh > "${fpath[1]}/_tiercache"
  # fish:
  tiercache completion fish > ~/.config/fish/completions/tiercache.fish
  # PowerShell, for this session (add it to $PROFILE to keep it):
  tiercache completion powershell | Out-String | Invoke-Expression`

// exactArgs is cobra.ExactArgs with a usage error that names the
// arguments expected.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s, got %d argument(s)", cmd.Name(), names, len(args))
		}
		return nil
	}
}
