# tiercache build, test, demo and benchmark entry points.
# Tools (MinIO, mc, staticcheck) are pinned and installed into ./bin.

GO      ?= go
BIN     := $(CURDIR)/bin
MINIO_VERSION       := v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION          := v0.0.0-20250313080218-cf909e1063a9
STATICCHECK_VERSION := v0.8.2
# Fuzz targets run by `make test`: package:Target:executions. The budget is a
# count, not a duration: Go 1.26's fuzzer can fail a run whose -fuzztime
# deadline expires while a starved worker is mid-input (go.dev/issue/75804).
# Each count is a few seconds on an idle 2-core machine; a loaded one
# only takes longer. FUZZTIME overrides them
# all (a count such as 5000x, or a duration).
FUZZ_TARGETS := ./archive:FuzzExtract:3000x ./archive:FuzzTarStream:3000x ./remote/s3:FuzzKeyEncoding:30000x ./remote/s3:FuzzParseManifest:30000x
FUZZTIME ?=

export TIERCACHE_MINIO_BIN := $(BIN)/minio

# What `make cross` builds the CLI for and vets every package on, as
# GOOS/GOARCH.
CROSS_PLATFORMS := darwin/arm64 darwin/amd64 freebsd/amd64 windows/amd64 windows/arm64

# The packages whose code the tiercache_portable tag changes (fsutil,
# treecopy, archive, local) and the two that drive them. The e2e tests
# build their own binary, without the tag; the other packages do not see it.
PORTABLE_PKGS := ./internal/fsutil ./internal/treecopy ./archive ./local ./tiered ./cmd/tiercache

.PHONY: all build test unit cross portable lint fmt-check vet staticcheck fuzz minio mc demo bench bench-tools clean
.PHONY: wine-setup test-windows

all: build

build:
	$(GO) build -o $(BIN)/tiercache ./cmd/tiercache

# make test runs the Windows tests where Wine can be had: on Linux (from
# Debian's packages, see scripts/wine/setup.sh).
TEST_WINDOWS := $(if $(filter Linux,$(shell uname -s)),test-windows)

## test: everything CI runs: lint, cross-builds, the portable code's tests, unit + conformance + e2e
## tests against a real MinIO, bounded fuzzing, and on Linux the Windows tests under Wine.
test: lint cross portable minio unit fuzz $(TEST_WINDOWS)

unit: minio
	$(GO) test -count=1 -timeout 20m ./...

## cross: build the CLI for, and vet every package on, each of CROSS_PLATFORMS.
cross:
	@set -e; for p in $(CROSS_PLATFORMS); do \
		echo "cross $$p: build ./cmd/tiercache, vet ./..."; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./cmd/tiercache; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./...; \
	done

## portable: vet, staticcheck and run the unit tests of the code macOS and FreeBSD use, forced on Linux by the tiercache_portable tag.
portable: $(BIN)/staticcheck
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

## mc: install the pinned MinIO client (the benchmark baseline) into ./bin.
mc: $(BIN)/mc

$(BIN)/mc:
	GOBIN=$(BIN) $(GO) install github.com/minio/mc@$(MC_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## demo: build, start MinIO on loopback, push, drop the local tier, pull twice, stats, stop.
demo: build minio
	./scripts/demo.sh

# Flags for `make bench`, e.g. BENCH_FLAGS="--size 100MB --skip-100k"
# (`go run ./bench -h` lists them).
BENCH_FLAGS ?=

## bench: tiercache against tar | zstd | mc and cp -a, on a generated 400 MB
## module-cache-like tree and MinIO on loopback (about 10 minutes); see BENCHMARKS.md.
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

## test-windows: run WINDOWS_PKGS' tests as Windows binaries under Wine.
test-windows: wine-setup
	GO=$(GO) ./scripts/wine/gotest.sh -count=1 $(WINDOWS_PKGS)

clean:
	rm -rf $(BIN)
