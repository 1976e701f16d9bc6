package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRmCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm KEY...",
		Short: "Remove KEY from both tiers",
		Long: `Rm removes each KEY from the remote tier, then from the local one. Removing a
key that is not stored is not an error. A job still copying the tree out of
the local tier finishes unharmed: the local tier deletes it only after a
grace period.`,
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
	Removed []string `json:"removed"`
}

func runRm(a *app, cmd *cobra.Command, keys []string) error {
	for _, k := range keys {
		if err := checkKey("rm", k); err != nil {
			return err
		}
	}
	c, err := a.openCache(cmd, nil)
	if err != nil {
		return fmt.Errorf("rm %q: %w", keys[0], err)
	}
	out := rmJSON{Removed: []string{}}
	for _, k := range keys {
		if err := c.Invalidate(cmd.Context(), k); err != nil {
			return fmt.Errorf("rm %q: %w", k, err)
		}
		out.Removed = append(out.Removed, k)
		a.infof(cmd, "removed %q", k)
	}
	if a.flags.json {
		return writeJSON(cmd, out)
	}
	return nil
}
