#!/bin/sh
# Runs the tests of the given packages as an ordinary user, when this
# script runs as root (as CI does). Root reads and writes read-only files
# and directories, so a test suite run as root passes code that fails for
# every other user on a Go module cache or a read-only tree.
#
# Usage: scripts/unprivileged.sh PKG...   (GO, USER_TO_RUN_AS may be set)
#
# Each package's tests are built as root, then run as USER_TO_RUN_AS
# (default nobody) with their own HOME and TMPDIR, from a copy of the
# package's testdata. Not root: there is nothing to add, the tests already
# ran as this user. Root without runuser or the user: fail under CI, where
# a test that cannot run must not pass, and say so elsewhere.
set -eu

GO=${GO:-go}
who=${USER_TO_RUN_AS:-nobody}

if [ "$(id -u)" != 0 ]; then
	echo "unprivileged: running as $(id -un) already; the tests ran as an ordinary user"
	exit 0
fi
if ! command -v runuser >/dev/null 2>&1 || ! id "$who" >/dev/null 2>&1; then
	echo "unprivileged: need runuser and a user named $who to run tests as someone other than root" >&2
	if [ -n "${CI:-}" ]; then
		exit 1
	fi
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tiercache-unprivileged.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -m 0755 "$work/bin" "$work/pkg"
mkdir -m 0777 "$work/home" "$work/tmp"
# A directory of root's that anyone may write into, as a container's root
# makes a shared one: the user cannot give one of theirs away.
mkdir -m 0777 "$work/tmp/shared"
# One of the user's in a directory of root's that the user may not write.
mkdir -m 0755 "$work/locked" "$work/locked/dir"
chown "$who" "$work/locked/dir"

# The servers the tests start, where the user can run them (a clone in
# root's home is not).
for v in TIERCACHE_MINIO_BIN TIERCACHE_VERSITYGW_BIN; do
	eval "src=\${$v:-}"
	if [ -n "$src" ] && [ -x "$src" ]; then
		cp "$src" "$work/bin/$(basename "$src")"
		export "$v=$work/bin/$(basename "$src")"
	fi
done

status=0
for pkg in "$@"; do
	name=$(echo "$pkg" | sed 's|^\./||; s|/|_|g')
	"$GO" test -c -o "$work/bin/$name.test" "$pkg"
	# The tests open testdata relative to their package directory, which
	# the user may not be able to read (a clone in root's home).
	dir="$work/pkg/$name"
	mkdir -m 0755 "$dir"
	if [ -d "$pkg/testdata" ]; then
		cp -R "$pkg/testdata" "$dir/"
		chmod -R a+rX "$dir"
	fi
	echo "unprivileged: $pkg as $who${GOFLAGS:+ ($GOFLAGS)}"
	if ! (cd "$dir" && runuser -u "$who" -- env HOME="$work/home" TMPDIR="$work/tmp" TIERCACHE_TEST_SHARED_DIR="$work/tmp/shared" TIERCACHE_TEST_LOCKED_DIR="$work/locked/dir" \
		"$work/bin/$name.test" -test.count=1 -test.timeout=15m); then
		echo "FAIL	$pkg (as $who)"
		status=1
	fi
done
exit $status
