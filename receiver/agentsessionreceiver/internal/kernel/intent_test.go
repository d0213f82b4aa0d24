package kernel

import (
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
		require.Zero(t, p.offset, "by symbol")
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
