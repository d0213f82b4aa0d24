package kernel

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// startEchoDNS listens on port 53 of a loopback address of its own (so it
// cannot clash with a local resolver) and echoes each datagram back with
// the QR bit set. It returns the address.
func startEchoDNS(t *testing.T) string {
	t.Helper()
	var conn *net.UDPConn
	var addr string
	for range 20 {
		addr = fmt.Sprintf("127.53.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr), Port: 53})
		if err == nil {
			conn = c
			break
		}
	}
	if conn == nil {
		t.Fatal("no loopback address with a free port 53")
	}
	t.Cleanup(func() { conn.Close() })
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
