package agentsessionreceiver

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// dnsServer answers A queries from a table on port 53 of a loopback address
// of its own (127.53.x.y: no clash with a local resolver on 127.0.0.1:53 or
// systemd-resolved's 127.0.0.53). Names not in the table get no answer.
func dnsServer(t *testing.T, answers map[string]net.IP) string {
	t.Helper()
	conn, addr := testenv.ListenDNS(t)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			ip := answers[q.Name.String()]
			if ip == nil {
				continue // silence: the query stays unanswered
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionAvailable: true})
			b.EnableCompression()
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
				dnsmessage.AResource{A: [4]byte(ip.To4())})
			msg, err := b.Finish()
			if err == nil {
				conn.WriteToUDP(msg, from)
			}
		}
	}()
	return addr
}

// A session process resolves names through a resolver the test runs (once
// unconnected with sendto/recvfrom, once on a connected socket with
// send/recv, once without an answer), then connects to the address it was
// given: queries and answers are reported, the connect carries the name.
func TestKernelDNS(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-dns"
	port := testenv.TCPSink(t)
	srv := dnsServer(t, map[string]net.IP{
		"api.example.test.":  net.IPv4(127, 0, 0, 1),
		"conn.example.test.": net.IPv4(127, 0, 0, 2),
	})
	h := startReceiverWith(t, func(c *Config) {
		c.DNS.QueryTimeout = 400 * time.Millisecond
	}, agent)

	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	script := `
import socket, struct, sys
srv, port = sys.argv[1], int(sys.argv[2])
def query(qid, name):
    qn = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qn + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(query(0x1111, "api.example.test"), (srv, 53))
data, _ = s.recvfrom(2048)
ip = socket.inet_ntoa(data[-4:])
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(3)
c.connect((srv, 53))
c.send(query(0x2222, "conn.example.test"))
c.recv(2048)
s.sendto(query(0x3333, "silent.example.test"), (srv, 53))
socket.create_connection((ip, port)).close()
`
	out, err := runCmd(py, "-c", script, srv, strconv.Itoa(port))
	require.NoError(t, err, "%s", out)
	h.waitRoot(t, agent)

	queries := map[string]logRec{}
	var conn *logRec
	require.Eventually(t, func() bool {
		for _, r := range h.records() {
			switch str(r.attrs, semconv.EventName) {
			case semconv.EventDNSQuery:
				queries[str(r.attrs, semconv.DNSQuestionName)] = r
			case semconv.EventNetConnect:
				if mustInt(r.attrs, semconv.NetworkPeerPort) == int64(port) {
					c := r
					conn = &c
				}
			}
		}
		return len(queries) == 3 && conn != nil
	}, 10*time.Second, 100*time.Millisecond, "queries %v", queries)

	api := queries["api.example.test"]
	require.Equal(t, "A", str(api.attrs, semconv.DNSQuestionType))
	ans, _ := api.attrs.Get(semconv.DNSAnswers)
	require.Equal(t, []any{"127.0.0.1"}, ans.Slice().AsRaw())
	require.Equal(t, srv, str(api.attrs, semconv.DNSResolver))
	isSys, ok := api.attrs.Get(semconv.DNSResolverIsSystem)
	require.True(t, ok)
	require.False(t, isSys.Bool(), "the test's resolver is not in resolv.conf")
	require.Equal(t, "udp", str(api.attrs, semconv.NetworkTransport))

	cq := queries["conn.example.test"]
	ans, _ = cq.attrs.Get(semconv.DNSAnswers)
	require.Equal(t, []any{"127.0.0.2"}, ans.Slice().AsRaw(), "connected socket: send/recv")

	silent := queries["silent.example.test"]
	answered, _ := silent.attrs.Get(semconv.DNSAnswered)
	require.False(t, answered.Bool(), "an unanswered query is reported")
	ans, _ = silent.attrs.Get(semconv.DNSAnswers)
	require.Equal(t, 0, ans.Slice().Len())

	require.Equal(t, "api.example.test", str(conn.attrs, semconv.ServerAddress), "the connect names what the session resolved")
	resolved, ok := conn.attrs.Get(semconv.PeerResolved)
	require.True(t, ok)
	require.True(t, resolved.Bool())
	require.Equal(t, api.lr.TraceID(), conn.lr.TraceID())
}

func runCmd(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
