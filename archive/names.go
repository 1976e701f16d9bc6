package archive

import (
	"fmt"
	"math"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tiercache/tiercache"
)

// MaxNameLength is the longest member name or symlink target, in bytes,
// that Extract accepts (Linux's PATH_MAX). Tar itself allows names up to
// the 1 MiB PAX record limit; nothing legitimate needs that.
const MaxNameLength = 4096

// maxComponent is the longest path component accepted (NAME_MAX).
const maxComponent = 255

// EntryError reports an archive member that Extract refuses. Err is the
// sentinel it wraps: tiercache.ErrUnsafeArchive, tiercache.ErrLimitExceeded
// or tiercache.ErrIntegrity.
type EntryError struct {
	// Name is the member's name as stored in the archive, shortened to at
	// most 256 bytes.
	Name string
	// Reason says what is wrong with it.
	Reason string
	// Err is the sentinel error.
	Err error
	// System is set when only this system's file systems refuse the
	// member (a name Windows cannot hold, names that differ only in
	// case where the file system takes them for one): another system
	// restores the archive, so it is no reason to remove the entry.
	System bool
}

// Error names the member with its control characters escaped, so a hostile
// name cannot forge log lines.
func (e *EntryError) Error() string {
	return fmt.Sprintf("%v: archive member %q: %s", e.Err, e.Name, e.Reason)
}

// Unwrap returns the sentinel error.
func (e *EntryError) Unwrap() error { return e.Err }

// extractErr reports err, a failure of the file system extracting the
// member raw. Its message may quote the member's name or symlink target
// as the system call was given them: escapedError escapes them.
func extractErr(raw string, err error) error {
	return fmt.Errorf("archive: extract %q: %w", displayName(raw), escapedError{err})
}

// escapedError is err with the control characters of its message
// escaped, so that a name an archive chose cannot forge log lines or
// drive a terminal, as EntryError quotes the name. errors.Is and
// errors.As see err.
type escapedError struct{ err error }

func (e escapedError) Error() string {
	msg := e.err.Error()
	if !strings.ContainsFunc(msg, unicode.IsControl) {
		return msg
	}
	var b strings.Builder
	for _, r := range msg {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r) // '\n', '\x1b'
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (e escapedError) Unwrap() error { return e.err }

func displayName(name string) string {
	if len(name) > 256 {
		return name[:256] + "..."
	}
	return name
}

func unsafeEntry(name, format string, args ...any) error {
	return &EntryError{Name: displayName(name), Reason: fmt.Sprintf(format, args...), Err: tiercache.ErrUnsafeArchive}
}

// systemEntry is unsafeEntry for a member only this system's file
// systems refuse (see EntryError.System).
func systemEntry(name, format string, args ...any) error {
	return &EntryError{Name: displayName(name), Reason: fmt.Sprintf(format, args...), Err: tiercache.ErrUnsafeArchive, System: true}
}

func limitEntry(name, format string, args ...any) error {
	return &EntryError{Name: displayName(name), Reason: fmt.Sprintf(format, args...), Err: tiercache.ErrLimitExceeded}
}

// memberName validates a member name (or a hardlink target) and returns it
// cleaned, slash-separated, relative to the destination; "." stands for
// the destination itself and is only valid for a directory. The returned
// reason is empty when the name is acceptable; limit reports whether the
// problem is a size limit rather than an unsafe path.
//
// here applies what this system's file systems cannot hold (Windows:
// reserved device names, backslashes, trailing dots): an extraction
// needs it, an inspection (Inspect) does not. Whether an archive is
// intact does not depend on the system that looks: fsck on Windows
// must not call an entry damaged that Linux restores.
//
// system reports that only this system's rules refuse the name, which
// another system may restore.
func memberName(raw string, isDir, here bool) (clean, reason string, limit, system bool) {
	windowsRules := here && runtime.GOOS == "windows"
	switch {
	case raw == "":
		return "", "empty name", false, false
	case len(raw) > MaxNameLength:
		return "", fmt.Sprintf("name longer than %d bytes", MaxNameLength), true, false
	case strings.IndexByte(raw, 0) >= 0:
		return "", "NUL byte in name", false, false
	case windowsRules && strings.IndexByte(raw, '\\') >= 0:
		// A separator on Windows: "..\x" would climb. On Unix a backslash
		// is an ordinary byte and is kept literally.
		return "", "backslash in name", false, true
	case raw[0] == '/':
		return "", "absolute name", false, false
	}
	s := raw
	if isDir {
		s = strings.TrimRight(s, "/")
	} else if strings.HasSuffix(s, "/") {
		return "", "non-directory name ends in '/'", false, false
	}
	for comp := range strings.SplitSeq(s, "/") {
		if comp == ".." {
			return "", `".." component in name`, false, false
		}
		if len(comp) > maxComponent {
			return "", fmt.Sprintf("name component longer than %d bytes", maxComponent), true, false
		}
		if windowsRules {
			if why := windowsNameProblem(comp); why != "" {
				return "", why, false, true
			}
		}
	}
	clean = path.Clean(s)
	if clean == "." {
		if isDir {
			return ".", "", false, false
		}
		return "", "name refers to the destination directory itself", false, false
	}
	// With ".." components and absolute names refused above, IsLocal
	// adds only Windows' rules (reserved names, volume names).
	if here && !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", "name is not local to the destination", false, windowsRules
	}
	return clean, "", false, false
}

// checkName is memberName turned into an error naming the member, with
// this system's rules when x extracts (see memberName).
func (x *extractor) checkName(raw string, isDir bool) (string, error) {
	clean, reason, limit, system := memberName(raw, isDir, x.root != nil)
	switch {
	case reason == "":
		return clean, nil
	case limit:
		return "", limitEntry(raw, "%s", reason)
	case system:
		return "", systemEntry(raw, "%s", reason)
	default:
		return "", unsafeEntry(raw, "%s", reason)
	}
}

// escapesLexically reports whether a symlink at name with the given target
// points outside the tree on its face: an absolute target, or one whose
// ".." components climb above the destination. It does not see through
// other symlinks; resolvesOutside does.
func escapesLexically(name, target string) bool {
	if strings.HasPrefix(target, "/") || filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
		return true
	}
	j := path.Join(path.Dir(name), target)
	return j == ".." || strings.HasPrefix(j, "../")
}

// foldingNames says whether a destination here may take names that
// differ in letter case, or in Unicode normalization, for one file, as
// the default file systems of macOS (APFS, HFS+) and Windows (NTFS) do.
// It follows the system, not a probe of the destination: a probe sees
// one directory once (Windows and Linux can fold per directory), and
// assuming folding where a volume does not only refuses a few more
// archives under StrictSymlinks. Linux is taken not to fold, as before.
// Tests set it.
var foldingNames = runtime.GOOS == "darwin" || runtime.GOOS == "ios" || runtime.GOOS == "windows"

// linkAliases tells resolvesOutside, on a destination that may fold
// names, which names might be one of the archive's symlinks spelled
// otherwise. ASCII names fold by case alone; telling which non-ASCII
// names are one (NFC and NFD forms, non-ASCII case, the Kelvin sign
// for K) needs Unicode tables this module does not carry, so a
// non-ASCII name, or any name as deep as a non-ASCII symlink's, might be.
// So might a name with an NTFS short-name component ("LONGDI~1" for
// "longdirectory"), which only the volume can expand.
type linkAliases struct {
	folded   map[string]bool // the ASCII symlink names, upper-cased
	nonASCII map[int]bool    // component counts of the other symlink names
}

func newLinkAliases(targets map[string]string) *linkAliases {
	a := &linkAliases{folded: make(map[string]bool, len(targets)), nonASCII: map[int]bool{}}
	for name := range targets {
		if isASCII(name) {
			a.folded[strings.ToUpper(name)] = true
		} else {
			a.nonASCII[strings.Count(name, "/")+1] = true
		}
	}
	return a
}

// mayBe reports whether p, not a symlink's exact name, may still name
// one on the destination; never with a nil a.
func (a *linkAliases) mayBe(p string) bool {
	switch {
	case a == nil:
		return false
	case !isASCII(p) || a.nonASCII[strings.Count(p, "/")+1] || mayBeShortName(p):
		return true
	}
	return a.folded[strings.ToUpper(p)]
}

// mayBeShortName reports whether p has a "~" followed by a digit, as the
// 8.3 short names NTFS gives long names have ("PROGRA~1").
func mayBeShortName(p string) bool {
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '~' && p[i+1] >= '0' && p[i+1] <= '9' {
			return true
		}
	}
	return false
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// maxSymlinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinkHops = 40

// resolvesOutside reports whether the symlink link, resolved the way the
// kernel would through the archive's symlinks (targets: symlink name ->
// target), leaves the tree at some step or loops. Names not in targets are
// taken to be directories or missing, which cannot lead anywhere else.
// With aliases (a destination that may fold names), a name that may be a
// symlink spelled otherwise counts as leaving the tree if a ".." follows
// it.
func resolvesOutside(link string, targets map[string]string, aliases *linkAliases) bool {
	_, halted, escaped := walkTarget(link, targets[link], func(p string, rest []string) (string, bool, bool) {
		if t, ok := targets[p]; ok {
			return t, true, false
		}
		// If p is a symlink after all, a ".." after it climbs from
		// wherever p leads, not from p's parent. Without one, the rest
		// descends from there, which is inside: that symlink passes
		// this check itself.
		return "", false, aliases.mayBe(p) && slices.Contains(rest, "..")
	})
	return halted || escaped
}

// walkTarget follows target (slash-separated) from the directory holding
// the symlink name as the kernel would: each ".." from where the walk has
// led so far, each symlink met replaced by its target. at is called with
// each location reached other than by "..", and the components still to
// walk; it returns the target there if that is a symlink, or halt to end
// the walk. walkTarget returns where the walk ended ("" for the tree's
// root), whether at halted it, and whether it left the tree: by "..", at
// an absolute target (on Windows also one with a volume, "C:", which no
// member name can be), or past maxSymlinkHops symlinks, as the kernel's
// ELOOP.
func walkTarget(name, target string, at func(p string, rest []string) (link string, isLink, halt bool)) (end string, halted, escaped bool) {
	absolute := func(t string) bool {
		return strings.HasPrefix(t, "/") || runtime.GOOS == "windows" && len(t) >= 2 && t[1] == ':'
	}
	if absolute(target) {
		return "", false, true
	}
	var stack []string // the resolved location so far, as components
	if d := path.Dir(name); d != "." {
		stack = strings.Split(d, "/")
	}
	pending := strings.Split(target, "/")
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", false, true
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		p := strings.Join(stack, "/")
		t, isLink, halt := at(p, pending)
		switch {
		case halt:
			return p, true, false
		case !isLink:
			continue
		}
		hops++
		if hops > maxSymlinkHops || absolute(t) {
			return "", false, true
		}
		stack = stack[:len(stack)-1]
		pending = append(strings.Split(t, "/"), pending...)
	}
	return strings.Join(stack, "/"), false, false
}

// windowsNameProblem says why Windows cannot hold comp, a component of a
// member name other than "", "." and "..", under that name; "" when it
// can. Windows would otherwise reinterpret such a name rather than refuse
// it: a reserved device name opens the device, trailing dots and spaces
// are stripped (so "a." would land on "a"), and a colon names an
// alternate data stream of another file.
func windowsNameProblem(comp string) string {
	if comp == "" || comp == "." {
		return ""
	}
	for _, r := range comp {
		switch {
		case r < 0x20:
			return fmt.Sprintf("control character %q in name, which Windows does not allow", r)
		case strings.ContainsRune(`<>:"|?*\`, r):
			return fmt.Sprintf("character %q in name, which Windows does not allow", r)
		}
	}
	if last := comp[len(comp)-1]; last == '.' || last == ' ' {
		return "name component ends in a dot or a space, which Windows strips"
	}
	// A reserved name is reserved with any extension, and Windows
	// ignores spaces before the extension too ("NUL .txt").
	stem, _, _ := strings.Cut(comp, ".")
	stem = strings.TrimRight(stem, " ")
	if isReservedWindowsName(stem) {
		return fmt.Sprintf("%q is a reserved device name on Windows", comp)
	}
	return ""
}

// isReservedWindowsName reports whether stem, a name without extension,
// names a device on Windows: CON, PRN, AUX, NUL, COM1-9 and LPT1-9 (with
// the superscript digits ¹²³ too), CONIN$ and CONOUT$, in any case. With
// an extension they are devices too, except on Windows 11; a tree must
// restore on every Windows, so they are refused there as well.
func isReservedWindowsName(stem string) bool {
	u := strings.ToUpper(stem)
	switch u {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(u) < 4 || u[:3] != "COM" && u[:3] != "LPT" {
		return false
	}
	n := u[3:]
	return len(n) == 1 && n[0] >= '1' && n[0] <= '9' || n == "¹" || n == "²" || n == "³"
}

// nanoRange clamps t to the times an int64 count of nanoseconds since
// 1970 holds (1677 to 2262), which os.Chtimes and Windows' conversions
// go through: beyond them the count wraps, and 2300 would become 1901.
func nanoRange(t time.Time) time.Time {
	lo, hi := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}
