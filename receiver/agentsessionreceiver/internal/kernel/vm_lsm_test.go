//go:build vmtest

// LSM backend and enforcement, in the QEMU guest where BPF LSM loads
// (make test-vm; brings /bin/bash for agentBinary).

package kernel

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/internal/vmtest"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func TestVMAutoPicksLSM(t *testing.T) {
	vmtest.RequireGuest(t)
	tr, err := Open(testOptions("aw-vm-auto"), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	backend, reason := tr.Backend()
	require.Equal(t, BackendLSM, backend, "auto must pick LSM in the guest (reason: %s)", reason)
	names := map[string]bool{}
	for _, h := range tr.Hooks() {
		if h.Attached {
			names[h.Name] = true
		}
	}
	require.True(t, names["lsm/file_open"] && names["lsm/socket_connect"], "hooks: %v", names)
	require.False(t, names["tracepoint/syscalls/sys_exit_openat"], "the LSM backend replaces the open tracepoints")
	require.True(t, names["tp_btf/sched_process_exec"], "exec/fork/exit stay on tp_btf")
}

// enforceFixture: a secret file and a listener; the rules deny the file
// and the listener's port.
type enforceFixture struct {
	secret string
	port   uint16
}

func newEnforceFixture(t *testing.T) *enforceFixture {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	return &enforceFixture{secret: secret, port: uint16(testenv.TCPSink(t))}
}

func (f *enforceFixture) options(t *testing.T, agent, mode string) Options {
	o := testOptions(agent)
	o.Hooks = BackendLSM
	e, err := CompileEnforce(mode, false, []string{f.secret}, nil, []int{int(f.port)}, nil)
	require.NoError(t, err)
	o.Enforce = e
	return o
}

// agentScript reads the secret and connects to the listener, reporting
// each result on stdout.
func (f *enforceFixture) agentScript(t *testing.T, bin string) string {
	script := fmt.Sprintf(`if read -r l < %s; then echo "open=ok"; else echo "open=fail"; fi
if exec 3<>/dev/tcp/127.0.0.1/%d; then echo "connect=ok"; else echo "connect=fail"; fi`, f.secret, f.port)
	out, err := exec.Command(bin, "-c", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// enforceEvents collects the agent's records until its connect is seen.
func enforceEvents(t *testing.T, tr *Tracer, port uint16) []kevent.Event {
	evs, _ := collect(t, tr, 20*time.Second, func(ev kevent.Event) bool {
		c, ok := ev.(*kevent.Connect)
		return ok && c.Port == port
	})
	return evs
}

func TestVMEnforceDeniesSessionOnly(t *testing.T) {
	vmtest.RequireGuest(t)
	const agent = "aw-vm-enforce"
	f := newEnforceFixture(t)
	tr, err := Open(f.options(t, agent, EnforceEnforce), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	out := f.agentScript(t, testenv.AgentExecutable(t, "/bin/bash", agent))
	require.Contains(t, out, "open=fail")
	require.Contains(t, out, "connect=fail")
	require.Contains(t, out, "Operation not permitted", "the LSM hook denies with EPERM")

	// Outside the session the same open and connect work.
	b, err := os.ReadFile(f.secret)
	require.NoError(t, err)
	require.Equal(t, "s3cret\n", string(b))
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", f.port))
	require.NoError(t, err)
	c.Close()

	var denyOpen, denyConn, open, conn bool
	for _, ev := range enforceEvents(t, tr, f.port) {
		switch e := ev.(type) {
		case *kevent.Enforce:
			require.Equal(t, uint8(kevent.EnforceDeny), e.Action)
			if e.What == kevent.EnforceOpen {
				require.Equal(t, f.secret, e.Path)
				require.Equal(t, uint32(0), e.Rule)
				denyOpen = true
			} else {
				require.Equal(t, f.port, e.Port)
				require.Equal(t, netip.MustParseAddr("127.0.0.1"), e.Addr)
				require.Equal(t, uint32(portRuleBase), e.Rule)
				denyConn = true
			}
		case *kevent.Open:
			if e.Path == f.secret {
				require.Equal(t, int32(-1), e.Ret, "a denied open reports -EPERM")
				require.Equal(t, uint16(kevent.SyscallLSMFileOpen), e.Syscall)
				open = true
			}
		case *kevent.Connect:
			require.Equal(t, int32(-1), e.Ret)
			conn = true
		}
	}
	require.True(t, denyOpen && denyConn && open && conn, "enforce open=%v connect=%v, records open=%v connect=%v", denyOpen, denyConn, open, conn)
}

func TestVMEnforceAllowConnect(t *testing.T) {
	vmtest.RequireGuest(t)
	const agent = "aw-vm-allow"
	f := newEnforceFixture(t)
	o := testOptions(agent)
	o.Hooks = BackendLSM
	var err error
	// Only 192.0.2.0/24 is allowed: the loopback listener is outside.
	o.Enforce, err = CompileEnforce(EnforceEnforce, false, nil, []string{"192.0.2.0/24", "::1"}, nil, nil)
	require.NoError(t, err)
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	out := f.agentScript(t, testenv.AgentExecutable(t, "/bin/bash", agent))
	require.Contains(t, out, "open=ok")
	require.Contains(t, out, "connect=fail")
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", f.port))
	require.NoError(t, err, "a process outside the session connects")
	c.Close()
	var denied bool
	for _, ev := range enforceEvents(t, tr, f.port) {
		if e, ok := ev.(*kevent.Enforce); ok {
			require.Equal(t, uint32(kevent.RuleAllowConnect), e.Rule)
			denied = true
		}
	}
	require.True(t, denied)
}

func TestVMMonitorDeniesNothing(t *testing.T) {
	vmtest.RequireGuest(t)
	const agent = "aw-vm-monitor"
	f := newEnforceFixture(t)
	tr, err := Open(f.options(t, agent, EnforceMonitor), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	out := f.agentScript(t, testenv.AgentExecutable(t, "/bin/bash", agent))
	require.Contains(t, out, "open=ok")
	require.Contains(t, out, "connect=ok")
	var audits int
	for _, ev := range enforceEvents(t, tr, f.port) {
		switch e := ev.(type) {
		case *kevent.Enforce:
			require.Equal(t, uint8(kevent.EnforceAudit), e.Action)
			audits++
		case *kevent.Open:
			if e.Path == f.secret {
				require.Equal(t, int32(0), e.Ret)
			}
		case *kevent.Connect:
			require.Equal(t, int32(0), e.Ret)
		}
	}
	require.Equal(t, 2, audits, "one audit for the open, one for the connect")
}

// TestVMLSMMatchesTracepoints runs the same actions under both backends
// (tracepoints work in the guest too) and compares the records the
// session tracker turns into attributes, in order. Known differences,
// normalised here: the LSM hook runs before the open/connect completes,
// so its ret is the verdict (0), not the fd; it never sees opens that
// fail before reaching the file (ENOENT), so failed tracepoint opens are
// left out; and it does see opens a driver fails after the LSM check
// (bash's /dev/tty without a controlling terminal: ENXIO), left out too.
func TestVMLSMMatchesTracepoints(t *testing.T) {
	vmtest.RequireGuest(t)
	f := newEnforceFixture(t)
	// One binary for both runs: its path and name appear in the records.
	const agent = "aw-vm-parity"
	const noise = "/tmp/aw-vm-parity-noise"
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	run := func(backend string) []string {
		o := testOptions(agent)
		o.Hooks = backend
		// noise.files on both: the loader's read and the file's read are
		// dropped, its append is not.
		o.NoiseFiles = []string{"/etc/ld.so.cache", noise}
		tr, err := Open(o, zaptest.NewLogger(t))
		require.NoError(t, err)
		defer tr.Close()
		got, _ := tr.Backend()
		require.Equal(t, backend, got)
		script := fmt.Sprintf(`echo x >> `+noise+`; read -r l < `+noise+`; read -r l < %s; /bin/sh -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null; exec 3<>/dev/tcp/127.0.0.1/%d; echo done`, f.secret, f.port, f.port)
		out, err := exec.Command(bin, "-c", script).CombinedOutput()
		require.NoError(t, err, "%s", out)
		var recs []string
		for _, ev := range enforceEvents(t, tr, f.port) {
			switch e := ev.(type) {
			case *kevent.Exec:
				recs = append(recs, fmt.Sprintf("exec %s %q", e.Filename, e.Args))
			case *kevent.Open:
				if e.Ret < 0 || e.Path == "/dev/tty" {
					continue
				}
				recs = append(recs, fmt.Sprintf("open %s flags=%#o", e.Path, e.OpenFlags))
			case *kevent.Connect:
				recs = append(recs, fmt.Sprintf("connect %s:%d type=%d ret=%d", e.Addr, e.Port, e.SockType, e.Ret))
			}
		}
		return recs
	}
	tp := run(BackendTracepoint)
	lsm := run(BackendLSM)
	t.Logf("tracepoint: %q", tp)
	require.Contains(t, strings.Join(tp, "\n"), "open "+f.secret)
	require.Contains(t, strings.Join(tp, "\n"), "exec /bin/sh")
	require.NotContains(t, strings.Join(tp, "\n"), "open /etc/ld.so.cache", "a noise file's read is dropped")
	require.Contains(t, tp, fmt.Sprintf("open %s flags=%#o", noise, os.O_WRONLY|os.O_CREATE|os.O_APPEND), "a noise file's write is kept")
	require.NotContains(t, tp, fmt.Sprintf("open %s flags=%#o", noise, os.O_RDONLY), "a noise file's read is dropped")
	require.Equal(t, tp, lsm, "the LSM backend must report the same records in the same order")
}
