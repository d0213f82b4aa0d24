package agentsessionreceiver

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// A fake credentials file (the keys are valid nowhere); fileOnly has no
// key shape: only the fingerprint of the file finds it.
const (
	e2eKeyID    = "AKIAQX3EXAMPLE7ZK2PL"
	e2eSecret   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY"
	e2eFileOnly = "Zq8vN3tR6wY1bX4mK7pL0sD5"
)

// secretClient sends what `cat credentials | base64` printed back to the
// model as the result of its Bash tool call, the way an agent does.
const secretClient = `
import http.client, json, os, ssl, sys
out = sys.stdin.read()
body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": True, "messages": [
    {"role": "user", "content": "encode my aws credentials"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01Enc", "name": "Bash",
        "input": {"command": "cat ~/.aws/credentials | base64"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Enc", "content": out}]}]})
ctx = ssl._create_unverified_context()
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx)
c.request("POST", "/v1/messages", body, {"Host": "api.anthropic.com", "x-api-key": os.environ["KEY"],
    "anthropic-version": "2023-06-01", "content-type": "application/json"})
r = c.getresponse()
r.read()
assert r.status == 200, r.status
`

// A session reads a credentials file with cat, encodes it with base64 and
// sends the output to the model: the request record and its chat span
// name the secrets, the encoding, the file and the tool call; the connect
// to the API is named by the TLS layer; nothing exported carries the
// secrets, their base64 or their hex (full capture).
func TestKernelSecretToModel(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-secret"
	creds := filepath.Join(t.TempDir(), ".aws", "credentials")
	require.NoError(t, os.MkdirAll(filepath.Dir(creds), 0o700))
	content := "[default]\naws_access_key_id = " + e2eKeyID + "\naws_secret_access_key = " + e2eSecret + "\n" + e2eFileOnly + "\n"
	require.NoError(t, os.WriteFile(creds, []byte(content), 0o600))
	api := startFakeAnthropic(t)
	h := startReceiverWith(t, func(c *Config) { c.TLS.Capture = "full" }, agent)

	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	cmd := exec.Command(bin, "-c", `cat "$1" | base64 | python3 -c "$2" "$3"; echo done`, agent, creds, secretClient, strconv.Itoa(api.port))
	cmd.Env = append(os.Environ(), "KEY="+testAPIKey)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	root := h.waitRoot(t, agent)

	var req *logRec
	var chat ptrace.Span
	require.Eventually(t, func() bool {
		for _, r := range h.records() {
			if str(r.attrs, semconv.EventName) == semconv.EventLLMRequest && r.lr.TraceID() == root.TraceID() {
				c := r
				req = &c
			}
		}
		for _, sp := range h.spans() {
			if strings.HasPrefix(sp.Name(), "chat ") && sp.TraceID() == root.TraceID() {
				chat = sp
			}
		}
		return req != nil && !chat.SpanID().IsEmpty()
	}, 10*time.Second, 100*time.Millisecond)

	checkSecret := func(what string, get func(string) []any, getStr func(string) string, n int64) {
		t.Helper()
		require.GreaterOrEqual(t, n, int64(3), "%s: agent.secret.count", what)
		kinds := get(semconv.SecretKinds)
		for _, k := range []any{"aws_access_key_id", "aws_secret_access_key", "file_content"} {
			require.Contains(t, kinds, k, what)
		}
		require.Equal(t, []any{"base64"}, get(semconv.SecretEncodings), what)
		require.Equal(t, []any{creds}, get(semconv.SecretFiles), what)
		require.Equal(t, "toolu_01Enc", getStr(semconv.SecretToolCallID), what)
		require.Equal(t, "Bash", getStr(semconv.SecretToolName), what)
	}
	ra := req.attrs
	checkSecret("request record", func(k string) []any { v, _ := ra.Get(k); return v.Slice().AsRaw() },
		func(k string) string { return str(ra, k) }, mustInt(ra, semconv.SecretCount))
	ca := chat.Attributes()
	checkSecret("chat span", func(k string) []any { v, _ := ca.Get(k); return v.Slice().AsRaw() },
		func(k string) string { return str(ca, k) }, mustInt(ca, semconv.SecretCount))

	// The python client's connect to 127.0.0.1 is named by its Host.
	var named bool
	for _, r := range h.records() {
		if str(r.attrs, semconv.EventName) == semconv.EventNetConnect && mustInt(r.attrs, semconv.NetworkPeerPort) == int64(api.port) {
			named = str(r.attrs, semconv.ServerAddress) == "api.anthropic.com" && str(r.attrs, semconv.PeerNameSource) == "tls"
		}
	}
	require.True(t, named, "the connect to the API carries the TLS layer's name")

	all := h.exported(t)
	b64 := base64.StdEncoding.EncodeToString([]byte(content))
	for _, s := range []string{e2eKeyID, e2eSecret, e2eFileOnly, testAPIKey, b64[:60], b64[76:136], hex.EncodeToString([]byte(e2eSecret))} {
		require.NotContains(t, string(all), s)
	}
}
