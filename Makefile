# Tollgate's entry points for developers and CI (.ci/run calls `make test`).
#
# Targets that need Redis and ClickHouse run under scripts/testenv.sh, which
# installs them from Debian's packages when missing, starts private servers
# on free loopback ports, exports TOLLGATE_TEST_* and stops them afterwards.

GO       ?= go
FUZZTIME ?= 30s
TESTENV  := scripts/testenv.sh
# vtprotobuf compiles go-control-plane's generated marshalling code, which
# the processor's gRPC codec uses for the ext_proc replies (processor/codec.go;
# without the tag they go through protobuf-go, slower, same bytes).
TAGS     := -tags vtprotobuf

.DEFAULT_GOAL := build
.PHONY: build run run-stack test bench fault lint fuzz proto dashboard

build:
	$(GO) build $(TAGS) -o bin/tollgate ./cmd/tollgate

# The processor and local data plane with embedded defaults (in-process store,
# local log file): needs no server.
run:
	$(GO) run $(TAGS) ./cmd/tollgate dev

# The same against real (private, throw-away) Redis and ClickHouse. The single
# quotes keep the variables for the shell inside testenv, where they are set.
run-stack:
	$(TESTENV) -- sh -c 'exec $(GO) run $(TAGS) ./cmd/tollgate dev --redis "$$TOLLGATE_TEST_REDIS" --clickhouse "$$TOLLGATE_TEST_CLICKHOUSE/tollgate"'

# envoy/oldest is a module of its own (go-control-plane pinned to the oldest
# Envoy Tollgate supports), so ./... does not reach it: it runs last.
# Every Benchmark runs once (-benchtime=1x) after its package's tests, in
# the same test binary, so benchmarks keep compiling and working.
test:
	$(TESTENV) -- sh -c '$(GO) test $(TAGS) -race -count=1 -bench . -benchtime=1x -timeout 10m ./... && cd envoy/oldest && $(GO) test -race -count=1 -timeout 2m ./...'

bench:
	$(TESTENV) -- $(GO) run $(TAGS) ./internal/bench

# The fault suite (internal/fault) at scale: thousands of calls at about
# 200 a second per scenario, then a table of sent / answered / rows / lost /
# duplicated (docs/reliability.md). `make test` runs the same scenarios
# with short bursts.
fault:
	$(TESTENV) -- env TOLLGATE_FAULT_SCALE=large $(GO) test $(TAGS) -count=1 -v -timeout 30m -run . ./internal/fault/

# gofmt -l lists files that need formatting and reports syntax errors; either
# fails the target.
lint:
	@out="$$(gofmt -l . 2>&1)"; rc=$$?; \
	if [ $$rc -ne 0 ] || [ -n "$$out" ]; then \
		echo "gofmt: these files need formatting (gofmt -w) or do not parse:"; \
		echo "$$out"; exit 1; \
	fi
	$(GO) vet ./...
	$(GO) vet $(TAGS) ./processor/
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# Each Fuzz target in the tree for FUZZTIME (go test -fuzz takes one target
# of one package at a time).
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# Regenerate proto/tollgate/v1 (installs protoc and protoc-gen-go if missing).
proto:
	proto/generate.sh

# Rebuild dashboard/dist (committed, embedded by the Go package) from the
# TypeScript in dashboard/web. Needs Node.js and npm, which nothing else
# does: build, run and test use the committed dist.
dashboard:
	cd dashboard/web && npm ci --no-audit --no-fund && npm run build
