# Luthien Gateway. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Tools are pinned in tools/go.mod (a workspace module) and run through `go tool`.
TOOL := go tool
MODULES := gen migrations controlplane gateway
BIN := $(CURDIR)/bin
BENCH_DURATION ?= 3s
BENCH_PGHOST ?= 127.0.0.1
BENCH_DB ?= luthien_bench
SOAK_DURATION ?= 5m
# The browser tests' Chromium (gateway/e2e reads $CHROMIUM too).
CHROMIUM ?= /usr/bin/chromium

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: generate
generate: ## Format and lint the protos, regenerate gen/
	$(TOOL) buf format -w
	$(TOOL) buf lint
	rm -rf gen/luthien gen/openapiv2
	$(TOOL) buf generate

.PHONY: check-generate
check-generate: ## Fail if regenerating changes anything committed under gen/
	$(TOOL) buf format --diff --exit-code
	$(TOOL) buf lint
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(TOOL) buf generate -o "$$tmp"; \
	diff -r "$$tmp/gen/luthien" gen/luthien && diff -r "$$tmp/gen/openapiv2" gen/openapiv2 \
	  || { echo "gen/ is stale: run make generate" >&2; exit 1; }

.PHONY: build
build: ## Build bin/gateway and bin/controlplane
	cd gateway && go build -o $(BIN)/gateway ./cmd/gateway
	cd controlplane && go build -o $(BIN)/controlplane ./cmd/controlplane

.PHONY: run
run: ## Run the gateway with the in-process control plane on embedded defaults
	cd gateway && go run ./cmd/gateway

.PHONY: lint
lint: ## gofmt, go vet and staticcheck over every module
	@unformatted=$$(gofmt -l $(MODULES)); if [ -n "$$unformatted" ]; then echo "gofmt needed:" $$unformatted >&2; exit 1; fi
	@for m in $(MODULES); do (cd $$m && echo "lint $$m" && go vet ./... && $(TOOL) staticcheck ./...); done

.PHONY: test
test: browser check-generate lint ## Everything CI checks (installs Chromium for the browser tests when missing): generated code, lint, race tests of every module
	@for m in $(MODULES); do (cd $$m && echo "test $$m" && go test -race -count=1 ./...); done

.PHONY: browser
browser: ## Install Chromium for the browser tests (Debian's chromium package) unless $(CHROMIUM) exists
	@if [ -x "$(CHROMIUM)" ]; then echo "chromium: $(CHROMIUM)"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	  [ -x "$(CHROMIUM)" ] || { echo "chromium was installed, but $(CHROMIUM) is missing: set CHROMIUM to its path" >&2; exit 1; }; \
	else \
	  echo "Chromium is missing at $(CHROMIUM), and this is not a Debian/Ubuntu system run as root, so it cannot be installed here." >&2; \
	  echo "Install Chromium (Debian: apt-get install chromium) and set CHROMIUM=/path/to/chromium if it is not $(CHROMIUM)." >&2; \
	  echo "Without it the browser tests skip locally and fail in CI (CI=true)." >&2; \
	  exit 1; \
	fi

.PHONY: bench
bench: ## Load benchmark: direct, floor proxy and gateway modes side by side (~5 min); writes bin/bench.{md,json}
	@mkdir -p $(BIN)
	@db=""; if pg_isready -q -h $(BENCH_PGHOST) 2>/dev/null; then \
	  psql -q -h $(BENCH_PGHOST) -U postgres -c 'DROP DATABASE IF EXISTS $(BENCH_DB)' -c 'CREATE DATABASE $(BENCH_DB)' && \
	  db="postgres://postgres@$(BENCH_PGHOST):5432/$(BENCH_DB)?sslmode=disable"; \
	else echo "no PostgreSQL on $(BENCH_PGHOST): gateway-postgres is skipped"; fi; \
	cd gateway && go run ./cmd/bench -duration $(BENCH_DURATION) -database-url "$$db" -out-json $(BIN)/bench.json -out-md $(BIN)/bench.md

.PHONY: soak
soak: ## Soak test: mixed calls, aborts, slow readers and 10 MiB bodies for SOAK_DURATION (default 5m); checks for leaks and lost records
	cd gateway && LUTHIEN_SOAK_DURATION=$(SOAK_DURATION) go test -count=1 -run '^TestSoak$$' -timeout 0 -v ./e2e

.PHONY: bench-smoke
bench-smoke: ## A few seconds of every benchmark phase, to check the harness works (figures not meaningful)
	cd gateway && go run ./cmd/bench -smoke

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES) tools; do (cd $$m && GOWORK=off go mod tidy); done
