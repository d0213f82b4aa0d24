# agentwatch — the front door. `make help` lists the targets.
GO        ?= go
BIN       := bin
COLLECTOR := $(BIN)/otelcol-agentwatch
CONFIG    ?= config/agentwatch.yaml
# Kernel tests need root; in CI (CI=true) they must run and never skip.
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: help generate generate-check test test-unit bench fuzz lint

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

generate: ## regenerate the BPF objects (needs clang, llvm, libbpf-dev)
	$(GO) generate ./bpf/...

generate-check: generate ## fail if the committed BPF objects differ from a fresh build
	git diff --exit-code -- bpf/

test: ## the whole suite: unit, kernel (root), end-to-end
	$(GO) test $(TESTFLAGS) ./...

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
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

include build.mk
include vm.mk
