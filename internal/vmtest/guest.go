// Package vmtest runs Go test binaries inside a QEMU guest that boots
// Debian's cloud kernel. It exists because BPF LSM (and fentry) programs
// fail to load on the development and CI machines (EPERM: ftrace is
// restricted there) but load and fire in a TCG guest.
//
// The pieces, host side: FetchKernel resolves, downloads and caches the
// kernel; BuildInitramfs packs the static guest init (./guestinit), the
// test binary, busybox and any extra files into a newc cpio; Run boots
// QEMU, streams the serial console and returns the exit status that the
// guest init prints as a marker line. cmd/vmtest ties them together for
// `make test-vm`.
package vmtest

// The contract between the host runner and the guest init. Both sides
// import these, so they cannot drift apart.
const (
	// GuestConfigPath is where the initramfs carries the GuestConfig (JSON).
	GuestConfigPath = "/vmtest/config.json"

	// ExitMarker starts the line with which the guest init reports the exit
	// status of the guest command: "AGENTWATCH-VM-EXIT=<code>". The runner
	// takes the last such line; without one the run failed (kernel panic,
	// init crash, timeout).
	ExitMarker = "AGENTWATCH-VM-EXIT="

	// InVMEnv is set to "1" in the guest command's environment; tests that
	// need the guest kernel skip themselves without it.
	InVMEnv = "AGENTWATCH_IN_VM"

	// Exit codes the guest init uses for its own failures, so they are
	// distinguishable from a test binary's 1.
	ExitSetupFailed = 125 // mounts, config, or the command could not start
	ExitNoBPFLSM    = 126 // bpf is not among the active LSMs
)

// GuestConfig tells the guest init what to run.
type GuestConfig struct {
	// Args is the command line; Args[0] is an absolute path in the guest.
	Args []string `json:"args"`
	// Env is added to the init's base environment (PATH, HOME, TMPDIR,
	// CI=true, AGENTWATCH_IN_VM=1); later entries win.
	Env []string `json:"env,omitempty"`
	// Dir is the working directory of the command (go test runs a test
	// binary in its package directory; the runner mirrors that layout).
	Dir string `json:"dir,omitempty"`
	// RequireBPFLSM makes the init fail before running anything when bpf is
	// not in /sys/kernel/security/lsm.
	RequireBPFLSM bool `json:"require_bpf_lsm"`
}
