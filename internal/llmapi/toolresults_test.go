package llmapi

import (
	"strings"
	"testing"
)

func TestToolResults(t *testing.T) {
	const secret = "sk-ant-api03-T3stK3yV4lu3Zq8Rw2Xy5Ab7Cd9Ef1Gh3Ij5Kl7Mn9Op1Qr3St5Uv7Wx9Yz0AaBbCc-DdEeFf"
	tests := []struct {
		name string
		api  API
		body string
		want []ToolResult
	}{
		{"anthropic", AnthropicMessages, `{"model":"m","messages":[{"role":"user","content":"hi"},
			{"role":"assistant","content":[{"type":"tool_use","id":"old","name":"Bash","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"old","content":"x"}]},
			{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}},{"type":"tool_use","id":"t2","name":"Read","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"total 0\nkey ` + secret + `"},
			  {"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"file body"}]},{"type":"text","text":"go on"}]}]}`,
			[]ToolResult{{ID: "t1", Content: "total 0\nkey [REDACTED]"}, {ID: "t2", Content: "file body"}}},
		{"openai chat", OpenAIChatCompletions, `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c1"}]},
			{"role":"tool","tool_call_id":"c1","content":"ok"}]}`,
			[]ToolResult{{ID: "c1", Content: "ok"}}},
		{"openai responses", OpenAIResponses, `{"model":"m","input":[{"type":"function_call","call_id":"c9","name":"shell","arguments":"{}"},
			{"type":"function_call_output","call_id":"c9","output":"done"}]}`,
			[]ToolResult{{ID: "c9", Content: "done"}}},
		{"gemini code assist", GeminiGenerateContent, `{"model":"gemini-2.5-pro","request":{"contents":[{"role":"model","parts":[{"functionCall":{"name":"run_shell_command","args":{}}}]},
			{"role":"user","parts":[{"functionResponse":{"name":"run_shell_command","response":{"output":"hi"}}}]}]}}`,
			[]ToolResult{{Name: "run_shell_command", Content: `{"output":"hi"}`}}},
		{"no results", AnthropicMessages, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest(Endpoint{API: tc.api}, []byte(tc.body), Options{Capture: CaptureFull})
			if err != nil || r.Partial {
				t.Fatalf("%v partial=%v", err, r.Partial)
			}
			if len(r.ToolResults) != len(tc.want) {
				t.Fatalf("results %+v, want %+v", r.ToolResults, tc.want)
			}
			for i, w := range tc.want {
				if g := r.ToolResults[i]; g.ID != w.ID || g.Name != w.Name || g.Content != w.Content {
					t.Errorf("result %d: %+v, want %+v", i, g, w)
				}
			}
			// Metadata keeps the ids, never the content.
			m, _ := ParseRequest(Endpoint{API: tc.api}, []byte(tc.body), Options{Capture: CaptureMetadata})
			for _, g := range m.ToolResults {
				if g.Content != "" {
					t.Errorf("metadata capture kept content %q", g.Content)
				}
			}
			if off, _ := ParseRequest(Endpoint{API: tc.api}, []byte(tc.body), Options{}); len(off.ToolResults) != 0 {
				t.Error("capture off kept tool results")
			}
			for _, g := range r.ToolResults {
				if strings.Contains(g.Content, secret[:20]) {
					t.Error("secret not redacted")
				}
			}
		})
	}
}
