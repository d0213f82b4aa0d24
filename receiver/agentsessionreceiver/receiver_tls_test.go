package agentsessionreceiver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// testAPIKey is sent in x-api-key by the clients; it must appear nowhere
// in what the receiver exports.
const testAPIKey = "sk-ant-api03-T3stK3yV4lu3Zq8Rw2Xy5Ab7Cd9Ef1Gh3Ij5Kl7Mn9Op1Qr3St5Uv7Wx9Yz0AaBbCc-DdEeFf"

// fakeAnthropic is a TLS server (self-signed) speaking the Messages API:
// every POST /v1/messages gets the SSE stream of testdata, which has a
// tool_use block (Bash) and usage. It records the requests it saw.
type fakeAnthropic struct {
	port int
	mu   sync.Mutex
	seen []http.Header
}

func startFakeAnthropic(t *testing.T) *fakeAnthropic {
	t.Helper()
	stream, err := os.ReadFile("../../internal/llmapi/testdata/anthropic_stream.sse")
	require.NoError(t, err)
	f := &fakeAnthropic{}
	f.port = serveTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, r.Header.Clone())
		f.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		// Events in separate writes: the client reads them in pieces.
		for _, ev := range strings.SplitAfter(string(stream), "\n\n") {
			io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}))
	return f
}

// serveTLS serves h over HTTP/1.1 on a loopback port with a self-signed
// certificate for api.anthropic.com and 127.0.0.1, until the test ends.
func serveTLS(t *testing.T, h http.Handler) int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "api.anthropic.com"},
		DNSNames: []string{"api.anthropic.com"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

const requestBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,` +
	`"tools":[{"name":"Bash","description":"Run a command","input_schema":{"type":"object"}},{"name":"Read","description":"Read a file","input_schema":{"type":"object"}}],` +
	`"messages":[{"role":"user","content":"list the files here"}]}`

// The python client waits before its call too: the probes are per session
// process, attached after its fork or exec is reported (see README,
// Limitations), and a call made at once would race them.
const pythonClient = `
import http.client, os, ssl, sys, time
time.sleep(float(os.environ.get("CLIENT_DELAY", "1.5")))
ctx = ssl._create_unverified_context()
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx)
c.request("POST", "/v1/messages", os.environ["BODY"], {
    "Host": "api.anthropic.com", "x-api-key": os.environ["KEY"],
    "anthropic-version": "2023-06-01", "content-type": "application/json"})
r = c.getresponse()
data = r.read()
assert r.status == 200 and b"tool_use" in data, (r.status, data[:200])
import subprocess
subprocess.run(["/bin/true"], check=True)  # the tool call runs
`

// The node client waits before its call: uprobes on a binary seen for the
// first time are attached after its exec is reported (see README,
// Limitations), and an agent's first API call comes after its start-up.
const nodeClient = `
const https = require('https');
setTimeout(() => {
  const body = process.env.BODY;
  const req = https.request({host: '127.0.0.1', port: +process.argv[1], path: '/v1/messages', method: 'POST',
    rejectUnauthorized: false, servername: 'api.anthropic.com',
    headers: {'host': 'api.anthropic.com', 'x-api-key': process.env.KEY, 'anthropic-version': '2023-06-01',
      'content-type': 'application/json', 'content-length': Buffer.byteLength(body)}}, res => {
    let data = '';
    res.on('data', d => data += d);
    res.on('end', () => {
      if (res.statusCode !== 200 || !data.includes('tool_use')) { console.error(res.statusCode, data.slice(0, 200)); process.exit(1); }
      require('child_process').execFileSync('/bin/true'); // the tool call runs
    });
  });
  req.on('error', e => { console.error(e); process.exit(1); });
  req.end(body);
}, 1500);
`

// Bun's fetch over its BoringSSL, which has no symbols: the probes sit
// where BoringSSL discovery put them.
const bunClient = `
await new Promise(r => setTimeout(r, 1500));
const res = await fetch("https://127.0.0.1:" + process.argv.at(-1) + "/v1/messages", {
  method: "POST", body: process.env.BODY, tls: {rejectUnauthorized: false},
  headers: {"host": "api.anthropic.com", "x-api-key": process.env.KEY,
    "anthropic-version": "2023-06-01", "content-type": "application/json"}});
const data = await res.text();
if (res.status !== 200 || !data.includes("tool_use")) { console.error(res.status, data.slice(0, 200)); process.exit(1); }
if (Bun.spawnSync(["/bin/true"]).exitCode !== 0) process.exit(1); // the tool call runs
`

func TestKernelTLSPython(t *testing.T) {
	testTLSClient(t, "aw-rt-tlspy", "python3", "/usr/bin/python3", "-c", pythonClient)
}

func TestKernelTLSNode(t *testing.T) {
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node (v20, static OpenSSL) is part of the test environment")
	testTLSClient(t, "aw-rt-tlsnode", "node", node, "-e", nodeClient)
}

func TestKernelTLSBun(t *testing.T) {
	testTLSClient(t, "aw-rt-tlsbun", "bun", testenv.Bun(t), "-e", bunClient)
}

// testTLSClient runs a client as the child of a session's agent (a copy of
// bash under a unique name) against the fake API, and checks the chat span,
// its tool call, the LLM logs, and that the API key was exported nowhere.
func testTLSClient(t *testing.T, agent, clientName, client, flag, code string) {
	testenv.RequireRoot(t)
	api := startFakeAnthropic(t)
	h := startReceiverWith(t, func(c *Config) { c.TLS.Capture = "full" }, agent)

	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	cmd := exec.Command(bin, "-c", `"$@"; echo done`, agent, client, flag, code, strconv.Itoa(api.port))
	cmd.Env = append(os.Environ(), "KEY="+testAPIKey, "BODY="+requestBody)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	api.mu.Lock()
	require.Len(t, api.seen, 1)
	require.Equal(t, testAPIKey, api.seen[0].Get("X-Api-Key"), "the client really sent the key")
	api.mu.Unlock()
	root := h.waitRoot(t, agent)

	var chat, tool, child ptrace.Span
	spans := map[pcommon.SpanID]ptrace.Span{}
	require.Eventually(t, func() bool {
		for _, sp := range h.spans() {
			if sp.TraceID() != root.TraceID() {
				continue
			}
			spans[sp.SpanID()] = sp
			switch {
			case strings.HasPrefix(sp.Name(), "chat "):
				chat = sp
			case strings.HasPrefix(sp.Name(), "execute_tool "):
				tool = sp
			case sp.Name() == "true":
				child = sp
			}
		}
		return !chat.SpanID().IsEmpty() && !tool.SpanID().IsEmpty() && !child.SpanID().IsEmpty()
	}, 10*time.Second, 100*time.Millisecond, "no chat span with a tool call in the session of %s", clientName)

	require.Equal(t, "chat claude-sonnet-4-5", chat.Name())
	require.Equal(t, ptrace.SpanKindClient, chat.Kind())
	a := chat.Attributes()
	require.Equal(t, "anthropic", str(a, semconv.GenAIProviderName))
	require.Equal(t, "claude-sonnet-4-5", str(a, semconv.GenAIRequestModel))
	require.Equal(t, "claude-sonnet-4-5-20250929", str(a, semconv.GenAIResponseModel))
	require.Equal(t, int64(2048+512+10240), mustInt(a, semconv.GenAIUsageInputTokens), "input tokens include cached ones")
	require.Equal(t, int64(87), mustInt(a, semconv.GenAIUsageOutputTokens))
	require.Equal(t, "api.anthropic.com", str(a, semconv.ServerAddress), "from the Host header")
	fr, _ := a.Get(semconv.GenAIFinishReasons)
	require.Equal(t, []any{"tool_use"}, fr.Slice().AsRaw())
	tools, _ := a.Get(semconv.LLMTools)
	require.Equal(t, []any{"Bash", "Read"}, tools.Slice().AsRaw())
	parent, ok := spans[chat.ParentSpanID()]
	require.True(t, ok, "the chat span hangs off a process span of the session")
	require.Equal(t, clientName, parent.Name(), "under the calling process")

	require.Equal(t, "execute_tool Bash", tool.Name())
	require.Equal(t, "Bash", str(tool.Attributes(), semconv.GenAIToolName))
	require.Equal(t, "toolu_01A09q90qw90lq917835lq9", str(tool.Attributes(), semconv.GenAIToolCallID))
	require.Equal(t, chat.SpanID(), tool.ParentSpanID())
	require.Contains(t, str(tool.Attributes(), semconv.GenAIToolCallArguments), "staging.example.com", "full capture exports the arguments")
	require.Equal(t, tool.SpanID(), child.ParentSpanID(), "the process the tool call started is under its execute_tool span")
	require.Equal(t, "toolu_01A09q90qw90lq917835lq9", str(child.Attributes(), semconv.GenAIToolCallID))
	var childRecs int
	for _, r := range h.records() {
		if mustInt(r.attrs, semconv.ProcessPID) == mustInt(child.Attributes(), semconv.ProcessPID) {
			childRecs++
			require.Equal(t, "toolu_01A09q90qw90lq917835lq9", str(r.attrs, semconv.GenAIToolCallID), "%s of the tool's process", str(r.attrs, semconv.EventName))
			require.Equal(t, "Bash", str(r.attrs, semconv.GenAIToolName))
		}
	}
	require.Positive(t, childRecs, "records of the tool's process")

	var req, resp *logRec
	for _, r := range h.records() {
		switch str(r.attrs, semconv.EventName) {
		case semconv.EventLLMRequest:
			c := r
			req = &c
		case semconv.EventLLMResponse:
			c := r
			resp = &c
		}
	}
	require.NotNil(t, req, "agent.llm.request")
	require.NotNil(t, resp, "agent.llm.response")
	require.Equal(t, chat.SpanID(), req.lr.SpanID())
	require.Equal(t, "list the files here", str(req.attrs, semconv.LLMPrompt), "full capture keeps the prompt")
	hdr, ok := req.attrs.Get(semconv.HTTPRequestHeaderPrefix + "x-api-key")
	require.True(t, ok, "full capture ships headers, redacted")
	require.Equal(t, []any{"[REDACTED]"}, hdr.Slice().AsRaw())
	calls, _ := resp.attrs.Get(semconv.LLMToolCalls)
	require.Equal(t, []any{"Bash"}, calls.Slice().AsRaw())

	// Nothing exported carries the key: neither the header's nor the one
	// the model's tool call contains (redacted from the tool input).
	all := h.exported(t)
	require.NotContains(t, string(all), testAPIKey)
	require.NotContains(t, string(all), testAPIKey[:24], "not even a prefix of the key")
	require.NotContains(t, string(all), "Qx7Lm2Np9R", "the key inside the tool input is redacted too")
}
