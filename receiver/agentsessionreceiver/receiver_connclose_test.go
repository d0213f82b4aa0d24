package agentsessionreceiver

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// An agent's connections each end in one agent.net.close record in its
// session: one it closes after an exchange (bytes as the peer saw them),
// one a forked child's exit closes and one the agent's own exit closes —
// both after the exit record, when the process is no longer followed —
// and a refused connect. A process outside the session has none.
func TestKernelConnCloseRecords(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-connclose"
	h := startReceiver(t, agent)
	const sent, received = 200_000, 4096
	exchange := testenv.TCPExchange(t, sent, received)
	childPort := testenv.TCPExchange(t, 1000, 1)
	rootPort := testenv.TCPExchange(t, 700, 1)
	outsiderPort := testenv.TCPExchange(t, 10, 1)
	refused := closedLoopbackPort(t)

	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	script := `
import os, socket, sys, time
exchange, child_port, root_port, refused = map(int, sys.argv[1:5])
s = socket.create_connection(("127.0.0.1", exchange))
s.sendall(b"x" * 200000)
n = 0
while n < 4096:
    b = s.recv(65536)
    assert b
    n += len(b)
s.close()
try:
    socket.create_connection(("127.0.0.1", refused)).close()
except ConnectionRefusedError:
    pass
pid = os.fork()
if pid == 0:
    c = socket.create_connection(("127.0.0.1", child_port))
    c.sendall(b"y" * 1000)
    c.recv(1)
    os._exit(0)  # open: the exit closes it
os.waitpid(pid, 0)
print(pid, flush=True)
r = socket.create_connection(("127.0.0.1", root_port))
r.sendall(b"z" * 700)
r.recv(1)
os._exit(0)
`
	cmd := exec.Command(py, "-c", script, fmt.Sprint(exchange), fmt.Sprint(childPort), fmt.Sprint(rootPort), fmt.Sprint(refused))
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var childPID int64
	_, err = fmt.Sscan(string(out), &childPID)
	require.NoError(t, err)
	rootPID := int64(cmd.Process.Pid)

	outsider := exec.Command("/usr/bin/python3", "-c", fmt.Sprintf(`import socket
s = socket.create_connection(("127.0.0.1", %d)); s.sendall(b"o" * 10); s.recv(1); s.close()`, outsiderPort))
	require.NoError(t, outsider.Run())

	root := h.waitRoot(t, agent)
	byPort := map[int64][]logRec{}
	require.Eventually(t, func() bool {
		clear(byPort)
		for _, r := range h.records() {
			if str(r.attrs, semconv.EventName) == semconv.EventNetClose {
				p := mustInt(r.attrs, semconv.NetworkPeerPort)
				byPort[p] = append(byPort[p], r)
			}
		}
		return len(byPort[int64(rootPort)]) > 0 && len(byPort[int64(childPort)]) > 0
	}, 10*time.Second, 100*time.Millisecond)

	spanOf := map[int64]pcommon.SpanID{}
	for _, sp := range h.spans() {
		if pid, ok := sp.Attributes().Get(semconv.ProcessPID); ok && !sp.ParentSpanID().IsEmpty() { // not the session's root span
			spanOf[pid.Int()] = sp.SpanID()
		}
	}
	check := func(port int, pid int64, outcome string, sent, acked, received int64) logRec {
		t.Helper()
		rs := byPort[int64(port)]
		require.Len(t, rs, 1, "port %d: one record", port)
		r := rs[0]
		require.Equal(t, root.TraceID(), r.lr.TraceID(), "in the session's trace")
		require.Equal(t, pid, mustInt(r.attrs, semconv.ProcessPID))
		require.Equal(t, spanOf[pid], r.lr.SpanID(), "on the process's span")
		require.Equal(t, outcome, str(r.attrs, semconv.NetOutcome))
		require.Equal(t, sent, mustInt(r.attrs, semconv.NetSentBytes), "sent")
		require.Equal(t, acked, mustInt(r.attrs, semconv.NetAckedBytes), "acked")
		require.Equal(t, received, mustInt(r.attrs, semconv.NetReceivedBytes), "received")
		require.Equal(t, "127.0.0.1", str(r.attrs, semconv.NetworkPeerAddress))
		require.Equal(t, "tcp", str(r.attrs, semconv.NetworkTransport))
		require.Equal(t, "ipv4", str(r.attrs, semconv.NetworkType))
		require.Equal(t, "tp_btf/inet_sock_set_state", str(r.attrs, semconv.Hook))
		d, ok := r.attrs.Get(semconv.NetDuration)
		require.True(t, ok)
		require.GreaterOrEqual(t, d.Double(), 0.0)
		require.Less(t, d.Double(), 10.0)
		return r
	}
	check(exchange, rootPID, semconv.NetOutcomeClosed, sent, sent, received)
	ref := check(refused, rootPID, semconv.NetOutcomeRefused, 0, 0, 0)
	require.Equal(t, "ECONNREFUSED", str(ref.attrs, semconv.ErrorType))
	est, _ := ref.attrs.Get(semconv.NetEstablished)
	require.False(t, est.Bool())
	check(childPort, childPID, semconv.NetOutcomeClosed, 1000, 1000, 1)
	check(rootPort, rootPID, semconv.NetOutcomeClosed, 700, 700, 1)
	require.Empty(t, byPort[int64(outsiderPort)], "a process outside every session: no record")
	require.Positive(t, h.r.tracker.Stats().ConnClosesLate, "the exits' closes came after the exits")
}

func closedLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
