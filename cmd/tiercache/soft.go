package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// A cache never breaks the build: by default, a remote or integrity
// failure turns a pull into a miss and a push into a local-only save, and
// is reported as a warning instead of an error. --strict turns them back
// into failures (exit 1).

// warnf prints a one-line warning on stderr, even with --quiet: it stands
// for a failure the command chose to survive, which the user must see.
// Under GitHub Actions it is also printed as a workflow annotation, so it
// shows on the run's summary page.
func (a *app) warnf(cmd *cobra.Command, format string, args ...any) {
	msg := singleLine(fmt.Sprintf(format, args...))
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "tiercache: warning: %s\n", msg)
	if a.getenv("GITHUB_ACTIONS") == "true" {
		fmt.Fprintf(w, "::warning title=tiercache::%s\n", escapeAnnotation(msg))
	}
}

// singleLine folds line breaks so a message stays on its line.
func singleLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// escapeAnnotation escapes a workflow command's message as the runner
// expects, so a '%' in a key cannot be read as an escape.
func escapeAnnotation(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}
