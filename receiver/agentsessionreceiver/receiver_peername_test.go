package agentsessionreceiver

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// A process in a mount namespace of its own, whose /etc/hosts (bind-mounted
// there) names api.anthropic.com as a TEST-NET address, connects by that
// name: no DNS packet is sent, and the connect record names the host from
// the hosts file under the process's root. (A loopback address would not be
// named from a hosts file: every local server has it.)
func TestKernelPeerNameHosts(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-hosts"
	const port = 9 // nothing answers: only the attempt matters
	hosts := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(hosts, []byte("127.0.0.1 localhost\n192.0.2.10 api.anthropic.com\n"), 0o644))
	h := startReceiver(t, agent)

	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	script := `
import socket, sys, time
try:
    socket.create_connection(("api.anthropic.com", int(sys.argv[1])), timeout=0.2).close()
except OSError:
    pass
time.sleep(0.5)
`
	out, err := runCmd("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/hosts && exec "$2" -c "$3" "$4"`, "sh", hosts, py, script, strconv.Itoa(port))
	require.NoError(t, err, "%s", out)
	h.waitRoot(t, agent)

	var conn *logRec
	require.Eventually(t, func() bool {
		for _, r := range h.records() {
			if str(r.attrs, semconv.EventName) == semconv.EventNetConnect && mustInt(r.attrs, semconv.NetworkPeerPort) == int64(port) {
				c := r
				conn = &c
			}
		}
		return conn != nil
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, "192.0.2.10", str(conn.attrs, semconv.NetworkPeerAddress))
	require.Equal(t, "api.anthropic.com", str(conn.attrs, semconv.ServerAddress))
	require.Equal(t, "hosts", str(conn.attrs, semconv.PeerNameSource))
	resolved, ok := conn.attrs.Get(semconv.PeerResolved)
	require.True(t, ok)
	require.True(t, resolved.Bool())
}
