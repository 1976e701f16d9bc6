package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/spf13/pflag"

	"github.com/tiercache/tiercache/internal/treetest"
)

func TestSplitRestoreKeys(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"a-", []string{"a-"}},
		{"a-,b-", []string{"a-", "b-"}},
		{"a-\nb-\n", []string{"a-", "b-"}},             // a YAML block scalar's trailing newline
		{"  a- ,\r\n\n b- \n,,", []string{"a-", "b-"}}, // CRLF, blanks, empty elements
		{"deps linux-", []string{"deps linux-"}},       // inner spaces are part of the key
		{"", nil},
		{" , \n", nil},
	} {
		if got := splitRestoreKeys(c.in); !slices.Equal(got, c.want) {
			t.Errorf("splitRestoreKeys(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestRestoreKeyFlagsOrder: --restore-key and --restore-keys feed one
// list in command-line order, and --restore-key keeps commas.
func TestRestoreKeyFlagsOrder(t *testing.T) {
	var keys []string
	fs := pflag.NewFlagSet("pull", pflag.ContinueOnError)
	addRestoreKeyFlags(fs, &keys)
	err := fs.Parse([]string{
		"--restore-keys", "a-,b-", "-r", "c,d-", "--restore-keys=e-\nf-\n", "--restore-key", "g-",
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a-", "b-", "c,d-", "e-", "f-", "g-"}; !slices.Equal(keys, want) {
		t.Errorf("restore keys %q, want %q", keys, want)
	}
}

// TestPullRestoreKeysAlias: pull accepts --restore-keys as actions/cache
// users write it.
func TestPullRestoreKeysAlias(t *testing.T) {
	e := newEnv(t)
	mustCLI(t, e, "push", "deps-a-1", smallTree(t, "a1"))
	mustCLI(t, e, "push", "deps-b-1", smallTree(t, "b1"))

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"list in order", []string{"--restore-keys", "none-\ndeps-b-\ndeps-a-\n"}, "b1"},
		{"comma list", []string{"--restore-keys", " deps-a- , deps-b-"}, "a1"},
		{"flags interleaved", []string{"-r", "none-", "--restore-keys", "deps-b-", "-r", "deps-a-"}, "b1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			args := append(append([]string{"pull", "--fail-on-miss"}, c.args...), "deps-c", dst)
			mustCLI(t, e, args...)
			tag, err := treetest.CheckSmall(dst)
			if err != nil {
				t.Fatal(err)
			}
			if tag != c.want {
				t.Errorf("restored tree %q, want %q", tag, c.want)
			}
		})
	}
}
