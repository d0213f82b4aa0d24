//go:build vmtest

package kernel

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/internal/vmtest"
)

// On the LSM backend, lsm/socket_connect judges connect(2) and tells the
// cgroup program so. A connect that passes the LSM hook and fails before
// the cgroup one (EISCONN on a connected socket) must not let the next way
// out of the same thread pass unjudged: a TCP Fast Open send to a denied
// port is still refused.
func TestVMStaleConnectMarkerDeniesNothingElse(t *testing.T) {
	vmtest.RequireGuest(t)
	allowed := testenv.TCPSink(t)
	denied := testenv.TCPSink(t)
	o := testOptions("aw-vm-stale")
	o.Hooks = BackendLSM
	var err error
	o.Enforce, err = CompileEnforce(EnforceEnforce, false, nil, nil, []int{denied}, nil)
	require.NoError(t, err)
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	self := uint32(os.Getpid())
	require.NoError(t, tr.Track(self, 0, false))
	defer tr.Untrack(self)
	// one OS thread for both steps: the marker is per thread
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(s)
		to := &unix.SockaddrInet4{Port: allowed, Addr: [4]byte{127, 0, 0, 1}}
		if err := unix.Connect(s, to); err != nil {
			done <- err
			return
		}
		if err := unix.Connect(s, to); err != unix.EISCONN {
			done <- err
			return
		}
		t2, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(t2)
		done <- unix.Sendto(t2, []byte("x"), unix.MSG_FASTOPEN, &unix.SockaddrInet4{Port: denied, Addr: [4]byte{127, 0, 0, 1}})
	}()
	require.ErrorIs(t, <-done, unix.EPERM, "the TCP Fast Open send to the denied port after a stale marker")
}
