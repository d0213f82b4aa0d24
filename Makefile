# agentwatch — the front door. `make help` lists the targets.
GO        ?= go
BIN       := bin
COLLECTOR := $(BIN)/otelcol-agentwatch
CONFIG    ?= config/agentwatch.yaml
# Kernel tests need root; in CI (CI=true) they must run and never skip.
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: help generate generate-check test test-unit bench fuzz lint clients test-real-clients

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

generate: ## regenerate the BPF objects (needs clang, llvm, libbpf-dev)
	$(GO) generate ./bpf/...

generate-check: generate ## fail if the committed BPF objects differ from a fresh build
	git diff --exit-code -- bpf/

test: ## the whole suite: unit, kernel (root), end-to-end
	$(GO) test $(TESTFLAGS) ./...

# The real TLS clients the tests run, pinned and checked against the npm
# registry's sha512: Bun carries BoringSSL compiled in without symbols, as
# Claude Code's native build and OpenCode do. Tests look in CLIENTS_DIR
# (AGENTWATCH_CLIENTS); without it they skip, and under CI=true they fail.
CLIENTS_DIR ?= $(or $(AGENTWATCH_CLIENTS),$(HOME)/.cache/agentwatch/clients)
export AGENTWATCH_CLIENTS := $(CLIENTS_DIR)
BUN_VERSION := 1.4.5
BUN_SHA512  := 2165fd0442e8187014b4ca2791e49a35a6705f3464fa80f0e8c93e1c115777728760804d06c20646ea4c64f7203680db2692eeea00098c8a0854f66db75689d6
BUN_DIR     := $(CLIENTS_DIR)/node_modules/@oven/bun-linux-x64

clients: ## fetch the pinned real TLS clients the tests run (Bun, from the npm registry)
	@if [ "$$($(BUN_DIR)/bin/bun --version 2>/dev/null)" = "$(BUN_VERSION)" ]; then exit 0; fi; \
	set -e; tmp=$$(mktemp); trap 'rm -f $$tmp' EXIT; \
	curl -fsSL -o $$tmp https://registry.npmjs.org/@oven/bun-linux-x64/-/bun-linux-x64-$(BUN_VERSION).tgz; \
	echo "$(BUN_SHA512)  $$tmp" | sha512sum -c --quiet; \
	rm -rf $(BUN_DIR); mkdir -p $(BUN_DIR); tar -xzf $$tmp -C $(BUN_DIR) --strip-components=1; \
	chmod +x $(BUN_DIR)/bin/bun; echo "Bun $$($(BUN_DIR)/bin/bun --version) in $(BUN_DIR)"

# The published agents whose TLS capture the closing notes report (npm).
REAL_CLIENTS := @anthropic-ai/claude-code@2.1.197 opencode-linux-x64@1.18.34 @google/gemini-cli@0.61.0

test-real-clients: ## run Claude Code native, OpenCode and Gemini CLI against a local API server; check their TLS is captured (root, npm, ~400 MiB)
	npm install --no-save --no-audit --no-fund --prefix $(CLIENTS_DIR)/agents $(REAL_CLIENTS)
	$(GO) test -count=1 -tags realclients -run TestRealClients -v ./receiver/agentsessionreceiver/

test-unit: ## unit tests only, no privileges needed
	$(GO) test $(TESTFLAGS) -short ./...

bench: ## hot-path benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./...

FUZZTIME ?= 10s
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

lint: ## go vet + gofmt
	$(GO) vet ./...
	$(GO) vet -tags realclients ./receiver/agentsessionreceiver/
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

include build.mk
include vm.mk
