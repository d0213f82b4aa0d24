package kernel

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// TestKernelConnectsByAnyPath: a connect(2) is one record (its syscall
// hook's, with its result); a TCP Fast Open send, which calls no connect,
// is the cgroup connect4 program's; addressed UDP sends are one record per
// destination, from cgroup/sendmsg4.
func TestKernelConnectsByAnyPath(t *testing.T) {
	testenv.RequireRoot(t)
	tr, err := Open(testOptions("aw-kt-sockaddr"), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	attached := map[string]bool{}
	for _, h := range tr.Hooks() {
		attached[h.Name] = h.Attached
	}
	require.True(t, attached["cgroup/connect4"] && attached["cgroup/sendmsg4"], "hooks: %v", tr.Hooks())

	port := testenv.TCPSink(t)
	sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	udpPort := port + 1 // nothing listens: a send still leaves

	self := uint32(os.Getpid())
	require.NoError(t, tr.Track(self, 0, false))
	func() {
		defer tr.Untrack(self)
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		require.NoError(t, err)
		require.NoError(t, unix.Connect(s, sa))
		unix.Close(s)
		s, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		require.NoError(t, err)
		require.NoError(t, unix.Sendto(s, []byte("x"), unix.MSG_FASTOPEN, sa))
		unix.Close(s)
		u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		require.NoError(t, err)
		for range 3 {
			require.NoError(t, unix.Sendto(u, []byte("x"), 0, &unix.SockaddrInet4{Port: udpPort, Addr: [4]byte{127, 0, 0, 1}}))
		}
		unix.Close(u)
	}()

	var tcpSyscall, tcpCgroup, udpSends int
	drain(t, tr, func(ev kevent.Event) {
		c, ok := ev.(*kevent.Connect)
		if !ok || c.PID != self {
			return
		}
		switch {
		case c.Flags&kevent.FlagSockSend != 0:
			require.Equal(t, uint16(udpPort), c.Port)
			require.Equal(t, uint16(2), c.SockType)
			udpSends++
		case c.Flags&kevent.FlagSockCgroup != 0:
			require.Equal(t, uint16(port), c.Port)
			tcpCgroup++
		default:
			require.Equal(t, uint16(port), c.Port)
			tcpSyscall++
		}
	})
	require.Equal(t, 1, tcpSyscall, "connect(2): one record, from its syscall hook")
	require.Equal(t, 1, tcpCgroup, "the TCP Fast Open send: one record, from cgroup/connect4")
	require.Equal(t, 1, udpSends, "three datagrams to one destination: one record")
}

// With enforce on the tracepoint backend, a denied port is refused with
// EPERM by the cgroup programs, whatever the way out: connect(2), a UDP
// connect, a TCP Fast Open send; no kill, and the process goes on. Opens
// would still need action: kill (TestEnforceNeedsLSMOrKill).
func TestEnforceDeniesConnectsOnTracepoints(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-sockdeny"
	port := testenv.TCPSink(t)
	o := testOptions(agent)
	o.Hooks = BackendTracepoint
	var err error
	o.Enforce, err = CompileEnforce(EnforceEnforce, false, nil, nil, []int{port}, nil)
	require.NoError(t, err)
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err, "connect rules alone need no LSM")
	defer tr.Close()

	script := fmt.Sprintf(`if exec 3<>/dev/tcp/127.0.0.1/%[1]d; then echo tcp=ok; else echo tcp=denied; fi
if echo x 2>/dev/null >/dev/udp/127.0.0.1/%[1]d; then echo udp=ok; else echo udp=denied; fi
echo survived`, port)
	out, err := exec.Command(testenv.AgentExecutable(t, "/bin/bash", agent), "-c", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "tcp=denied")
	require.Contains(t, string(out), "udp=denied")
	require.Contains(t, string(out), "survived", "denied, not killed")

	self := uint32(os.Getpid())
	require.NoError(t, tr.Track(self, 0, false))
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	err = unix.Sendto(s, []byte("x"), unix.MSG_FASTOPEN, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	unix.Close(s)
	require.NoError(t, tr.Untrack(self))
	require.ErrorIs(t, err, unix.EPERM, "a TCP Fast Open send to a denied port")

	var denials int
	drain(t, tr, func(ev kevent.Event) {
		if e, ok := ev.(*kevent.Enforce); ok && e.What == kevent.EnforceConnect {
			require.Equal(t, uint8(kevent.EnforceDeny), e.Action)
			require.Equal(t, uint16(port), e.Port)
			require.NotZero(t, e.Flags&(kevent.FlagSockCgroup|kevent.FlagSockSend), "judged by a cgroup program")
			denials++
		}
	})
	require.Equal(t, 3, denials, "one enforce record per attempt, none from the syscall tracepoint")
}

// drain hands every record to fn until a quiet second: a record reported
// twice would show.
func drain(t *testing.T, tr *Tracer, fn func(kevent.Event)) {
	t.Helper()
	var rec ringbuf.Record
	for {
		err := tr.Read(&rec, time.Now().Add(time.Second))
		if errors.Is(err, ErrTimeout) {
			return
		}
		require.NoError(t, err)
		ev, err := kevent.Decode(rec.RawSample)
		require.NoError(t, err)
		fn(ev)
	}
}
