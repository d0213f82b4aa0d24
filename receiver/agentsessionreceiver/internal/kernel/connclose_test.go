package kernel

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func hookAttached(t *testing.T, tr *Tracer, name string) {
	t.Helper()
	for _, h := range tr.Hooks() {
		if h.Name == name {
			require.True(t, h.Attached, "%s: %v", name, h.Err)
			return
		}
	}
	t.Fatalf("no hook %s in %v", name, tr.Hooks())
}

func connCloses(t *testing.T, tr *Tracer, pid uint32) map[uint16][]*kevent.ConnClose {
	t.Helper()
	out := map[uint16][]*kevent.ConnClose{}
	drain(t, tr, func(ev kevent.Event) {
		if c, ok := ev.(*kevent.ConnClose); ok && c.PID == pid {
			out[c.Dest.Port()] = append(out[c.Dest.Port()], c)
		}
	})
	return out
}

// TestKernelConnClose: each TCP connection a session process connects is
// one record when it ends, with how and what moved: an exchange closed by
// the process (bytes as the peer saw them), a refused non-blocking
// connect, a connect that timed out (a SYN into a link that drops it, in
// a netns of the test's), and nothing for a process outside every session.
func TestKernelConnClose(t *testing.T) {
	testenv.RequireRoot(t)
	tr, err := Open(testOptions("aw-kt-connclose"), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	hookAttached(t, tr, "tp_btf/inet_sock_set_state")

	const sent, received = 100_000, 3000
	exchange := testenv.TCPExchange(t, sent, received)
	refused := closedPort(t)
	untracked := testenv.TCPExchange(t, 10, 10)
	ns := blackholeNetns(t, "aw-kt-connclose")

	self := uint32(os.Getpid())
	require.NoError(t, tr.Track(self, 0, false))
	func() {
		defer tr.Untrack(self)
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		require.NoError(t, err)
		require.NoError(t, unix.Connect(s, &unix.SockaddrInet4{Port: exchange, Addr: [4]byte{127, 0, 0, 1}}))
		writeAll(t, s, make([]byte, sent))
		readFull(t, s, received)
		require.NoError(t, unix.Close(s))

		s, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		require.NoError(t, err)
		err = unix.Connect(s, &unix.SockaddrInet4{Port: refused, Addr: [4]byte{127, 0, 0, 1}})
		require.True(t, errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.ECONNREFUSED), "%v", err)
		time.Sleep(50 * time.Millisecond)
		unix.Close(s)

		err = ns.run(func() error {
			s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				return err
			}
			defer unix.Close(s)
			if err := unix.SetsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 200); err != nil {
				return err
			}
			return unix.Connect(s, &unix.SockaddrInet4{Port: 80, Addr: [4]byte{10, 99, 0, 2}})
		})
		require.ErrorIs(t, err, unix.ETIMEDOUT)
	}()
	// not a session process any more: its connections are nobody's
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Connect(s, &unix.SockaddrInet4{Port: untracked, Addr: [4]byte{127, 0, 0, 1}}))
	writeAll(t, s, make([]byte, 10))
	readFull(t, s, 10)
	unix.Close(s)

	got := connCloses(t, tr, self)
	require.Len(t, got[uint16(exchange)], 1, "one record per connection: %v", got)
	c := got[uint16(exchange)][0]
	require.True(t, c.Established())
	require.Zero(t, c.Err)
	require.Equal(t, "127.0.0.1", c.Dest.Addr().String())
	bs, ba, br := c.Bytes()
	require.Equal(t, [3]uint64{sent, sent, received}, [3]uint64{bs, ba, br}, "sent, acked, received (%d -> %d)", c.OldState, c.NewState)
	require.Equal(t, uint8(kevent.TCPEstablished), c.OldState)
	require.Equal(t, uint8(kevent.TCPFinWait1), c.NewState)
	require.NotZero(t, c.ConnectTime)
	require.Greater(t, c.Time, c.ConnectTime)

	require.Len(t, got[uint16(refused)], 1, "the refused connect, once (the close after it adds none)")
	r := got[uint16(refused)][0]
	require.False(t, r.Established())
	require.Equal(t, int32(unix.ECONNREFUSED), r.Err)

	require.Len(t, got[80], 1, "the timed-out connect")
	to := got[80][0]
	require.False(t, to.Established())
	require.Equal(t, int32(unix.ETIMEDOUT), to.Err)
	require.Equal(t, "10.99.0.2", to.Dest.Addr().String())

	require.Empty(t, got[uint16(untracked)], "a process outside every session: no record")
}

// A session process that exits with its connection open: the kernel
// closes the socket after the exit record (sched_process_exit runs before
// exit_files), and the record names the exited process.
func TestKernelConnCloseAfterExit(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-connexit"
	tr, err := Open(testOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	const sent = 5000
	port := testenv.TCPExchange(t, sent, 1)
	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	script := fmt.Sprintf(`import os, socket
s = socket.create_connection(("127.0.0.1", %d))
s.sendall(b"x" * %d)
s.recv(1)
os._exit(0)  # the socket is still open
`, port, sent)
	cmd := exec.Command(py, "-c", script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	pid := uint32(cmd.Process.Pid)

	var exitAt, closeAt int = -1, -1
	var c *kevent.ConnClose
	i := 0
	drain(t, tr, func(ev kevent.Event) {
		switch e := ev.(type) {
		case *kevent.Exit:
			if e.PID == pid {
				exitAt = i
			}
		case *kevent.ConnClose:
			if e.PID == pid && e.Dest.Port() == uint16(port) {
				require.Nil(t, c, "reported twice")
				c, closeAt = e, i
			}
		}
		i++
	})
	require.NotNil(t, c, "no record of the connection the exit closed")
	require.NotEqual(t, -1, exitAt)
	require.Greater(t, closeAt, exitAt, "the exit record comes first")
	bs, ba, br := c.Bytes()
	require.Equal(t, [3]uint64{sent, sent, 1}, [3]uint64{bs, ba, br})
	require.Zero(t, c.Err)
}

// netnsBlackhole is a network namespace whose 10.99.0.0/24 is a veth link
// with its peer down: a SYN sent there vanishes, no ICMP comes back.
type netnsBlackhole struct{ path string }

func blackholeNetns(t *testing.T, name string) *netnsBlackhole {
	t.Helper()
	ns := testenv.NewNetns(t, name)
	for _, args := range [][]string{
		{"link", "add", "aw0", "type", "veth", "peer", "name", "aw1"},
		{"addr", "add", "10.99.0.1/24", "dev", "aw0"},
		{"link", "set", "aw0", "up"},
		{"neigh", "add", "10.99.0.2", "lladdr", "02:00:00:00:00:02", "dev", "aw0", "nud", "permanent"},
	} {
		out, err := exec.Command("ip", append([]string{"-n", ns.Name}, args...)...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	return &netnsBlackhole{path: filepath.Join("/var/run/netns", ns.Name)}
}

// run runs f on a thread in the namespace; the thread is never reused.
func (n *netnsBlackhole) run(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(n.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func writeAll(t *testing.T, fd int, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		require.NoError(t, err)
		b = b[n:]
	}
}

func readFull(t *testing.T, fd, n int) {
	t.Helper()
	buf := make([]byte, n)
	for got := 0; got < n; {
		m, err := unix.Read(fd, buf[got:])
		require.NoError(t, err)
		require.NotZero(t, m, "EOF after %d of %d bytes", got, n)
		got += m
	}
}
