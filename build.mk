# Distribution targets: the collector binary and its component list.
# Included from the Makefile; the defaults below only matter when this file
# is used on its own (make -f build.mk).
#
# The root package main (main.go, main_others.go, main_windows.go,
# components.go) is what ocb generates from builder-config.yaml. ocb runs
# with --skip-get-modules --skip-compilation: it only writes those four
# files, and the one module of the repository builds them, so the
# distribution and its components share one go.mod.

GO        ?= go
BIN       ?= bin
COLLECTOR ?= $(BIN)/otelcol-agentwatch
CONFIG    ?= config/agentwatch.yaml

ROOT_MODULE    := github.com/agentwatch/agentwatch
OCB            := $(GO) tool builder
OCB_MANIFEST   := builder-config.yaml
# Must match dist.output_path of $(OCB_MANIFEST). ocb creates only the last
# path element, so the parent is made here. The leading underscore keeps
# the scratch copy of package main out of `go test ./...` and `go vet ./...`.
OCB_OUT        := build/_ocb
OCB_GENERATED  := main.go main_others.go main_windows.go components.go

# The contrib datadog exporter needs Go >= 1.26.9; the machines have 1.26.8,
# so that build alone runs under a newer toolchain fetched by the go command.
DATADOG_MANIFEST  := builder-config-datadog.yaml
DATADOG_OUT       := build/datadog
DATADOG_TOOLCHAIN ?= go1.27.3
DATADOG_COLLECTOR := $(BIN)/otelcol-agentwatch-datadog

.PHONY: build run components components-check components-gen build-datadog

build: ## build bin/otelcol-agentwatch from the root module
	$(GO) build -trimpath -o $(COLLECTOR) .

run: build ## build, then run the collector with CONFIG (needs BPF privileges: root or the capabilities of deploy/systemd)
	$(COLLECTOR) --config $(CONFIG)

# ocb's output is not gofmt-clean; formatting it here keeps `make lint`
# and the drift check meaningful.
components-gen:
	@rm -rf $(OCB_OUT) && mkdir -p $(dir $(OCB_OUT))
	$(OCB) --config $(OCB_MANIFEST) --skip-compilation --skip-get-modules
	gofmt -w $(addprefix $(OCB_OUT)/,$(OCB_GENERATED))

components: components-gen ## regenerate the root package main from builder-config.yaml
	cp $(addprefix $(OCB_OUT)/,$(OCB_GENERATED)) .

components-check: components-gen ## fail if main*.go / components.go or go.mod's versions drifted from builder-config.yaml
	@status=0; for f in $(OCB_GENERATED); do \
	  if ! diff -u $$f $(OCB_OUT)/$$f; then status=1; fi; \
	done; \
	if [ $$status -ne 0 ]; then echo "components drift: run 'make components' and commit the result"; fi; \
	exit $$status
	@# With --skip-get-modules ocb checks no versions: go.mod must require
	@# each module at the version the manifest names (and components.go
	@# reports), or the binary is not what the manifest says.
	@sed -n 's/^ *- gomod: *//p' $(OCB_MANIFEST) | while read -r mod ver; do \
	  [ "$$mod" = "$(ROOT_MODULE)" ] && continue; \
	  have=$$($(GO) list -m -f '{{.Version}}' "$$mod" 2>/dev/null); \
	  if [ "$$have" != "$$ver" ]; then \
	    echo "$$mod: $(OCB_MANIFEST) says $$ver, go.mod has $${have:-nothing}"; exit 1; \
	  fi; \
	done

build-datadog: ## build bin/otelcol-agentwatch-datadog (adds the contrib datadog exporter + connector; slow)
	@rm -rf $(DATADOG_OUT) && mkdir -p $(dir $(DATADOG_OUT)) $(BIN)
	GOTOOLCHAIN=$(DATADOG_TOOLCHAIN) $(OCB) --config $(DATADOG_MANIFEST)
	cp $(DATADOG_OUT)/otelcol-agentwatch-datadog $(DATADOG_COLLECTOR)
