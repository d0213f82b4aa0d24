//go:build vmtest

package kernel

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/vmtest"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// The intent layer loads on the guest's 6.1 verifier beside the LSM
// backend: the DNS packet programs attach at the cgroup v2 root and a
// session's query and its answer are read off its socket's packets, with
// no syscall tracepoint attached.
func TestVMIntentDNSFromPackets(t *testing.T) {
	vmtest.RequireGuest(t)
	o := intentOptions("aw-vm-intent")
	o.Hooks = BackendLSM
	o.Intent.TLS = false
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	var dns int
	for _, h := range tr.Hooks() {
		require.True(t, h.Attached, "%s: %v", h.Name, h.Err)
		require.NotContains(t, h.Name, "tracepoint/syscalls/", "LSM backend with DNS: no syscall tracepoint")
		if h.Name == "cgroup_skb/egress" || h.Name == "cgroup_skb/ingress" {
			dns++
		}
	}
	require.Equal(t, 2, dns, "both packet programs attached")

	srv := startEchoDNS(t)
	self := uint32(os.Getpid())
	require.NoError(t, tr.Track(self, 0, false))
	defer tr.Untrack(self)
	c, err := net.Dial("udp4", srv+":53")
	require.NoError(t, err)
	defer c.Close()
	q := append([]byte{0xc3, 0xc3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, []byte("\x07example\x03com\x00\x00\x01\x00\x01")...)
	_, err = c.Write(q)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	_, err = c.Read(make([]byte, 512))
	require.NoError(t, err)

	var sent, recv bool
	collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		if d, ok := ev.(*kevent.DNS); ok && len(d.Payload) >= 2 && d.Payload[0] == 0xc3 && d.Payload[1] == 0xc3 {
			require.Equal(t, srv+":53", d.Resolver.String())
			if d.Dir == kevent.DNSSent {
				sent = true
			} else {
				recv = true
			}
		}
		return sent && recv
	})
}
