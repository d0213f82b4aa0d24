// Package evasion is the evasion corpus: techniques an agent (or what it
// runs) can use to read a credential, get it out, or stay, without keeping
// to the names and syscalls a plain rule expects. Each runs as its own
// agent session through the agent_session receiver and the agent_score
// processor in-process, on one hook backend: tracepoints on the host
// (go test), BPF LSM in the QEMU guest (make test-vm-evasion, part of
// make test-vm). Every technique must end up as its expected rule on some
// record of its session at high or above.
package evasion

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runHelper(os.Args[1:]))
	}
	os.Exit(m.Run())
}
