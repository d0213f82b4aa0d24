# agentwatch — the front door. `make help` lists the targets.
GO        ?= go
BIN       := bin
COLLECTOR := $(BIN)/otelcol-agentwatch
CONFIG    ?= config/agentwatch.yaml
# Kernel tests need root; in CI (CI=true) they must run and never skip.
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: help generate generate-check test test-unit bench bench-overhead fuzz lint clients agents

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

generate: ## regenerate the BPF objects (needs clang, llvm, libbpf-dev)
	$(GO) generate ./bpf/...

generate-check: generate ## fail if the committed BPF objects differ from a fresh build
	git diff --exit-code -- bpf/

test: agents ## the whole suite: unit, kernel (root), end-to-end, real agents
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

# The published agent CLIs the real-agent suite (test/realagents) runs, pinned
# and checked against the npm registry's sha512, laid out as `npm install`
# lays them out (node_modules/<pkg>, node_modules/.bin symlinks, each
# launcher's native package where it looks for it), without running any
# install script: Claude Code's postinstall hard-links the native binary
# over bin/claude.exe, done here the same way. Cold: ~200 MiB download once.
AGENTS_DIR := $(CLIENTS_DIR)/agents
# tarball path under the registry, sha512 (hex), dir under node_modules
AGENT_PKGS := \
  @anthropic-ai/claude-code/-/claude-code-2.1.197.tgz,12aaf06d1708ecce72f234256b221f4cc99b649d8e41a2ce73b2b021629daf240274a594105afe0bdacca2f654ba3d80b27762edaa8bba313346daf8ef582772,@anthropic-ai/claude-code \
  @anthropic-ai/claude-code-linux-x64/-/claude-code-linux-x64-2.1.197.tgz,ac894a9ab63440cc8780f457fcc616363d37f6f6f2a480af23d8d57b7aecf57cb64673649724a3c8fc6a87ad9069dce7ce87ed10edb7b98435b4578f710fff6e,@anthropic-ai/claude-code-linux-x64 \
  @google/gemini-cli/-/gemini-cli-0.61.0.tgz,75b43d034a81b4524d8ba5c1907bdf67a033a67e8f3601ff3fc876319ebb44b957f21480563ba9dfd0915aa751c59bfb61722e86b15acadafccb48ca9e4a319d,@google/gemini-cli \
  opencode-linux-x64/-/opencode-linux-x64-1.18.34.tgz,45300c8c2bdee1ebb13f640a2eebd199da16e49e4340ad43899aadfbbb257e2c728c0122efd402d837f6a182a88226da008e08114f2ecde9e825e125de4f9413,opencode-linux-x64 \
  @openai/codex/-/codex-0.171.0.tgz,d48385ccbd9783cead2ddc3a903a371a829b91010d8108bb4c8eab944bcdd77d91ee7812c3b48d3884284dc9cacd2659f247fd37d1b29c2c1e4a86856ea93612,@openai/codex \
  @openai/codex/-/codex-0.171.0-linux-x64.tgz,97ae8d664420764d82de96dc7d42c3cf8db2114079f3531503a23e638dd6a78388a84cbbdc709d999d064e37801d8db272e1f8374d1df55b0baf04f58f1b214f,@openai/codex-linux-x64
AGENTS_STAMP := $(AGENTS_DIR)/.stamp-$(shell echo '$(AGENT_PKGS)' | sha256sum | cut -c1-16)

agents: $(AGENTS_STAMP) ## fetch the pinned agent CLIs the real-agent suite runs (npm registry, cached in CLIENTS_DIR)

$(AGENTS_STAMP):
	@set -e; nm=$(AGENTS_DIR)/node_modules; mkdir -p $$nm/.bin; \
	tmp=$$(mktemp); trap 'rm -f $$tmp' EXIT; \
	for spec in $(AGENT_PKGS); do \
	  url=$${spec%%,*}; rest=$${spec#*,}; sum=$${rest%%,*}; dir=$${rest#*,}; \
	  echo "agents: $$url"; \
	  curl -fsSL --retry 3 -o $$tmp https://registry.npmjs.org/$$url; \
	  echo "$$sum  $$tmp" | sha512sum -c --quiet; \
	  rm -rf $$nm/$$dir; mkdir -p $$nm/$$dir; tar -xzf $$tmp -C $$nm/$$dir --strip-components=1 --no-same-owner; \
	done; \
	ln -f $$nm/@anthropic-ai/claude-code-linux-x64/claude $$nm/@anthropic-ai/claude-code/bin/claude.exe; \
	chmod +x $$nm/@anthropic-ai/claude-code/bin/claude.exe $$nm/@google/gemini-cli/bundle/gemini.js \
	  $$nm/opencode-linux-x64/bin/opencode $$nm/@openai/codex/bin/codex.js; \
	find $$nm/@openai/codex-linux-x64/vendor -type f -path '*/codex/*' -exec chmod +x {} +; \
	ln -sfn ../@anthropic-ai/claude-code/bin/claude.exe $$nm/.bin/claude; \
	ln -sfn ../@google/gemini-cli/bundle/gemini.js $$nm/.bin/gemini; \
	ln -sfn ../opencode-linux-x64/bin/opencode $$nm/.bin/opencode; \
	ln -sfn ../@openai/codex/bin/codex.js $$nm/.bin/codex; \
	rm -f $(AGENTS_DIR)/.stamp-*; touch $@; du -sh $(AGENTS_DIR)

test-unit: ## unit tests only, no privileges needed
	$(GO) test $(TESTFLAGS) -short ./...

bench: ## hot-path benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./...

OVERHEAD_FLAGS ?= -hooks tracepoint -rounds 6
bench-overhead: build ## what the collector costs other processes and sessions: loops and a build, collector stopped vs running (root)
	$(GO) run ./test/overhead -collector $(COLLECTOR) -config config/agentwatch.yaml $(OVERHEAD_FLAGS)

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
