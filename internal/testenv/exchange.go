package testenv

import (
	"io"
	"net"
	"testing"
)

// TCPExchange listens on a loopback TCP port until the test ends; each
// connection reads in bytes, answers out bytes and waits for the peer to
// close. It returns the port. A client that has read the answer knows
// the peer acknowledged all it sent.
func TCPExchange(tb testing.TB, in, out int) int {
	tb.Helper()
	return serveTCP(tb, func(c net.Conn) {
		go func() {
			defer c.Close()
			if _, err := io.CopyN(io.Discard, c, int64(in)); err != nil {
				return
			}
			if _, err := c.Write(make([]byte, out)); err != nil {
				return
			}
			io.Copy(io.Discard, c)
		}()
	})
}
