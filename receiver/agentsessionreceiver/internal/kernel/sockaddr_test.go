package kernel

import (
	"errors"
	"net"
	"os"
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

	lis, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := lis.Addr().(*net.TCPAddr).Port
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
	// every record until a quiet second: a second report would show
	var rec ringbuf.Record
	for {
		err := tr.Read(&rec, time.Now().Add(time.Second))
		if errors.Is(err, ErrTimeout) {
			break
		}
		require.NoError(t, err)
		ev, err := kevent.Decode(rec.RawSample)
		require.NoError(t, err)
		c, ok := ev.(*kevent.Connect)
		if !ok || c.PID != self {
			continue
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
	}
	require.Equal(t, 1, tcpSyscall, "connect(2): one record, from its syscall hook")
	require.Equal(t, 1, tcpCgroup, "the TCP Fast Open send: one record, from cgroup/connect4")
	require.Equal(t, 1, udpSends, "three datagrams to one destination: one record")
}
