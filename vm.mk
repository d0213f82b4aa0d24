# VM test targets: Go tests that need BPF LSM run in a QEMU guest (TCG)
# booting Debian's cloud kernel, because LSM programs do not load on the
# dev and CI hosts (EPERM). Included from the Makefile; works alone too
# (make -f vm.mk test-vm).
#
# The runner is internal/vmtest/cmd/vmtest. It installs qemu-system-x86 and
# busybox-static with apt if missing, downloads the kernel package named by
# linux-image-cloud-amd64 into VM_CACHE once, builds VM_PKG's tests with
# -tags vmtest and CGO_ENABLED=0, packs them with a static Go /init into an
# initramfs, boots, streams the guest console, and exits with the guest
# test binary's status (1 if the guest reported none).
#
# Guest-only tests carry `//go:build vmtest` and call vmtest.RequireGuest.

GO         ?= go
# The package whose tests run in the guest, and which of them.
VM_PKG     ?= ./receiver/agentsessionreceiver/internal/kernel/
VM_RUN     ?= ^TestVM
# Bound on the whole boot; the test binary gets 90% of it as -test.timeout.
VM_TIMEOUT ?= 10m
# Kernel cache; empty means $XDG_CACHE_HOME/agentwatch/vm (~/.cache/...),
# which outlives fresh clones of the repository.
VM_CACHE   ?=
# More runner flags, e.g. VM_FLAGS='-smp 2 -mem 512 -file /bin/bash -keep',
# and test binary flags after --, e.g. VM_FLAGS='-- -test.failfast'.
VM_FLAGS   ?= -file /bin/bash

# The evasion corpus (test/evasion) on the LSM backend, a second guest run
# of test-vm (VM_EVASION=0 leaves it out) and a target of its own. Its
# scripts need bash and curl (with its loader and libraries) beside
# busybox's applets; 512 MiB holds the larger test binary, curl and the
# corpus's sessions.
VM_EVASION       ?= 1
VM_EVASION_PKG   ?= ./test/evasion/
VM_EVASION_RUN   ?= ^TestEvasionCorpus$$
VM_EVASION_FLAGS ?= -mem 512 -file /bin/bash -file /usr/bin/curl

# Built rather than `go run`, which would turn the guest's exit status into 1.
# The runner builds the guest binaries with the same GO.
VMTEST := build/vmtest

.PHONY: test-vm test-vm-evasion vm-kernel lint-vm $(VMTEST)

$(VMTEST):
	@$(GO) build -o $@ ./internal/vmtest/cmd/vmtest

VM_EVASION_CMD = GO=$(GO) $(VMTEST) run -pkg $(VM_EVASION_PKG) -run '$(VM_EVASION_RUN)' -timeout $(VM_TIMEOUT) $(if $(VM_CACHE),-cache $(VM_CACHE)) $(VM_EVASION_FLAGS)

test-vm: $(VMTEST) ## run VM_PKG's VM_RUN tests, then the evasion corpus, in QEMU guests with BPF LSM (fetches the kernel once)
	GO=$(GO) $(VMTEST) run -pkg $(VM_PKG) -run '$(VM_RUN)' -timeout $(VM_TIMEOUT) $(if $(VM_CACHE),-cache $(VM_CACHE)) $(VM_FLAGS)
	$(if $(filter 1,$(VM_EVASION)),$(VM_EVASION_CMD))

test-vm-evasion: $(VMTEST) ## run the evasion corpus (test/evasion) in a QEMU guest on the BPF LSM backend
	$(VM_EVASION_CMD)

vm-kernel: $(VMTEST) ## fetch and cache the VM tests' guest kernel (Debian linux-image-cloud-amd64)
	$(VMTEST) kernel $(if $(VM_CACHE),-cache $(VM_CACHE))

# Plain `go vet ./...` does not see files behind the vmtest tag.
lint-vm: ## go vet the guest-only (vmtest-tagged) tests and the VM runner
	$(GO) vet -tags vmtest $(VM_PKG) $(VM_EVASION_PKG) ./internal/vmtest/...
