# Sourced by the scripts beside it: where the Wine prefix lives, how quiet
# Wine is, and how to find its 64-bit loader, which Debian does not put on
# PATH.

wine_repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
# The leading _ keeps the prefix, and whatever tests leave in it, out of
# the go tool's ./... patterns: bin/ is inside the module.
wine_dir=$wine_repo/bin/_wine
export WINEPREFIX=$wine_dir/prefix
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono or Gecko: the tests need neither, and a prefix without them
# would otherwise offer to download them.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}

# wine_loader prints the 64-bit loader's path: $WINELOADER, wine64 on
# PATH, or where the wine64 package installed it. The generic `wine`
# launcher is not used: it prefers a 32-bit loader when one is installed.
wine_loader() {
	if [ -n "${WINELOADER:-}" ]; then
		echo "$WINELOADER"
		return
	fi
	if command -v wine64 2>/dev/null; then
		return
	fi
	local p
	for p in $(dpkg -L wine64 2>/dev/null); do
		case $p in */wine64) [ -x "$p" ] && [ ! -d "$p" ] && echo "$p" && return ;; esac
	done
	return 1
}

# wine_server prints the path of the wineserver that goes with loader $1.
wine_server() {
	local d
	d=$(dirname "$1")
	if [ -x "$d/wineserver64" ]; then
		echo "$d/wineserver64"
	elif [ -x "$d/wineserver" ]; then
		echo "$d/wineserver"
	else
		command -v wineserver
	fi
}
