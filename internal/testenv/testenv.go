// Package testenv holds the rules for tests that need the kernel: they skip
// with a clear message when unprivileged, but under CI=true they must run,
// so a missing privilege there is a failure, not a silent skip.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
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

// AgentExecutable copies the program src (a path, or a name looked up in
// PATH) into a test temp dir as name, and returns its path: an "agent" that a
// matcher on a name no real program has can pick out of the host's processes.
func AgentExecutable(tb testing.TB, src, name string) string {
	tb.Helper()
	path, err := exec.LookPath(src)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dst
}
