package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/tiercache
//
// When empty, buildVersion derives one from the build information.
var version string

// buildVersion returns version, else the module version `go install`
// recorded, else "devel" with the VCS revision when the build recorded one.
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return versionFromBuildInfo(info)
}

func versionFromBuildInfo(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "devel+" + rev
	if modified == "true" {
		v += "-dirty"
	}
	return v
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Example: `  tiercache version
  tiercache version --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runVersion(a, cmd) },
	}
}

// versionJSON is the --json output of version.
type versionJSON struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func currentVersion() versionJSON {
	return versionJSON{Version: buildVersion(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// versionDetail is what `tiercache version` and `tiercache --version` both
// print after "tiercache ": one text, so a bug report quotes the same
// thing whichever the user typed.
func versionDetail() string {
	v := currentVersion()
	return fmt.Sprintf("%s (%s %s/%s)", v.Version, v.Go, v.OS, v.Arch)
}

func runVersion(a *app, cmd *cobra.Command) error {
	if a.flags.json {
		return writeJSON(cmd, currentVersion())
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "tiercache %s\n", versionDetail())
	return err
}

// writeJSON prints v as one indented JSON document on stdout.
func writeJSON(cmd *cobra.Command, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(append(b, '\n'))
	return err
}
