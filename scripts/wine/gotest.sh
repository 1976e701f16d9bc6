#!/usr/bin/env bash
# Runs `go test` for Windows under Wine: `scripts/wine/gotest.sh [go test
# flags] packages`. Run setup.sh (make wine-setup) first.
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
. "$here/env.sh"
GO=${GO:-go}

flags=()
overlay=$wine_dir/overlay
if [ -f "$overlay/overlay.json" ]; then
	# The overlay replaces a file of one Go release's standard library.
	if [ "$(cat "$overlay/goversion")" != "$("$GO" env GOVERSION)" ]; then
		echo "gotest.sh: the Wine overlay was made for another Go: run make wine-setup" >&2
		exit 2
	fi
	flags+=("-overlay=$overlay/overlay.json")
fi
PATH=$here:$PATH GOOS=windows GOARCH=amd64 exec "$GO" test "${flags[@]}" "$@"
