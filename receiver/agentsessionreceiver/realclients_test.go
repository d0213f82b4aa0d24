//go:build realclients

package agentsessionreceiver

// The real-client matrix: the published agents, unmodified, pointed at a
// local TLS server that speaks their provider's API, each run as the child
// of a session. Not part of `make test` (it downloads ~400 MiB of agents
// from npm): `make test-real-clients` installs them and runs this.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// endTurn answers a request that carries tool results, so that agents stop
// after one tool round instead of looping on the canned tool_use.
const endTurn = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_end","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"usage":{"input_tokens":100,"output_tokens":1}}}` + "\n\n" +
	"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Done."}}` + "\n\n" +
	"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
	"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}` + "\n\n" +
	"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n"

func TestRealClients(t *testing.T) {
	testenv.RequireRoot(t)
	mods := filepath.Join(testenv.ClientsDir(), "agents", "node_modules")
	anth, err := os.ReadFile("../../internal/llmapi/testdata/anthropic_stream.sse")
	require.NoError(t, err)
	gem, err := os.ReadFile("../../internal/llmapi/testdata/gemini_stream.sse")
	require.NoError(t, err)

	var mu sync.Mutex
	var llmCalls []string
	port := serveTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.HasSuffix(r.URL.Path, "/v1/messages"):
			w.Header().Set("Content-Type", "text/event-stream")
			if strings.Contains(string(body), "tool_result") {
				io.WriteString(w, endTurn)
			} else {
				w.Write(anth)
			}
		case strings.Contains(r.URL.Path, ":streamGenerateContent"):
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write(gem)
		case strings.Contains(r.URL.Path, ":generateContent"):
			// Gemini CLI's side calls (routing, titles) are answered 404:
			// still an LLM call the receiver must report.
			http.NotFound(w, r)
		default:
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		llmCalls = append(llmCalls, fmt.Sprintf("%s %s (%s)", r.Method, r.URL.Path, r.UserAgent()))
		mu.Unlock()
	}))
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	home := t.TempDir()
	for p, content := range map[string]string{
		".gemini/settings.json":          `{"security":{"auth":{"selectedType":"gemini-api-key"}}}`,
		".config/opencode/opencode.json": `{"autoupdate":false,"provider":{"anthropic":{"options":{"baseURL":"` + base + `/v1"}}}}`,
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(home, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(home, p), []byte(content), 0o644))
	}
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin", "TERM=dumb", "CI=1", "NODE_TLS_REJECT_UNAUTHORIZED=0",
		"ANTHROPIC_BASE_URL=" + base, "ANTHROPIC_API_KEY=" + testAPIKey, "DISABLE_AUTOUPDATER=1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"GOOGLE_GEMINI_BASE_URL=" + base, "GEMINI_API_KEY=" + testAPIKey, "GEMINI_CLI_NO_RELAUNCH=true", "GEMINI_CLI_TRUST_WORKSPACE=true",
		"OPENCODE_DISABLE_AUTOUPDATE=1", "OPENCODE_DISABLE_MODELS_FETCH=1"}

	const prompt = "list the files here"
	clients := []struct {
		name, tls string
		argv      []string
	}{
		{"claude-code-native", "BoringSSL in Bun, stripped", []string{mods + "/@anthropic-ai/claude-code-linux-x64/claude", "-p", prompt}},
		{"opencode", "BoringSSL in Bun, stripped", []string{mods + "/opencode-linux-x64/bin/opencode", "run", "-m", "anthropic/claude-sonnet-4-5", prompt}},
		{"gemini-cli", "node's OpenSSL", []string{"node", mods + "/@google/gemini-cli/bundle/gemini.js", "-p", prompt}},
	}
	for i, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			exe := c.argv[0]
			if exe == "node" {
				exe = c.argv[1]
			}
			_, err := os.Stat(exe)
			require.NoError(t, err, "`make test-real-clients` installs the agents")
			agent := fmt.Sprintf("aw-real-%d", i)
			h := startReceiverWith(t, func(cfg *Config) { cfg.TLS.Capture = "metadata" }, agent)
			mu.Lock()
			llmCalls = nil
			mu.Unlock()
			bin := testenv.AgentExecutable(t, "/bin/bash", agent)
			cmd := exec.Command(bin, append([]string{"-c", `timeout 120 "$@"`, agent}, c.argv...)...)
			cmd.Env, cmd.Dir = env, home
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)

			mu.Lock()
			calls := append([]string(nil), llmCalls...)
			mu.Unlock()
			require.NotEmpty(t, calls, "the agent called the local API")
			var chats, tools int
			require.Eventually(t, func() bool {
				chats, tools = 0, 0
				for _, sp := range h.spans() {
					switch {
					case strings.HasPrefix(sp.Name(), "chat ") && str(sp.Attributes(), semconv.GenAIRequestModel) != "":
						chats++
					case strings.HasPrefix(sp.Name(), "execute_tool "):
						tools++
					}
				}
				return chats == len(calls)
			}, 10*time.Second, 200*time.Millisecond, "every API call is a chat span: %d chat spans for %d calls %v", chats, len(calls), calls)
			require.Positive(t, tools, "the tool call the model made is a span")
			t.Logf("| %s | %s | %d/%d calls → chat spans, %d execute_tool | %s |", c.name, c.tls, chats, len(calls), tools, calls[0])
		})
	}
}
