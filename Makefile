# tiercache build, test, demo and benchmark entry points.
# Tools (MinIO, versitygw, mc, staticcheck, GoReleaser) are pinned and installed into ./bin.

GO      ?= go
BIN     := $(CURDIR)/bin
MINIO_VERSION       := v0.0.0-20260212201848-7aac2a2c5b7c
VERSITYGW_VERSION   := v1.8.0
MC_VERSION          := v0.0.0-20250313080218-cf909e1063a9
STATICCHECK_VERSION := v0.8.2
GORELEASER_VERSION  := v2.17.0
# Fuzz targets run by `make test`: package:Target:executions. The budget is a
# count, not a duration: Go 1.26's fuzzer can fail a run whose -fuzztime
# deadline expires while a starved worker is mid-input (go.dev/issue/75804).
# Each count is a few seconds on an idle 2-core machine; a loaded one
# only takes longer. FUZZTIME overrides them
# all (a count such as 5000x, or a duration).
FUZZ_TARGETS := ./archive:FuzzExtract:3000x ./archive:FuzzTarStream:3000x ./archive:FuzzParseIndex:10000x ./archive:FuzzFrameSource:2000x ./remote/s3:FuzzKeyEncoding:30000x ./remote/s3:FuzzParseManifest:30000x
FUZZTIME ?=

export TIERCACHE_MINIO_BIN := $(BIN)/minio
export TIERCACHE_VERSITYGW_BIN := $(BIN)/versitygw

# What `make cross` builds the CLI for and vets every package on, as
# GOOS/GOARCH.
CROSS_PLATFORMS := darwin/arm64 darwin/amd64 freebsd/amd64 windows/amd64 windows/arm64

# The packages whose code the tiercache_portable tag changes (fsutil,
# treecopy, archive, local) and the two that drive them. The e2e tests
# build their own binary, without the tag; the other packages do not see it.
PORTABLE_PKGS := ./internal/fsutil ./internal/treecopy ./archive ./local ./tiered ./cmd/tiercache

.PHONY: all build test unit cross portable lint fmt-check vet staticcheck fuzz minio versitygw mc demo bench bench-tools clean
.PHONY: goreleaser release-snapshot
.PHONY: wine-setup test-windows test-action node crossos-fixtures test-unprivileged

all: build

build:
	$(GO) build -o $(BIN)/tiercache ./cmd/tiercache

# make test runs the Windows tests where Wine can be had: on Linux (from
# Debian's packages, see scripts/wine/setup.sh).
TEST_WINDOWS := $(if $(filter Linux,$(shell uname -s)),test-windows)

## test: everything CI runs: lint, cross-builds, the portable code's tests, unit + conformance + e2e
## tests against a real MinIO (remote/s3's against versitygw too), the GitHub Action's tests,
## bounded fuzzing, on Linux the Windows tests under Wine, and a snapshot of the release.
## Run as root, it also runs the file-writing packages' tests as nobody (test-unprivileged).
test: lint cross portable minio versitygw unit test-unprivileged test-action fuzz $(TEST_WINDOWS) release-snapshot

unit: minio versitygw
	$(GO) test -count=1 -timeout 20m ./...

# The Action runs on Node 24 (action.yml's runs.using), so its tests do
# too: npm's prebuilt Node for this platform, pinned and installed into
# ./bin. NODE=node runs them on the node on PATH instead.
NODE_VERSION := 24.22.3
NODE_PKG := node-$(shell uname -s | tr A-Z a-z)-$(subst x86_64,x64,$(subst aarch64,arm64,$(shell uname -m)))
NODE_DIR := $(BIN)/node-$(NODE_VERSION)
NODE ?= $(NODE_DIR)/node_modules/$(NODE_PKG)/bin/node

## test-action: the GitHub Action's tests (Node's built-in runner, on Node 24): its main and
## post steps run against a real MinIO and the CLI built here, and the release download
## checked against a local release host.
test-action: build minio node
	TIERCACHE_TEST_BIN=$(BIN)/tiercache $(NODE) --test action/test/*.test.js

## node: install the pinned Node that test-action runs (unless NODE names another).
node:
	@case "$(NODE)" in $(NODE_DIR)/*) [ -x "$(NODE)" ] || npm install --prefix $(NODE_DIR) --no-save --no-audit --no-fund --loglevel=error $(NODE_PKG)@$(NODE_VERSION);; esac
	@$(NODE) --version

## cross: build the CLI for, and vet every package on, each of CROSS_PLATFORMS. The builds
## use the release's settings (.goreleaser.yaml), so release-snapshot finds them compiled.
cross:
	@set -e; for p in $(CROSS_PLATFORMS); do \
		echo "cross $$p: build ./cmd/tiercache, vet ./..."; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -o /dev/null ./cmd/tiercache; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./...; \
	done

## portable: vet, staticcheck and run the unit tests of the code macOS and FreeBSD use, forced on Linux by the tiercache_portable tag.
## Some of them (cmd/tiercache's) run against MinIO, hence its install first.
portable: $(BIN)/staticcheck minio
	$(GO) vet -tags tiercache_portable ./...
	$(BIN)/staticcheck -tags tiercache_portable ./...
	$(GO) test -count=1 -timeout 20m -tags tiercache_portable $(PORTABLE_PKGS)

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
		n=$${FUZZTIME:-$$n}; \
		echo "fuzz $$name in $$pkg for $$n"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$$n $$pkg; \
	done

## minio: install the pinned MinIO server into ./bin (about 5 minutes the first time).
minio: $(BIN)/minio

$(BIN)/minio:
	GOBIN=$(BIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

## versitygw: install the pinned versitygw S3 gateway into ./bin, a second S3 server for
## remote/s3's tests (about 3 minutes the first time on 2 cores).
versitygw: $(BIN)/versitygw

$(BIN)/versitygw:
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

## mc: install the pinned MinIO client (the benchmark baseline) into ./bin.
mc: $(BIN)/mc

$(BIN)/mc:
	GOBIN=$(BIN) $(GO) install github.com/minio/mc@$(MC_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## goreleaser: install the pinned GoReleaser into ./bin (about 10 minutes the first time on 2 cores).
goreleaser: $(BIN)/goreleaser

$(BIN)/goreleaser:
	GOBIN=$(BIN) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

# The archives a release must hold, as GOOS_GOARCH (the names the GitHub
# Action and the README's install lines download).
RELEASE_TARGETS := linux_amd64 linux_arm64 darwin_amd64 darwin_arm64 windows_amd64 windows_arm64

## release-snapshot: build the release (.goreleaser.yaml) into ./dist without publishing it,
## then check it: every archive and the checksums file exist, the checksums match, each
## archive has the binary at its root, and this machine's binary prints the stamped version.
# The snapshot's version is read back from dist/metadata.json: it is
# 0.0.1-snapshot+<commit> before the first tag, <next patch>-snapshot+<commit>
# after one, and +none where git has no remote to describe.
release-snapshot: $(BIN)/goreleaser
	$(BIN)/goreleaser release --snapshot --clean
	@set -e; cd dist; \
	v=$$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' metadata.json); \
	if [ -z "$$v" ]; then echo "release-snapshot: no version in dist/metadata.json" >&2; exit 1; fi; \
	sums=tiercache_$${v}_checksums.txt; \
	if [ ! -f "$$sums" ]; then echo "release-snapshot: $$sums missing" >&2; exit 1; fi; \
	for t in $(RELEASE_TARGETS); do \
		case $$t in windows_*) a=tiercache_$${v}_$$t.zip; b=tiercache.exe;; *) a=tiercache_$${v}_$$t.tar.gz; b=tiercache;; esac; \
		if [ ! -f "$$a" ]; then echo "release-snapshot: $$a missing" >&2; exit 1; fi; \
		if ! grep -q "  $$a\$$" "$$sums"; then echo "release-snapshot: $$a not in $$sums" >&2; exit 1; fi; \
		case $$a in \
		*.zip) if command -v unzip >/dev/null 2>&1; then unzip -Z1 "$$a" | grep -qx "$$b" || { echo "release-snapshot: $$b not at the root of $$a" >&2; exit 1; }; fi;; \
		*) tar -tzf "$$a" | grep -qx "$$b" || { echo "release-snapshot: $$b not at the root of $$a" >&2; exit 1; };; \
		esac; \
	done; \
	n=$$(wc -l < "$$sums"); \
	if [ "$$n" -ne $(words $(RELEASE_TARGETS)) ]; then echo "release-snapshot: $$sums lists $$n files, want $(words $(RELEASE_TARGETS))" >&2; exit 1; fi; \
	if command -v sha256sum >/dev/null 2>&1; then sha256sum -c "$$sums"; else shasum -a 256 -c "$$sums"; fi; \
	host=$$($(GO) env GOOS)_$$($(GO) env GOARCH); \
	case " $(RELEASE_TARGETS) " in *" $$host "*) ;; *) echo "release-snapshot: no archive runs on $$host; not running one"; exit 0;; esac; \
	case $$host in windows_*) echo "release-snapshot: not running the Windows binary"; exit 0;; esac; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	tar -xzf tiercache_$${v}_$$host.tar.gz -C "$$tmp" tiercache; \
	out=$$("$$tmp/tiercache" version); echo "$$out"; \
	case "$$out" in "tiercache v$$v ("*) ;; *) echo "release-snapshot: $$host binary says '$$out', want 'tiercache v$$v (...)'" >&2; exit 1;; esac; \
	echo "release-snapshot: ok, v$$v, $(words $(RELEASE_TARGETS)) archives in dist/"

## demo: build, start MinIO on loopback, push, drop the local tier, pull twice, stats, stop.
demo: build minio
	./scripts/demo.sh

# Flags for `make bench`, e.g. BENCH_FLAGS="--trees generated --size 100MB --skip-100k"
# (`go run ./bench -h` lists them).
BENCH_FLAGS ?=

## bench: tiercache against tar | zstd | mc and cp -a, on a generated 400 MB
## module-cache-like tree, then on Go's source tree (go env GOROOT, never modified), with
## MinIO on loopback, and the restores at GOMAXPROCS=1 beside the default; see BENCHMARKS.md.
# The baselines' zstd, and GNU time for exact peak RSS, from the
# distribution when missing (Debian/Ubuntu; as root, or through sudo).
bench-tools:
	@if ! command -v zstd >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then \
		if command -v apt-get >/dev/null 2>&1; then \
			sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
			$$sudo apt-get update -qq && $$sudo apt-get install -y -qq zstd time; \
		else \
			echo "make bench needs zstd and GNU time: install them with your package manager" >&2; exit 1; \
		fi; \
	fi

bench: build mc minio bench-tools
	$(GO) run ./bench $(BENCH_FLAGS)

# Packages whose tests run for Windows under Wine. Of the rest, e2e,
# remote/s3 and internal/miniotest need MinIO, which the tests cannot
# start from inside Wine.
WINDOWS_PKGS ?= . ./policy ./internal/flock ./internal/fsutil ./internal/treecopy ./archive ./local ./tiered ./cmd/tiercache ./remote ./remote/memstore ./tiertest

## wine-setup: install Wine and MinGW-w64 when missing (Debian), and prepare a Wine prefix in ./bin/_wine.
wine-setup:
	GO=$(GO) ./scripts/wine/setup.sh

## crossos-fixtures: write archive/testdata/crossos/{linux,windows}.tar.zst again, the archives
## Linux and Windows (under Wine) make of one tree, which each OS's tests restore.
crossos-fixtures: wine-setup
	TIERCACHE_UPDATE_CROSSOS=1 $(GO) test -count=1 -run TestCrossOSFixtures ./archive
	TIERCACHE_UPDATE_CROSSOS=1 GO=$(GO) ./scripts/wine/gotest.sh -count=1 -run TestCrossOSFixtures ./archive

# Tests test-windows leaves out, the slowest under Wine (a third of its
# time), which no Windows code changes: the cost of implicit directories
# and of long names, decoders, writers and index bytes agreeing at every
# concurrency, and the conformance suite again through a scope. They run
# on Linux, with and without the portable tag.
WINDOWS_SKIP := ^(TestSecurityImplicitDirsCostLinear|TestNamesMemoryLinear|TestExtractDecodersAgree|TestExtractWritersAgree|TestIndexSameBytesAnyConcurrency|TestConformanceScoped)$$

# When make test runs as root (as CI does), the packages that write trees
# run their tests again as an ordinary user: root writes read-only files and
# directories, so permission bugs pass a suite run as root.
UNPRIVILEGED_PKGS := ./archive ./internal/treecopy ./local ./tiered ./cmd/tiercache

## test-unprivileged: as root, run UNPRIVILEGED_PKGS' tests again as the user nobody
## (USER_TO_RUN_AS=someone for another), and the portable code's in treecopy, local and
## tiered; as anyone else, nothing (the tests ran as them).
test-unprivileged: minio versitygw
	GO=$(GO) ./scripts/unprivileged.sh $(UNPRIVILEGED_PKGS)
	GO=$(GO) GOFLAGS=-tags=tiercache_portable ./scripts/unprivileged.sh ./internal/treecopy ./local ./tiered

## test-windows: run WINDOWS_PKGS' tests as Windows binaries under Wine (but WINDOWS_SKIP).
test-windows: wine-setup
	GO=$(GO) ./scripts/wine/gotest.sh -count=1 -skip '$(WINDOWS_SKIP)' $(WINDOWS_PKGS)

clean:
	rm -rf $(BIN)
