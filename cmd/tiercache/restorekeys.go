package main

import (
	"strings"

	"github.com/spf13/pflag"
)

// addRestoreKeyFlags defines pull's --restore-key and its alias
// --restore-keys, both appending to *keys in the order they appear on the
// command line. --restore-key takes one prefix as given; --restore-keys
// takes a list, as actions/cache's restore-keys input does, so a
// workflow's multi-line value can be passed on unchanged.
func addRestoreKeyFlags(fs *pflag.FlagSet, keys *[]string) {
	fs.VarP(&restoreKeyValue{keys: keys}, "restore-key", "r",
		"key `PREFIX` to fall back on when KEY misses; repeatable, tried in order; taken as given, commas included")
	fs.Var(&restoreKeyValue{keys: keys, list: true}, "restore-keys",
		"a comma- or newline-separated `LIST` of key prefixes, like actions/cache's restore-keys (each trimmed, empty ones ignored); repeatable, tried in command-line order along with --restore-key, which a prefix holding a comma needs")
}

// restoreKeyValue is a pflag.Value appending to a list shared by several
// flags, so their values keep the order they were given in.
type restoreKeyValue struct {
	keys *[]string
	// list splits each value with splitRestoreKeys.
	list bool
}

func (v *restoreKeyValue) Set(s string) error {
	if v.list {
		*v.keys = append(*v.keys, splitRestoreKeys(s)...)
	} else {
		*v.keys = append(*v.keys, s)
	}
	return nil
}

func (v *restoreKeyValue) String() string { return strings.Join(*v.keys, ",") }

// Type is pflag's name for repeatable string flags, which shell
// completion reads to offer the flag again.
func (v *restoreKeyValue) Type() string { return "stringArray" }

// splitRestoreKeys splits a --restore-keys value at commas and line
// breaks, trims the space around each prefix and drops empty ones (a
// trailing newline, a blank line).
func splitRestoreKeys(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
