//go:build unix

package local

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tiercache/tiercache"
)

// euid is the effective user ID, a variable so tests can pose as another
// user.
var euid = os.Geteuid

// checkRootOwner refuses a cache root that another user controls (see
// checkOwner): the directory, and the link at root if it is one, since
// its owner could repoint it between two operations.
func checkRootOwner(root string) error {
	lfi, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("cache root: %w", err)
	}
	if err := checkOwner(root, lfi); err != nil || lfi.Mode()&fs.ModeSymlink == 0 {
		return err
	}
	target, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("cache root: %w", err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("cache root: %w", err)
	}
	return checkOwner(target, fi)
}

// checkOwnerOf is checkOwner for the file at path itself (a link is
// not followed).
func checkOwnerOf(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return checkOwner(path, fi)
}

// checkOwner refuses path, described by fi, when a user other than this
// one or the superuser owns it: on a shared machine (a cache dir under
// /tmp that someone made before the first run) its owner could read what
// is cached there and plant entries of their own. Root may use another
// user's directory (a volume mounted from the host into a container),
// unless it lies in a directory anyone can write to, where anyone could
// have made it.
func checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	owner, me := int(st.Uid), euid()
	if owner == me || owner == 0 {
		return nil
	}
	where := ""
	if me == 0 {
		open := openAncestor(filepath.Dir(path))
		if open == "" {
			return nil
		}
		where = ", and lies in " + open + ", which anyone can write to"
	}
	return fmt.Errorf("%w: %s is owned by %s, not by this user (%s)%s: that user could read what is cached there or plant entries; remove it, or use a directory of your own",
		tiercache.ErrInvalidArgument, path, describeUser(owner), describeUser(me), where)
}

// openAncestor returns the first directory, from dir up to the first one
// root owns, that everyone may write to, or "" if there is none.
func openAncestor(dir string) string {
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return dir
	}
	for {
		fi, err := os.Lstat(d)
		if err != nil || fi.Mode().Perm()&0o002 != 0 {
			return d
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid == 0 {
			return ""
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// describeUser names a user for an error: "uid 1000 (alice)".
func describeUser(uid int) string {
	s := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}

// tierOwner returns the user and group to give what this process creates
// in the tier whose root is described by fi: its owner's, when the
// superuser works in another user's tier (a host's cache volume mounted
// into a container). What root made there would stay root's, and the
// tier's owner could then neither take its locks nor evict its entries:
// one root job would break their pulls and prunes for good. ok is false
// otherwise: what this process creates is the tier owner's already.
func tierOwner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, isUnix := fi.Sys().(*syscall.Stat_t)
	if !isUnix || euid() != 0 || st.Uid == 0 {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
