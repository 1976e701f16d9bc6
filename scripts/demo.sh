#!/usr/bin/env bash
# tiercache demo: a two-tier cache round trip against a throwaway MinIO.
#
# Needs only Go (and the usual coreutils, tar and diff). It builds
# tiercache, installs MinIO into ./bin if missing, starts it on a free
# loopback port with random credentials and a temporary data directory,
# pushes a sample tree, drops the local tier, pulls the tree back through
# the remote, pulls again as a local hit, prints stats, checks the pulled
# tree equals the source, and stops MinIO. Nothing is left running or on
# disk, whatever happens.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

cd "$(dirname "$0")/.."
repo=$PWD
bin=$repo/bin

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tiercache-demo.XXXXXX")
minio_pid=
cleanup() {
	status=$?
	if [[ -n $minio_pid ]] && kill -0 "$minio_pid" 2>/dev/null; then
		printf '\n==> Stopping MinIO (pid %s)\n' "$minio_pid"
		kill "$minio_pid" 2>/dev/null || true
		wait "$minio_pid" 2>/dev/null || true
	fi
	# The pulled trees may hold read-only directories.
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf "$work"
	if [[ $status -eq 0 ]]; then
		printf '\nDemo finished: all steps succeeded.\n'
	else
		printf '\nDemo FAILED (exit %s).\n' "$status" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Building tiercache into bin/tiercache"
mkdir -p "$bin"
go build -o "$bin/tiercache" ./cmd/tiercache
go build -o "$work/mkbucket" ./scripts/mkbucket
"$bin/tiercache" version

if [[ ! -x $bin/minio ]]; then
	step "Installing MinIO $MINIO_VERSION into bin/ (a few minutes the first time)"
	GOBIN=$bin go install "github.com/minio/minio@$MINIO_VERSION"
fi

# port_free reports whether nothing accepts connections on a loopback port.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

step "Starting MinIO on loopback with random credentials"
export AWS_ACCESS_KEY_ID="demo$(random_hex 8)"
export AWS_SECRET_ACCESS_KEY="$(random_hex 20)"
export AWS_REGION=us-east-1
# Keep any real AWS configuration of this machine out of the demo.
export AWS_CONFIG_FILE=$work/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$work/no-aws-credentials
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
mkdir -p "$work/minio-data"
port=
for _ in 1 2 3 4 5; do
	p=$((20000 + RANDOM % 40000))
	c=$((p + 1))
	port_free "$p" && port_free "$c" || continue
	MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		"$bin/minio" server --quiet --address "127.0.0.1:$p" --console-address "127.0.0.1:$c" \
		"$work/minio-data" >"$work/minio.log" 2>&1 &
	minio_pid=$!
	# Ready when it accepts connections; gone if the port was taken.
	for _ in $(seq 1 300); do
		kill -0 "$minio_pid" 2>/dev/null || break
		port_free "$p" || { port=$p; break; }
		sleep 0.1
	done
	[[ -n $port ]] && break
	kill "$minio_pid" 2>/dev/null || true
	wait "$minio_pid" 2>/dev/null || true
	minio_pid=
done
if [[ -z $port ]]; then
	cat "$work/minio.log" >&2 || true
	die "MinIO did not start"
fi
endpoint=http://127.0.0.1:$port
echo "MinIO pid $minio_pid listening on $endpoint (data in $work/minio-data)"

step "Creating bucket demo-cache"
"$work/mkbucket" -endpoint "$endpoint" -wait 60s demo-cache

# The CLI is configured the way a CI job would be: environment variables.
export TIERCACHE_REMOTE=s3://demo-cache/demo
export TIERCACHE_S3_ENDPOINT=$endpoint
export TIERCACHE_S3_PATH_STYLE=true
export TIERCACHE_DIR=$work/local-tier
unset TIERCACHE_READ_ONLY TIERCACHE_QUIET TIERCACHE_JSON TIERCACHE_VERBOSE
tc() {
	printf '$ tiercache'
	printf ' %q' "$@"
	printf '\n'
	"$bin/tiercache" "$@"
}

step "Making a sample tree: this repository's sources, an 8 MiB random file, a symlink, an empty dir"
sample=$work/sample
mkdir -p "$sample/src"
tar -C "$repo" --exclude=./bin --exclude=./.git -cf - . | tar -C "$sample/src" -xf -
head -c $((8 << 20)) /dev/urandom >"$sample/random.bin"
ln -s src/go.mod "$sample/go.mod.link"
mkdir -p "$sample/empty-dir"
chmod 0755 "$sample/src"
du -sh "$sample"

key="demo-$(date +%s)"

step "Pushing the sample tree under $key (stored locally, uploaded to MinIO)"
tc push "$key" "$sample" --description "tiercache demo"

step "Listing both tiers"
tc ls

step "Dropping the local tier, as on a fresh CI machine"
chmod -R u+w "$TIERCACHE_DIR"
rm -rf "$TIERCACHE_DIR"

step "Pulling with a restore key: $key-next misses, the newest demo-* entry is downloaded from MinIO"
tc pull "$key-next" --restore-key demo- "$work/restored-remote"

step "Pulling again: now a local hit, copied from the local tier"
tc pull "$key" "$work/restored-local"

step "Per-tier statistics"
tc stats

step "Checking the pulled trees equal the source (diff -r)"
diff -r --no-dereference "$sample" "$work/restored-remote"
diff -r --no-dereference "$sample" "$work/restored-local"
echo "no differences"
