package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionFromBuildInfo(t *testing.T) {
	for _, c := range []struct {
		info debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "devel+0123456789ab-dirty"},
		{debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}}, "devel+abc"},
	} {
		if got := versionFromBuildInfo(&c.info); got != c.want {
			t.Errorf("versionFromBuildInfo(%+v) = %q, want %q", c.info, got, c.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	old := version
	version = "v9.8.7-test"
	t.Cleanup(func() { version = old })
	e := newEnv(t)
	r := mustCLI(t, e, "version")
	if !strings.HasPrefix(r.stdout, "tiercache v9.8.7-test ("+runtime.Version()) {
		t.Errorf("version: %q", r.stdout)
	}
	var v versionJSON
	decode(t, mustCLI(t, e, "version", "--json"), &v)
	if v.Version != "v9.8.7-test" || v.Go != runtime.Version() {
		t.Errorf("version --json: %+v", v)
	}
	if r2 := mustCLI(t, e, "--version"); r2.stdout != r.stdout {
		t.Errorf("--version printed %q, version %q: want the same text", r2.stdout, r.stdout)
	}
}

// TestVersionFlagMatchesCommand: without a version set at link time, both
// forms print the one the build information gives.
func TestVersionFlagMatchesCommand(t *testing.T) {
	old := version
	version = ""
	t.Cleanup(func() { version = old })
	e := newEnv(t)
	cmd := mustCLI(t, e, "version").stdout
	flag := mustCLI(t, e, "--version").stdout
	if cmd != flag {
		t.Errorf("version printed %q, --version %q: want the same text", cmd, flag)
	}
	if want := "tiercache " + buildVersion() + " (" + runtime.Version(); !strings.HasPrefix(cmd, want) {
		t.Errorf("version: %q, want it to start with %q", cmd, want)
	}
}
