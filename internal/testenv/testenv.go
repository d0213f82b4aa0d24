// Package testenv holds the rules for tests that need the kernel: they skip
// with a clear message when unprivileged, but under CI=true they must run,
// so a missing privilege there is a failure, not a silent skip.
package testenv

import (
	"os"
	"testing"
)

// RequireRoot skips (or, in CI, fails) a test that needs root and BPF.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		tb.Fatal("CI=true: this kernel test must run as root (BPF programs, tracepoints), but euid is not 0")
	}
	tb.Skip("needs root to load BPF programs; run `sudo make test` (in CI this fails instead of skipping)")
}

// InCI reports whether the tests run under CI, where nothing may skip.
func InCI() bool { return os.Getenv("CI") == "true" }
