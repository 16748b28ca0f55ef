# clockwork: `make` lists the targets.
GO        ?= go
PKGS      ?= ./...
# -p 1: packages one at a time. The end-to-end tests replay real-time workloads; run beside
# runtime/cpu's model tests on 2 cores they starved (TestAzureReplay 93 % instead of >= 97 %).
TESTFLAGS ?= -p 1 -timeout 15m
FUZZTIME  ?= 20s

.DEFAULT_GOAL := help
.PHONY: help deps test test-short lint vet staticcheck fmt-check bench fuzz generate test-gpu build devbin

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install the Debian packages the tests need (apt; root)
	@scripts/deps.sh

build: ## build the static cw binary into ./cw
	CGO_ENABLED=0 $(GO) build -o cw ./cmd/cw

devbin: ## build cw and GPU test binaries into .devbin/ for the GPU machine
	@mkdir -p .devbin
	CGO_ENABLED=0 $(GO) build -o .devbin/cw ./cmd/cw

.PHONY: demo
demo: ## 40 s: 640 models (10 copies of the zoo) on 3 emulated GPUs under an Azure-like trace; prints the table, reports in out/demo
	$(GO) run ./cmd/cw serve -listen 127.0.0.1:0 -workers 3 -models all:10 -workload azure -rate 1000 -duration 40s -out out/demo

test: deps lint ## what CI runs: deps, lint, all tests with the invariants tag
	$(GO) test -tags invariants $(TESTFLAGS) $(PKGS)

test-short: ## tests without deps and lint, -short
	$(GO) test -tags invariants -short $(TESTFLAGS) $(PKGS)

lint: fmt-check vet staticcheck ## gofmt, go vet, staticcheck (pinned in go.mod)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet -tags invariants $(PKGS)

staticcheck:
	$(GO) tool staticcheck -tags invariants $(PKGS)

bench: ## benchmarks (long; compare ratios inside one run)
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

fuzz: ## each fuzz target for FUZZTIME
	@scripts/fuzz.sh $(FUZZTIME)

generate: ## regenerate generated files (installs clang, libbpf-dev, protoc), then fail if they differ from the commit
	scripts/deps.sh scripts/apt-packages.txt scripts/apt-packages-generate.txt
	$(GO) generate ./...
	git diff --exit-code

test-gpu: ## build GPU test binaries into .devbin/ (run them on the GPU machine; see README)
	@scripts/test-gpu.sh
