package archive

import (
	"fmt"
	"path"
	"strings"

	"github.com/tiercache/tiercache"
)

// Exclude is a set of gitignore-like patterns naming what WriteSource
// leaves out, matched against each member's path relative to the tree it
// is in (a Source's Dir, or each of its Paths), with slashes:
//
//   - "*" matches any run of characters but "/", "?" one such character,
//     and "[...]" a class, as in path.Match;
//   - "**" as a whole component matches any number of components: "a/**/b"
//     matches a/b and a/x/y/b, and a trailing "/**" everything below;
//   - a pattern without a "/" but at its end matches a name at any depth
//     ("*.o", "node_modules"); one with a "/" elsewhere is anchored at the
//     tree's root ("build/tmp", "/out"), a leading "/" only anchoring it;
//   - a trailing "/" matches directories only ("cache/").
//
// A matched directory is left out with everything below it. Unlike
// gitignore, there is no negation: "!" is an ordinary character.
type Exclude struct {
	pats []excludePattern
}

type excludePattern struct {
	raw     string
	comps   []string
	dirOnly bool
}

// NewExclude compiles patterns. An empty or malformed pattern returns an
// error wrapping tiercache.ErrInvalidArgument naming it. No patterns give
// a nil *Exclude, which matches nothing.
func NewExclude(patterns []string) (*Exclude, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	e := &Exclude{}
	for _, raw := range patterns {
		p := strings.TrimPrefix(raw, "./")
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimRight(p, "/")
		anchored := strings.Contains(p, "/")
		p = strings.TrimLeft(p, "/")
		if p == "" {
			return nil, fmt.Errorf("exclude pattern %q matches nothing: %w", raw, tiercache.ErrInvalidArgument)
		}
		comps := strings.Split(p, "/")
		for _, c := range comps {
			if c == "" || c == "." || c == ".." {
				return nil, fmt.Errorf("exclude pattern %q has an empty, %q or %q component: %w", raw, ".", "..", tiercache.ErrInvalidArgument)
			}
			if _, err := path.Match(c, ""); err != nil {
				return nil, fmt.Errorf("exclude pattern %q: %w: %w", raw, err, tiercache.ErrInvalidArgument)
			}
		}
		if !anchored {
			comps = append([]string{"**"}, comps...)
		}
		e.pats = append(e.pats, excludePattern{raw: raw, comps: comps, dirOnly: dirOnly})
	}
	return e, nil
}

// Patterns returns the patterns as given.
func (e *Exclude) Patterns() []string {
	if e == nil {
		return nil
	}
	out := make([]string, len(e.pats))
	for i, p := range e.pats {
		out[i] = p.raw
	}
	return out
}

// Match reports whether the member at rel (slash-separated, relative to
// its tree's root), a directory if dir, is left out.
func (e *Exclude) Match(rel string, dir bool) bool {
	always, ifDir := e.match(rel)
	return always || dir && ifDir
}

// match reports whether the member at rel is left out whatever its type,
// and whether it is if it is a directory: a caller that finds the first,
// or neither, need not learn the type.
func (e *Exclude) match(rel string) (always, ifDir bool) {
	if e == nil || rel == "" || rel == "." {
		return false, false
	}
	names := strings.Split(rel, "/")
	for _, p := range e.pats {
		if matchComps(p.comps, names) {
			if !p.dirOnly {
				return true, true
			}
			ifDir = true
		}
	}
	return false, ifDir
}

// matchComps matches pattern components against path components, "**"
// matching any number of them (at least one when it ends the pattern).
func matchComps(pat, names []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			if len(pat) == 1 {
				return len(names) > 0
			}
			for i := 0; i <= len(names); i++ {
				if matchComps(pat[1:], names[i:]) {
					return true
				}
			}
			return false
		}
		if len(names) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], names[0]); !ok {
			return false
		}
		pat, names = pat[1:], names[1:]
	}
	return len(names) == 0
}
