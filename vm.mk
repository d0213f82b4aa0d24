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

# make bench-overhead-vm: the overhead bench's loops (test/overhead) in a
# guest on the LSM backend, receiver stopped vs running (test/overhead/vm).
# The guest has no compiler: the loop program is built static on the host
# and shipped in with -file, with bash (the agent is a copy of it) and the
# file under a noise prefix that a loop opens. The guest runs with QEMU's
# -icount (BENCH_VM_ICOUNT; empty for the host's wall clock): its time
# counts emulated instructions, so the figures do not move with the load
# of the shared host (which swings wall-clock TCG runs by up to 2× from
# round to round). About 2 minutes.
BENCH_VM_LOOP   := build/overhead-loop
BENCH_VM_ICOUNT ?= shift=0
BENCH_VM_FLAGS  ?= -mem 512 -timeout 8m
# Rounds of stopped/running pairs, and more test binary flags
# (-overhead.strict fails the run when an outside-session loop misses its
# target).
BENCH_VM_ROUNDS ?= 4
BENCH_VM_ARGS   ?=

# Built rather than `go run`, which would turn the guest's exit status into 1.
# The runner builds the guest binaries with the same GO.
VMTEST := build/vmtest

.PHONY: test-vm test-vm-evasion vm-kernel lint-vm bench-overhead-vm $(VMTEST)

$(VMTEST):
	@$(GO) build -o $@ ./internal/vmtest/cmd/vmtest

VM_EVASION_CMD = GO=$(GO) $(VMTEST) run -pkg $(VM_EVASION_PKG) -run '$(VM_EVASION_RUN)' -timeout $(VM_TIMEOUT) $(if $(VM_CACHE),-cache $(VM_CACHE)) $(VM_EVASION_FLAGS)

test-vm: $(VMTEST) ## run VM_PKG's VM_RUN tests, then the evasion corpus, in QEMU guests with BPF LSM (fetches the kernel once)
	GO=$(GO) $(VMTEST) run -pkg $(VM_PKG) -run '$(VM_RUN)' -timeout $(VM_TIMEOUT) $(if $(VM_CACHE),-cache $(VM_CACHE)) $(VM_FLAGS)
	$(if $(filter 1,$(VM_EVASION)),$(VM_EVASION_CMD))

test-vm-evasion: $(VMTEST) ## run the evasion corpus (test/evasion) in a QEMU guest on the BPF LSM backend
	$(VM_EVASION_CMD)

bench-overhead-vm: $(VMTEST) ## the overhead bench's loops in a QEMU guest on the BPF LSM backend, receiver stopped vs running
	gcc -static -O2 -x c -o $(BENCH_VM_LOOP) test/overhead/loop_c.txt
	GO=$(GO) $(VMTEST) run -pkg ./test/overhead/vm/ -run '^TestVMOverhead$$' $(if $(VM_CACHE),-cache $(VM_CACHE)) \
	  -file /bin/bash -file $(BENCH_VM_LOOP):/bench/loop -file /usr/lib/os-release \
	  $(if $(BENCH_VM_ICOUNT),-icount $(BENCH_VM_ICOUNT)) $(BENCH_VM_FLAGS) \
	  -- -overhead.rounds=$(BENCH_VM_ROUNDS) -overhead.icount='$(BENCH_VM_ICOUNT)' $(BENCH_VM_ARGS)

vm-kernel: $(VMTEST) ## fetch and cache the VM tests' guest kernel (Debian linux-image-cloud-amd64)
	$(VMTEST) kernel $(if $(VM_CACHE),-cache $(VM_CACHE))

# Plain `go vet ./...` does not see files behind the vmtest tag.
lint-vm: ## go vet the guest-only (vmtest-tagged) tests and the VM runner
	$(GO) vet -tags vmtest $(VM_PKG) $(VM_EVASION_PKG) ./test/overhead/... ./internal/vmtest/...
