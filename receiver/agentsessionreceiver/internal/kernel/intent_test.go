package kernel

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func intentOptions(agent string) Options {
	o := testOptions(agent)
	o.Intent = IntentOptions{DNS: true, TLS: true, TLSMaxCapture: 64 << 10}
	return o
}

// The intent object loads with the main object's maps, the verifier takes
// every program, the DNS tracepoints attach and the system libssl is probed.
func TestKernelIntentLoads(t *testing.T) {
	testenv.RequireRoot(t)
	tr, err := Open(intentOptions("aw-kt-intent"), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	for _, h := range tr.Hooks() {
		require.True(t, h.Attached, "%s: %v", h.Name, h.Err)
	}
	var libssl bool
	for _, tg := range tr.TLSTargets() {
		if strings.Contains(tg.Path, "libssl.so") && tg.Attached {
			libssl = true
			require.Subset(t, []string{"SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"}, tg.Symbols)
			require.Len(t, tg.Symbols, 4, "OpenSSL 3 has all four")
		}
	}
	require.True(t, libssl, "system libssl probed at start: %+v", tr.TLSTargets())
}

// A session process's UDP query to port 53 and its answer reach the ring
// buffer as DNS records with the payload; a non-session process's do not.
func TestKernelDNSRecords(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-dnsq"
	tr, err := Open(intentOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	srv := startEchoDNS(t)
	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	script := `
import socket, sys
q = bytes.fromhex("abcd01000001000000000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (sys.argv[1], 53))
s.recvfrom(2048)
`
	out, err := exec.Command(py, "-c", script, srv).CombinedOutput()
	require.NoError(t, err, "%s", out)

	var sent, recv *kevent.DNS
	collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		if d, ok := ev.(*kevent.DNS); ok {
			c := *d
			c.Payload = append([]byte(nil), d.Payload...)
			if d.Dir == kevent.DNSSent {
				sent = &c
			} else {
				recv = &c
			}
		}
		return sent != nil && recv != nil
	})
	require.Equal(t, srv+":53", sent.Resolver.String())
	require.Equal(t, uint16(2), sent.Transport)
	require.Equal(t, 29, len(sent.Payload))
	require.Equal(t, []byte{0xab, 0xcd}, sent.Payload[:2])
	require.Equal(t, srv+":53", recv.Resolver.String())
	require.Equal(t, sent.Payload[:2], recv.Payload[:2])
}

// Target examination, without probes: node exports OpenSSL's functions
// from the executable; bash has none; a non-ELF file is refused.
func TestSSLProbes(t *testing.T) {
	node, err := exec.LookPath("node")
	require.NoError(t, err)
	probes, how, err := sslProbes(node)
	require.NoError(t, err)
	var names []string
	for _, p := range probes {
		names = append(names, p.name)
		require.True(t, p.symbol, "by symbol")
		require.NotZero(t, p.offset, "resolved to a file offset once, for every process")
	}
	require.ElementsMatch(t, []string{"SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"}, names)
	require.Equal(t, "dynamic symbols", how)
	probes, _, err = sslProbes("/bin/bash")
	require.Empty(t, probes)
	require.ErrorIs(t, err, errNoSSL)
	txt := filepath.Join(t.TempDir(), "x.txt")
	require.NoError(t, os.WriteFile(txt, []byte("hello"), 0o644))
	probes, _, err = sslProbes(txt)
	require.Empty(t, probes)
	require.ErrorIs(t, err, errNotELF)
}

// Bun has no SSL symbols: its target is attached at the functions BoringSSL
// discovery found, and says so. (TestKernelTLSBun in the receiver shows
// the probes capture Bun's plaintext.)
func TestKernelTLSTargetBun(t *testing.T) {
	testenv.RequireRoot(t)
	bun := testenv.Bun(t)
	tr, err := Open(intentOptions("aw-kt-bun"), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	tr.examine(bun, bun, "executable")
	var got *TLSTarget
	for _, tg := range tr.TLSTargets() {
		if tg.Path == bun {
			got = &tg
		}
	}
	require.NotNil(t, got, "Bun examined")
	require.True(t, got.Attached, got.Reason)
	require.Equal(t, "BoringSSL error-site fingerprint", got.Discovery)
	require.Equal(t, []string{"SSL_write", "SSL_read"}, got.Symbols)
}

// DNS is read off packets, so the ways a query leaves that no syscall hook
// decoded are seen too: a TCP query (length-prefixed, split over two
// writes) and sendmsg with an address. A process outside every session sends
// the same query and yields nothing: its socket has no owner.
func TestKernelDNSFromPackets(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-dnspkt"
	tr, err := Open(intentOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	for _, h := range tr.Hooks() {
		require.NotContains(t, h.Name, "tracepoint/syscalls/sys_enter_read", "no program on read")
		require.NotContains(t, h.Name, "tracepoint/syscalls/sys_enter_recv", "no program on recv*")
	}

	srv := startEchoDNS(t)
	ln, err := net.Listen("tcp4", srv+":53")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 2048)
				n, _ := io.ReadAtLeast(c, buf, 14)
				if n > 4 {
					buf[4] |= 0x80
				}
				c.Write(buf[:n])
			}()
		}
	}()
	script := `
import socket, struct, sys, time
srv, qid = sys.argv[1], int(sys.argv[2], 16)
q = struct.pack(">H", qid) + bytes.fromhex("01000001000000000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
if sys.argv[3] == "tcp":
    c = socket.create_connection((srv, 53), timeout=3)
    c.sendall(struct.pack(">H", len(q)))
    time.sleep(0.05)
    c.sendall(q)
    c.recv(2048)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendmsg([q], [], 0, (srv, 53))
    s.recvmsg(2048)
`
	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	for _, run := range []struct{ exe, qid, how string }{
		{"/usr/bin/python3", "e0e0", "udp"}, // outside every session, first
		{py, "a1a1", "tcp"},
		{py, "b2b2", "udp"},
	} {
		out, err := exec.Command(run.exe, "-c", script, srv, run.qid, run.how).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}

	type seen struct{ sent, recv bool }
	got := map[string]*seen{}
	var tcpSent []byte
	collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		d, ok := ev.(*kevent.DNS)
		if !ok {
			return false
		}
		p := d.Payload
		if d.Transport == 1 {
			if len(p) == 2 {
				return false // the length prefix alone
			}
			if len(p) > 2 && d.Dir == kevent.DNSReceived {
				p = p[2:]
			}
			if d.Dir == kevent.DNSSent {
				tcpSent = append([]byte(nil), p...)
			}
		}
		if len(p) < 2 {
			return false
		}
		id := fmt.Sprintf("%02x%02x", p[0], p[1])
		require.NotEqual(t, "e0e0", id, "a process outside every session is not captured")
		if got[id] == nil {
			got[id] = &seen{}
		}
		if d.Dir == kevent.DNSSent {
			got[id].sent = true
			require.Equal(t, srv+":53", d.Resolver.String())
		} else {
			got[id].recv = true
		}
		require.NotZero(t, d.Conn, "the socket keys the stream")
		return got["a1a1"] != nil && got["a1a1"].sent && got["a1a1"].recv && got["b2b2"] != nil && got["b2b2"].sent && got["b2b2"].recv
	})
	require.Len(t, tcpSent, 29, "the TCP query's own segment, after the prefix's")
}
