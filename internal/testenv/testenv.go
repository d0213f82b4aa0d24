// Package testenv holds the rules for tests that need the kernel: they skip
// with a clear message when unprivileged, but under CI=true they must run,
// so a missing privilege there is a failure, not a silent skip.
package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
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

// TCPSink listens on a loopback TCP port that accepts and closes every
// connection, until the test ends: a peer for connects to be seen. It
// returns the port.
func TCPSink(tb testing.TB) int {
	tb.Helper()
	return serveTCP(tb, func(c net.Conn) { c.Close() })
}

// serveTCP listens on a loopback TCP port until the test ends and hands
// each connection to handle, on the accept loop. It returns the port.
func serveTCP(tb testing.TB, handle func(net.Conn)) int {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// ListenDNS binds UDP port 53 on a loopback address of its own (127.53.x.y:
// no clash with a local resolver on 127.0.0.1:53 or systemd-resolved's
// 127.0.0.53), until the test ends. It returns the socket and the address.
func ListenDNS(tb testing.TB) (*net.UDPConn, string) {
	tb.Helper()
	for range 20 {
		addr := fmt.Sprintf("127.53.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
		if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr), Port: 53}); err == nil {
			tb.Cleanup(func() { c.Close() })
			return c, addr
		}
	}
	tb.Fatal("no loopback address with a free port 53")
	return nil, ""
}
