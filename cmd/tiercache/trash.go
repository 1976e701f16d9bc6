package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tiercache/tiercache/local"
)

// newEmptyTrashCommand is the hidden command push and pull start, detached,
// to delete what they moved to the local tier's trash (see
// emptyTrashDetached).
func newEmptyTrashCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "empty-trash",
		Short:  "Delete what the local tier moved to its trash",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := a.cacheDir()
			if err != nil {
				return err
			}
			// KeepTrash: Open's sweep stays quick, and the deletion
			// below holds only the trash lock, never the sweep lock
			// other processes need to clean up after killed runs.
			l, err := local.Open(dir, local.Options{KeepTrash: true})
			if err != nil {
				return fmt.Errorf("local tier: %w", err)
			}
			return l.EmptyTrash(cmd.Context())
		},
	}
}
