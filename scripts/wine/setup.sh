#!/usr/bin/env bash
# Prepares what `make test-windows` needs to run Windows test binaries under
# Wine, in ./bin/_wine. Safe to run again: each step is skipped when done.
#
#  1. Debian's wine64 and the MinGW-w64 C compiler, installed only when
#     missing (as root, or through sudo).
#  2. bcryptprimitives.dll, built from bcryptprimitives.c: Go 1.24+ cannot
#     start without its ProcessPrng, which Wine 8 lacks.
#  3. A Wine prefix, initialised once, with that DLL in its system32.
#  4. A build overlay for the Go toolchain in use: Wine 8 answers the
#     FileDispositionInformationEx that os.RemoveAll tries first with
#     STATUS_NOT_IMPLEMENTED, which Go does not take as "unsupported", so
#     every t.TempDir cleanup would fail with "Invalid function". The
#     overlay adds that status to the ones after which Go falls back to
#     the classic delete. Windows itself never needs it.
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
. "$here/env.sh"
GO=${GO:-go}

need=()
wine_loader >/dev/null || need+=(wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64-win32)
if [ ${#need[@]} -gt 0 ]; then
	if ! command -v apt-get >/dev/null; then
		echo "wine-setup needs ${need[*]} (Debian package names): install them with your package manager" >&2
		exit 1
	fi
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
loader=$(wine_loader)
mkdir -p "$wine_dir"

dll=$wine_dir/bcryptprimitives.dll
if [ ! -f "$dll" ] || [ "$here/bcryptprimitives.c" -nt "$dll" ]; then
	x86_64-w64-mingw32-gcc -O2 -shared -o "$dll.tmp" "$here/bcryptprimitives.c" -ladvapi32
	mv "$dll.tmp" "$dll"
fi

if [ ! -f "$wine_dir/prefix.ok" ]; then
	rm -rf "$WINEPREFIX"
	echo "initialising the Wine prefix in $WINEPREFIX"
	# Its complaints about missing 32-bit parts are expected: kept in a
	# log, shown only if it fails.
	if ! "$loader" wineboot -i >"$wine_dir/wineboot.log" 2>&1; then
		cat "$wine_dir/wineboot.log" >&2
		exit 1
	fi
	# Wait until the prefix's registry is written out.
	server=$(wine_server "$loader") && "$server" -w
	touch "$wine_dir/prefix.ok"
fi
sys32=$WINEPREFIX/drive_c/windows/system32
cmp -s "$dll" "$sys32/bcryptprimitives.dll" || cp "$dll" "$sys32/bcryptprimitives.dll"

goroot=$("$GO" env GOROOT)
src=$goroot/src/internal/syscall/windows/at_windows.go
overlay=$wine_dir/overlay
fallback='case STATUS_INVALID_INFO_CLASS, // the operating system'
if [ -f "$src" ] && grep -q "$fallback" "$src" && ! grep -q 'STATUS_NOT_IMPLEMENTED' "$src"; then
	mkdir -p "$overlay"
	sed "s|^\(\t*\)$fallback|\1case NTStatus(0xC0000002), // STATUS_NOT_IMPLEMENTED: Wine\n\1\tSTATUS_INVALID_INFO_CLASS, // the operating system|" \
		"$src" >"$overlay/at_windows.go"
	printf '{"Replace":{"%s":"%s"}}\n' "$src" "$overlay/at_windows.go" >"$overlay/overlay.json"
	"$GO" env GOVERSION >"$overlay/goversion"
else
	# A Go that already falls back, or whose code changed: nothing to patch.
	rm -rf "$overlay"
	echo "wine-setup: no os.RemoveAll overlay for $("$GO" env GOVERSION); t.TempDir cleanup may fail under Wine" >&2
fi
echo "Wine prefix ready: $WINEPREFIX"
