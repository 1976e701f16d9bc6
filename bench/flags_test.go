//go:build unix

package main

import (
	"reflect"
	"testing"
)

func TestParseTrees(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []treeSpec
	}{
		{"generated,goroot", []treeSpec{{kind: treeGenerated, name: "generated"}, {kind: treeGoroot, name: "goroot"}}},
		{" goroot , generated ", []treeSpec{{kind: treeGoroot, name: "goroot"}, {kind: treeGenerated, name: "generated"}}},
		{"/a/Mod Cache", []treeSpec{{kind: treeDir, dir: "/a/Mod Cache", name: "mod_cache"}}},
		// A directory named like a keyword, and two directories of one
		// base name, get names of their own.
		{"goroot,./goroot,/x/goroot", []treeSpec{
			{kind: treeGoroot, name: "goroot"},
			{kind: treeDir, dir: "./goroot", name: "goroot-2"},
			{kind: treeDir, dir: "/x/goroot", name: "goroot-3"},
		}},
		{"/", []treeSpec{{kind: treeDir, dir: "/", name: "tree"}}},
	} {
		got, err := parseTrees(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseTrees(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "generated,", "goroot,goroot", "/a/b,/a/b/", "generated,,goroot"} {
		if got, err := parseTrees(in); err == nil {
			t.Errorf("parseTrees(%q) = %+v, want an error", in, got)
		}
	}
}

func TestParseFlagsTrees(t *testing.T) {
	c, err := parseFlags(nil)
	if err != nil || len(c.trees) != 2 || c.trees[0].kind != treeGenerated || c.trees[1].kind != treeGoroot {
		t.Errorf("default trees = %+v, %v; want generated, goroot", c.trees, err)
	}
	// --tree takes any name, keywords included, as a directory.
	c, err = parseFlags([]string{"--tree", "goroot"})
	if want := []treeSpec{{kind: treeDir, dir: "goroot", name: "goroot"}}; err != nil || !reflect.DeepEqual(c.trees, want) {
		t.Errorf("--tree goroot: trees = %+v, %v; want %+v", c.trees, err, want)
	}
	if _, err := parseFlags([]string{"--tree", "d", "--trees", "generated"}); err == nil {
		t.Error("--tree with --trees: no error")
	}
	if _, err := parseFlags([]string{"--trees", "generated,generated"}); err == nil {
		t.Error("--trees generated,generated: no error")
	}
}

func TestJSONOutFor(t *testing.T) {
	for _, tc := range []struct {
		base, name string
		trees      int
		want       string
	}{
		{"bench-results.json", "generated", 1, "bench-results.json"},
		{"bench-results.json", "generated", 2, "bench-results-generated.json"},
		{"out/r.v1.json", "goroot", 2, "out/r.v1-goroot.json"},
		{"results", "goroot", 2, "results-goroot"},
		{"a.b/results", "goroot", 2, "a.b/results-goroot"},
	} {
		if got := jsonOutFor(tc.base, tc.name, tc.trees); got != tc.want {
			t.Errorf("jsonOutFor(%q, %q, %d) = %q, want %q", tc.base, tc.name, tc.trees, got, tc.want)
		}
	}
}
