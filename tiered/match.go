package tiered

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/tiercache/tiercache"
)

// Entries of matched paths, as actions/cache's glob lines and GitLab's
// cache paths make them (**/node_modules in a monorepo): a push stores
// the paths below a root that the patterns match, recording each as its
// name relative to the root (MatchPaths, PushOptions.RecordPaths), and a
// pull restores each recorded path to its place below the root
// (ResolveMatched, PullOptions.Resolve). The directories a pattern
// matches need not exist before the pull, as they must for a pull by
// position. The recorded names are whoever pushed says, so a pull takes
// only names that stay below the root and that its own patterns match.

// CheckPatterns returns an error naming the first of patterns that is
// not a relative glob MatchPaths can use: components split by "/", each
// a path.Match pattern or "**" (any number of components), none empty,
// "." or "..", and no leading "/" or "~".
//
// A pattern starting with "!" is a negation: MatchPaths leaves out what
// it matches (nothing below it is looked at), and ResolveMatched refuses
// an entry recording such a path. At least one pattern must not be one.
func CheckPatterns(patterns []string) error {
	pos, neg := splitNegated(patterns)
	if len(pos) == 0 {
		return fmt.Errorf("%w: no pattern (besides %d starting with !, which only leave out)", tiercache.ErrInvalidArgument, len(neg))
	}
	for _, p := range append(pos, neg...) {
		if p == "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "~") || strings.Contains(p, `\`) {
			return fmt.Errorf("%w: pattern %q: want a relative path pattern with / between names (say **/node_modules)", tiercache.ErrInvalidArgument, p)
		}
		for _, c := range splitPattern(p) {
			if c == "" || c == "." || c == ".." {
				return fmt.Errorf("%w: pattern %q: an empty, . or .. name", tiercache.ErrInvalidArgument, p)
			}
			if _, err := path.Match(c, ""); err != nil {
				return fmt.Errorf("%w: pattern %q: %v", tiercache.ErrInvalidArgument, p, err)
			}
		}
	}
	return nil
}

// splitNegated returns the patterns that match, and those starting with
// "!" that leave out, without their "!".
func splitNegated(patterns []string) (pos, neg []string) {
	for _, p := range patterns {
		if n, ok := strings.CutPrefix(p, "!"); ok {
			neg = append(neg, n)
		} else {
			pos = append(pos, p)
		}
	}
	return pos, neg
}

// splitPattern returns p's components; a trailing "/" means nothing
// more here, since MatchPaths matches files and directories alike.
func splitPattern(p string) []string {
	return strings.Split(strings.TrimSuffix(p, "/"), "/")
}

// globs are patterns split into their components.
type globs [][]string

func newGlobs(patterns []string) globs {
	g := make(globs, len(patterns))
	for i, p := range patterns {
		g[i] = splitPattern(p)
	}
	return g
}

// match reports whether one of g matches the components of name.
func (g globs) match(name []string) bool {
	return slices.ContainsFunc(g, func(pat []string) bool { return matchName(pat, name) })
}

// reachBelow reports whether one of g could match a path below the
// directory whose components are dir.
func (g globs) reachBelow(dir []string) bool {
	return slices.ContainsFunc(g, func(pat []string) bool { return mayMatchBelow(pat, dir) })
}

// matchName reports whether the components pat match all of name's. It
// takes time in proportion to their product, whatever the "**" in pat:
// name may be an entry's recorded path, made to be slow to match.
func matchName(pat, name []string) bool {
	// next[j]: pat[i+1:] matches name[j:]; cur the same for pat[i:].
	next := make([]bool, len(name)+1)
	next[len(name)] = true
	cur := make([]bool, len(name)+1)
	for i := len(pat) - 1; i >= 0; i-- {
		for j := len(name); j >= 0; j-- {
			switch {
			case pat[i] == "**":
				cur[j] = next[j] || (j < len(name) && cur[j+1])
			case j == len(name):
				cur[j] = false
			default:
				ok, _ := path.Match(pat[i], name[j])
				cur[j] = ok && next[j+1]
			}
		}
		next, cur = cur, next
	}
	return next[0]
}

// mayMatchBelow reports whether pat could match a path below the
// directory whose components are dir.
func mayMatchBelow(pat, dir []string) bool {
	for _, d := range dir {
		if len(pat) == 0 {
			return false
		}
		if pat[0] == "**" {
			return true
		}
		if ok, _ := path.Match(pat[0], d); !ok {
			return false
		}
		pat = pat[1:]
	}
	return len(pat) > 0
}

// MatchPaths returns, sorted, the names relative to root ("/" between
// their components) of the files and directories below root that one of
// patterns matches (see CheckPatterns). A matched directory is taken
// whole: nothing below it is matched again, so no name lies inside
// another. Symlinks are neither followed nor matched. An error names
// what could not be read; no match at all is not one. A directory below
// root that this user may not read (a build's root-owned output, say)
// is passed over: the names are returned with an *UnreadableError
// listing it, which a caller may take as a warning.
func MatchPaths(root string, patterns []string) ([]string, error) {
	if err := CheckPatterns(patterns); err != nil {
		return nil, err
	}
	pos, neg := splitNegated(patterns)
	g, left := newGlobs(pos), newGlobs(neg)
	var names []string
	var unreadable UnreadableError
	err := matchWalk(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != root && d != nil && d.IsDir() && errors.Is(err, fs.ErrPermission) {
				rel, _ := filepath.Rel(root, p)
				unreadable.Names = append(unreadable.Names, filepath.ToSlash(rel))
				return filepath.SkipDir
			}
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := strings.Split(filepath.ToSlash(rel), "/")
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if left.match(name) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if g.match(name) {
			names = append(names, filepath.ToSlash(rel))
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() && !g.reachBelow(name) {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("matching %s: %w", root, err)
	}
	slices.Sort(names)
	if len(unreadable.Names) > 0 {
		unreadable.Root = root
		return names, &unreadable
	}
	return names, nil
}

// matchWalk is filepath.WalkDir; tests make it meet unreadable
// directories, which root, who runs them, reads all the same.
var matchWalk = filepath.WalkDir

// UnreadableError lists the directories below Root (as names relative
// to it) that MatchPaths could not read, and so passed over.
type UnreadableError struct {
	Root  string
	Names []string
}

// Error names the first directory that could not be read, and how many
// there were.
func (e *UnreadableError) Error() string {
	more := ""
	if n := len(e.Names); n > 1 {
		more = fmt.Sprintf(" (and %d more directories)", n-1)
	}
	return fmt.Sprintf("matching %s: cannot read %s%s: permission denied", e.Root, e.Names[0], more)
}

// Unwrap says why: fs.ErrPermission.
func (e *UnreadableError) Unwrap() error { return fs.ErrPermission }

// ResolveMatched returns a PullOptions.Resolve that restores an entry's
// recorded paths to their places below root, for an entry MatchPaths
// made. It refuses, naming it, a recorded path that is not a clean
// relative name below root (absolute, "..", "./a", "a//b"), that none of
// patterns matches, that lies inside another or repeats it, or whose
// place below root, or a directory on the way to it, is a symlink or not
// a directory: the entry's paths then go nowhere else than where the
// pull's own patterns say.
func ResolveMatched(root string, patterns []string) func(recorded []string) ([]string, error) {
	pos, neg := splitNegated(patterns)
	g, left := newGlobs(pos), newGlobs(neg)
	return func(recorded []string) ([]string, error) {
		out := make([]string, len(recorded))
		for i, r := range recorded {
			if r == "" || path.Clean(r) != r || r == "." || !filepath.IsLocal(filepath.FromSlash(r)) || !filepath.IsLocal(r) ||
				(filepath.Separator != '/' && strings.ContainsRune(r, filepath.Separator)) {
				return nil, fmt.Errorf("it records the path %q, not a name below the current directory", r)
			}
			name := strings.Split(r, "/")
			if !g.match(name) || left.match(name) {
				return nil, fmt.Errorf("it records the path %q, which no pattern (%s) matches", r, strings.Join(patterns, ", "))
			}
			for _, o := range recorded[:i] {
				if inside(o, r) || inside(r, o) {
					return nil, fmt.Errorf("it records the path %q and %q, one inside the other", o, r)
				}
			}
			if err := noLinkOnTheWay(root, name); err != nil {
				return nil, err
			}
			out[i] = filepath.Join(root, filepath.FromSlash(r))
		}
		return out, nil
	}
}

// inside reports whether the name b is a or lies below it; where file
// systems fold case (Windows, macOS), in any case. (apart checks what the
// file system finds, Unicode forms included, once the paths are placed.)
func inside(a, b string) bool {
	a, b = foldName(a, foldsCase), foldName(b, foldsCase)
	return a == b || strings.HasPrefix(b, a+"/")
}

// foldsCase is whether this system's file systems fold case, as those of
// Windows and macOS do by default: there Beta and beta are one directory.
const foldsCase = runtime.GOOS == "windows" || runtime.GOOS == "darwin"

// foldName is the name s as compared where names fold case (fold; see
// foldsCase): in lower case.
func foldName(s string, fold bool) string {
	if fold {
		return strings.ToLower(s)
	}
	return s
}

// noLinkOnTheWay checks that the directories below root on the way to
// name, and name itself, are not symlinks (nor, on the way, files),
// where they exist: a restore goes below root and nowhere else.
func noLinkOnTheWay(root string, name []string) error {
	p := root
	for i, c := range name {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		last := i == len(name)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%q is a symlink, which a restore of matched paths does not follow", p)
		case !last && !fi.IsDir():
			return fmt.Errorf("%q is not a directory, and the entry holds %q below it", p, path.Join(name...))
		case last && !fi.IsDir() && !fi.Mode().IsRegular():
			// A Windows junction, say, which a restore would go through.
			return fmt.Errorf("%q is neither a directory nor a file", p)
		}
	}
	return nil
}
