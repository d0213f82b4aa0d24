//go:build vmtest

package kernel

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/internal/vmtest"
)

// On the 6.1 guest and the LSM backend (lsm/socket_connect reports the
// connect), the end of each connection is still one record from
// tp_btf/inet_sock_set_state: an exchange with its bytes, a refused connect.
func TestVMConnCloseLSM(t *testing.T) {
	vmtest.RequireGuest(t)
	o := testOptions("aw-vm-connclose")
	o.Hooks = BackendLSM
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	backend, _ := tr.Backend()
	require.Equal(t, BackendLSM, backend)
	hookAttached(t, tr, "tp_btf/inet_sock_set_state")

	const sent, received = 50_000, 1234
	exchange := testenv.TCPExchange(t, sent, received)
	refused := closedPort(t)
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
		s, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		require.NoError(t, err)
		require.ErrorIs(t, unix.Connect(s, &unix.SockaddrInet4{Port: refused, Addr: [4]byte{127, 0, 0, 1}}), unix.ECONNREFUSED)
		unix.Close(s)
	}()
	got := connCloses(t, tr, self)
	require.Len(t, got[uint16(exchange)], 1, "%v", got)
	bs, ba, br := got[uint16(exchange)][0].Bytes()
	require.Equal(t, [3]uint64{sent, sent, received}, [3]uint64{bs, ba, br})
	require.Len(t, got[uint16(refused)], 1)
	require.Equal(t, int32(unix.ECONNREFUSED), got[uint16(refused)][0].Err)
}
