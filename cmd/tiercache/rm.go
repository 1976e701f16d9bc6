package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/local"
)

func newRmCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm KEY...",
		Short: "Remove KEY from both tiers",
		Long: `Rm removes each KEY from the remote tier, then from the local one, and says
for each whether it was removed or was not stored in either tier. Removing a
key that is not stored is not an error. A job still copying the tree out of
the local tier finishes unharmed: the local tier deletes it only after a
grace period. With --scope (or TIERCACHE_SCOPE), KEY is removed from that
scope; other scopes' entries of KEY stay.

With --json, prints {"removed": [...], "not_stored": [...]}.`,
		Example: `  tiercache rm gomod-0123456789abcdef
  tiercache rm build-old-1 build-old-2 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("rm takes at least one KEY")
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
			return completeKeys(a, cmd)
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runRm(a, cmd, args) },
	}
	return cmd
}

// rmJSON is the --json output of rm.
type rmJSON struct {
	// Removed lists the keys that were stored in a tier and are gone.
	Removed []string `json:"removed"`
	// NotStored lists the keys neither tier held.
	NotStored []string `json:"not_stored"`
}

func runRm(a *app, cmd *cobra.Command, keys []string) error {
	for _, k := range keys {
		if err := checkKey("rm", k); err != nil {
			return err
		}
	}
	if a.flags.readOnly {
		// Checked here too so a refused rm sends no lookup either.
		return fmt.Errorf("rm %q: %w (--read-only or TIERCACHE_READ_ONLY is set)", keys[0], tiercache.ErrReadOnly)
	}
	c, err := a.openCache(cmd, nil)
	if err != nil {
		return fmt.Errorf("rm %q: %w", keys[0], err)
	}
	ctx := cmd.Context()
	out := rmJSON{Removed: []string{}, NotStored: []string{}}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			continue // rm k k removes k once
		}
		seen[k] = true
		var stored bool
		if c != nil { // nil: no local tier yet, and no remote
			if stored, err = a.isStored(ctx, c.Local(), k); err != nil {
				return fmt.Errorf("rm %q: %w", k, err)
			}
			// Removed even when neither tier reports it: the removal is
			// idempotent, and it also settles a key stored since the look.
			if err := c.Invalidate(ctx, k); err != nil {
				return fmt.Errorf("rm %q: %w", k, err)
			}
		}
		if stored {
			out.Removed = append(out.Removed, k)
			a.infof(cmd, "removed %q", k)
		} else {
			out.NotStored = append(out.NotStored, k)
			if a.scopeGiven(cmd) {
				a.infof(cmd, "%q: not stored in scope %q", k, a.flags.scope)
			} else {
				// ls lists every scope; rm removes from one.
				a.infof(cmd, "%q: not stored in the default scope (an entry ls lists in another scope needs rm --scope SCOPE)", k)
			}
		}
	}
	if a.flags.json {
		return writeJSON(cmd, out)
	}
	return nil
}

// isStored reports whether either tier of the cache openCache opened
// holds key in its scope (l is its local tier's view of the scope). The Backend contract's Invalidate does not say whether it
// removed anything, so rm looks first.
func (a *app) isStored(ctx context.Context, l *local.Cache, key string) (bool, error) {
	// A damaged entry (its metadata unreadable) is stored all the same:
	// removing it is what the refusal's hint tells the user to do.
	if l != nil {
		if _, ok, err := l.Peek(ctx, key); errors.Is(err, tiercache.ErrIntegrity) {
			return true, nil
		} else if err != nil {
			return false, fmt.Errorf("local lookup: %w", err)
		} else if ok {
			return true, nil
		}
	}
	if a.remote == nil {
		return false, nil
	}
	_, err := a.remote.Stat(ctx, key)
	switch {
	case errors.Is(err, tiercache.ErrNotFound):
		return false, nil
	case errors.Is(err, tiercache.ErrIntegrity):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("remote stat: %w", err)
	}
	return true, nil
}
