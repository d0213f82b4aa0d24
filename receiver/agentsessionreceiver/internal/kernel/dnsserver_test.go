package kernel

import (
	"testing"

	"github.com/agentwatch/agentwatch/internal/testenv"
)

// startEchoDNS listens on port 53 of a loopback address of its own
// (testenv.ListenDNS) and echoes each datagram back with the QR bit set.
// It returns the address.
func startEchoDNS(t *testing.T) string {
	t.Helper()
	conn, addr := testenv.ListenDNS(t)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n > 2 {
				buf[2] |= 0x80
			}
			conn.WriteToUDP(buf[:n], from)
		}
	}()
	return addr
}
