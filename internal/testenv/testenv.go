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

// ClientsDir is where `make clients` installs the real TLS clients the
// tests run (pinned npm packages); AGENTWATCH_CLIENTS overrides it.
func ClientsDir() string {
	if d := os.Getenv("AGENTWATCH_CLIENTS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "agentwatch", "clients")
}

// Bun returns the Bun executable `make clients` installed (Bun carries
// BoringSSL compiled in and stripped, like Claude Code's native build). It
// skips without it, and fails under CI, which installs it.
func Bun(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(ClientsDir(), "node_modules", "@oven", "bun-linux-x64", "bin", "bun")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if InCI() {
		tb.Fatalf("CI=true: the Bun client is missing at %s; .ci/run installs it with `make clients`", path)
	}
	tb.Skipf("Bun is not installed at %s; run `make clients` (npm) to install the pinned test clients", path)
	return ""
}
