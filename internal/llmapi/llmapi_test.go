package llmapi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	secretAnt = "Qx7Lm2Np9Rt4Vw7Yb3Nc6Hd1Jf5Kg0TsQqW"
	secretGH  = "Zx8Qm2Lp9Rt4Vw7Yb3Nc6Hd1Jf5Kg0TsQqW1"
)

var full = Options{Capture: CaptureFull}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDetect(t *testing.T) {
	tests := []struct {
		host, target string
		want         Endpoint
		ok           bool
	}{
		{"api.anthropic.com", "/v1/messages?beta=true", Endpoint{API: AnthropicMessages, Provider: "anthropic"}, true},
		{"127.0.0.1:8080", "/v1/messages", Endpoint{API: AnthropicMessages, Provider: "anthropic"}, true},
		{"api.anthropic.com", "/v1/messages/count_tokens", Endpoint{}, false},
		{"us-east5-aiplatform.googleapis.com", "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
			Endpoint{API: AnthropicMessages, Provider: "gcp.vertex_ai", Model: "claude-sonnet-4-5@20250929", Stream: true}, true},
		{"api.openai.com", "/v1/chat/completions", Endpoint{API: OpenAIChatCompletions, Provider: "openai"}, true},
		{"my.openai.azure.com", "/openai/deployments/gpt4/chat/completions?api-version=2024-10-21", Endpoint{API: OpenAIChatCompletions, Provider: "azure.ai.openai"}, true},
		{"api.deepseek.com", "/chat/completions", Endpoint{API: OpenAIChatCompletions, Provider: "deepseek"}, true},
		{"openrouter.ai", "/api/v1/chat/completions", Endpoint{API: OpenAIChatCompletions, Provider: "openai"}, true},
		{"API.OpenAI.com:443", "/v1/responses", Endpoint{API: OpenAIResponses, Provider: "openai"}, true},
		{"chatgpt.com", "/backend-api/codex/responses", Endpoint{API: OpenAIResponses, Provider: "openai"}, true},
		{"generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
			Endpoint{API: GeminiGenerateContent, Provider: "gcp.gemini", Model: "gemini-2.5-flash", Stream: true}, true},
		{"cloudcode-pa.googleapis.com", "/v1internal:generateContent", Endpoint{API: GeminiGenerateContent, Provider: "gcp.gemini"}, true},
		{"europe-west4-aiplatform.googleapis.com", "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:generateContent",
			Endpoint{API: GeminiGenerateContent, Provider: "gcp.vertex_ai", Model: "gemini-2.5-pro"}, true},
		{"api.github.com", "/repos/o/r", Endpoint{}, false},
		{"registry.npmjs.org", "/@anthropic-ai%2fclaude-code", Endpoint{}, false},
		{"", "", Endpoint{}, false},
	}
	for _, tt := range tests {
		got, ok := Detect(tt.host, tt.target)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Detect(%q, %q) = %+v %v, want %+v %v", tt.host, tt.target, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseCaptureMode(t *testing.T) {
	for in, want := range map[string]CaptureMode{"off": CaptureOff, "": CaptureOff, "Metadata": CaptureMetadata, " full ": CaptureFull} {
		if got, err := ParseCaptureMode(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseCaptureMode("everything"); err == nil {
		t.Error("accepted an unknown mode")
	}
	if CaptureFull.String() != "full" || CaptureOff.String() != "off" {
		t.Error("String")
	}
}

func TestRequests(t *testing.T) {
	tests := []struct {
		fixture string
		ep      Endpoint
		want    Request
	}{
		{"anthropic_request.json", Endpoint{API: AnthropicMessages, Provider: "anthropic"}, Request{
			Model: "claude-sonnet-4-5-20250929", Stream: true, MaxTokens: 32000, Messages: 5,
			Tools:  []string{"Bash", "Read", "Edit", "web_search"},
			Prompt: "Now call the staging API with my key [REDACTED] and tell me the result",
		}},
		{"openai_chat_request.json", Endpoint{API: OpenAIChatCompletions, Provider: "openai"}, Request{
			Model: "gpt-4.1", Stream: true, MaxTokens: 4096, Messages: 5, Tools: []string{"run_shell", "read_file"},
			Prompt: "Upload app to the bucket using password=[REDACTED]",
		}},
		{"openai_responses_request.json", Endpoint{API: OpenAIResponses, Provider: "openai"}, Request{
			Model: "gpt-5-codex", Stream: true, Messages: 5, Tools: []string{"shell", "update_plan", "web_search"},
			Prompt: "Push the branch; the token is in GITHUB_TOKEN=[REDACTED]",
		}},
		{"gemini_request.json", Endpoint{API: GeminiGenerateContent, Provider: "gcp.gemini"}, Request{
			Model: "gemini-2.5-pro", MaxTokens: 8192, Messages: 5,
			Tools:  []string{"list_directory", "read_file", "run_shell_command", "googleSearch"},
			Prompt: "Summarise README.md and check ~/.ssh/id_rsa permissions",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, tt.fixture)
			got, err := ParseRequest(tt.ep, body, full)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Endpoint = tt.ep
			want.PromptBytes = got.PromptBytes
			want.ToolResults = got.ToolResults // TestToolResults
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
			if got.PromptBytes < len(want.Prompt)-len("[REDACTED]") {
				t.Errorf("PromptBytes %d", got.PromptBytes)
			}
			assertNoSecret(t, got)

			// Capture modes strip what they must.
			meta, _ := ParseRequest(tt.ep, body, Options{Capture: CaptureMetadata})
			if meta.Prompt != "" || !reflect.DeepEqual(meta.Tools, want.Tools) || meta.Messages != want.Messages || meta.PromptBytes == 0 {
				t.Errorf("metadata: %+v", meta)
			}
			off, _ := ParseRequest(tt.ep, body, Options{})
			if off.Prompt != "" || off.Tools != nil || off.Messages != 0 || off.PromptBytes != 0 || off.Model != want.Model {
				t.Errorf("off: %+v", off)
			}
		})
	}
}

func TestRequestVariants(t *testing.T) {
	// Plain Gemini (API key) request, string content in OpenAI and
	// Responses, legacy functions.
	gem := `{"contents":[{"role":"user","parts":[{"text":"hi"},{"text":"there"}]}],"tools":[{"codeExecution":{}}]}`
	r, _ := ParseRequest(Endpoint{API: GeminiGenerateContent, Model: "gemini-2.5-flash"}, []byte(gem), full)
	if r.Model != "gemini-2.5-flash" || r.Prompt != "hi\nthere" || !reflect.DeepEqual(r.Tools, []string{"codeExecution"}) {
		t.Errorf("gemini: %+v", r)
	}
	chat := `{"model":"m","messages":[{"role":"user","content":"plain"}],"functions":[{"name":"f"}],"max_tokens":9}`
	r, _ = ParseRequest(Endpoint{API: OpenAIChatCompletions}, []byte(chat), full)
	if r.Prompt != "plain" || !reflect.DeepEqual(r.Tools, []string{"f"}) || r.MaxTokens != 9 {
		t.Errorf("chat: %+v", r)
	}
	resp := `{"model":"m","input":"just a string","max_output_tokens":5}`
	r, _ = ParseRequest(Endpoint{API: OpenAIResponses}, []byte(resp), full)
	if r.Prompt != "just a string" || r.Messages != 1 || r.MaxTokens != 5 {
		t.Errorf("responses: %+v", r)
	}
	ant := `{"model":"m","messages":[{"role":"user","content":"only string"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"r"}]}]}`
	r, _ = ParseRequest(Endpoint{API: AnthropicMessages}, []byte(ant), full)
	if r.Prompt != "only string" {
		t.Errorf("anthropic: %+v", r)
	}
	if _, err := ParseRequest(Endpoint{}, []byte(ant), full); err == nil {
		t.Error("unknown API accepted")
	}
}

func TestTruncatedRequest(t *testing.T) {
	body := fixture(t, "anthropic_request.json")
	for _, n := range []int{0, 1, 30, 60, 90, 200, 1000, len(body) - 2} {
		r, err := ParseRequest(Endpoint{API: AnthropicMessages, Provider: "anthropic"}, body[:n], full)
		if n < 44 {
			// Not even the first field is whole: nothing to report.
			if err != ErrNotJSON {
				t.Errorf("cut at %d: %v", n, err)
			}
			continue
		}
		if err != nil || !r.Partial {
			t.Fatalf("cut at %d: %v %+v", n, err, r)
		}
		// "model" is the first key: as soon as its value is whole it must
		// be there.
		if n >= 50 && r.Model != "claude-sonnet-4-5-20250929" {
			t.Errorf("cut at %d: model %q", n, r.Model)
		}
		if n >= 90 && (r.MaxTokens != 32000 || !r.Stream) {
			t.Errorf("cut at %d: %+v", n, r)
		}
		assertNoSecret(t, r)
	}
	if _, err := ParseRequest(Endpoint{API: OpenAIChatCompletions}, []byte("not json"), full); err != ErrNotJSON {
		t.Errorf("garbage: %v", err)
	}
}

func TestResponses(t *testing.T) {
	tests := []struct {
		fixture string
		ep      Endpoint
		sse     bool
		want    Response
	}{
		{"anthropic_stream.sse", Endpoint{API: AnthropicMessages, Provider: "anthropic"}, true, Response{
			ID: "msg_01XFDUDYJgAACzvnptvVoYEL", Model: "claude-sonnet-4-5-20250929", Streamed: true,
			FinishReasons: []string{"tool_use"}, HasUsage: true,
			Usage: Usage{InputTokens: 2048 + 512 + 10240, OutputTokens: 87, CacheReadInputTokens: 10240, CacheCreationInputTokens: 512},
			ToolCalls: []ToolCall{{ID: "toolu_01A09q90qw90lq917835lq9", Name: "Bash",
				// Re-encoded (compact, keys sorted) because a command changed.
				Input: `{"command":"curl -s -H 'x-api-key: [REDACTED]' https://staging.example.com/v1/status","description":"Call staging API"}`}},
			Text: "I'll call the staging API with your key.",
		}},
		{"anthropic_response.json", Endpoint{API: AnthropicMessages, Provider: "anthropic"}, false, Response{
			ID: "msg_013Zva2CMHLNnXjNJJKqJ2EF", Model: "claude-haiku-4-5-20251001", FinishReasons: []string{"tool_use"}, HasUsage: true,
			Usage:     Usage{InputTokens: 3472, OutputTokens: 56, CacheReadInputTokens: 3000},
			ToolCalls: []ToolCall{{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "Read", Input: `{"file_path": "/home/dev/project/.env"}`}},
			Text:      "Let me read the configuration first.",
		}},
		{"openai_chat_stream.sse", Endpoint{API: OpenAIChatCompletions, Provider: "openai"}, true, Response{
			ID: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", Model: "gpt-4.1-2025-04-14", Streamed: true,
			FinishReasons: []string{"tool_calls"}, HasUsage: true,
			Usage: Usage{InputTokens: 1432, OutputTokens: 64, CacheReadInputTokens: 1280},
			ToolCalls: []ToolCall{
				{ID: "call_Q8sTu2Vw4Xy6Za8Bc0De2Fg4", Name: "run_shell", Input: `{"cmd":"curl -u deploy:[REDACTED] -T build/app https://bucket.example.com/"}`},
				{ID: "call_Hj3Kl5Mn7Pq9Rs1Tu3Vw5Xy7", Name: "read_file", Input: `{"path":"build/app.sha256"}`},
			},
			Text: "Uploading now.",
		}},
		{"openai_chat_response.json", Endpoint{API: OpenAIChatCompletions, Provider: "openai"}, false, Response{
			ID: "chatcmpl-CFs8jR3cN1w9xYpZqA7bT2uLkM4vE", Model: "gpt-4.1-mini-2025-04-14", FinishReasons: []string{"tool_calls"}, HasUsage: true,
			Usage:     Usage{InputTokens: 220, OutputTokens: 24},
			ToolCalls: []ToolCall{{ID: "call_Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8", Name: "read_file", Input: `{"path":"/home/dev/.aws/credentials"}`}},
		}},
		{"openai_responses_stream.sse", Endpoint{API: OpenAIResponses, Provider: "openai"}, true, Response{
			ID: "resp_68c1a2b3c4d5e6f70a1b2c3d4e5f6a7b", Model: "gpt-5-codex", Streamed: true,
			FinishReasons: []string{"tool_calls"}, HasUsage: true,
			Usage: Usage{InputTokens: 5120, OutputTokens: 310, CacheReadInputTokens: 4096, ReasoningTokens: 256},
			ToolCalls: []ToolCall{{ID: "call_Pq2Rs4Tu6Vw8Xy0Za2Bc4De6", Name: "shell",
				Input: `{"command":["bash","-lc","git push https://x-access-token:[REDACTED]@github.com/acme/agentwatch.git HEAD"]}`}},
		}},
		{"gemini_stream.sse", Endpoint{API: GeminiGenerateContent, Provider: "gcp.gemini", Model: "gemini-2.5-pro", Stream: true}, true, Response{
			ID: "Zk8mabcDEF-ghiJKLmnoPQ", Model: "gemini-2.5-pro", Streamed: true, FinishReasons: []string{"STOP"}, HasUsage: true,
			Usage:     Usage{InputTokens: 9120, OutputTokens: 181, CacheReadInputTokens: 8000, ReasoningTokens: 140},
			ToolCalls: []ToolCall{{Name: "run_shell_command", Input: `{"command": "stat -c %a ~/.ssh/id_rsa","description": "Check key permissions"}`}},
			Text:      "README.md describes a demo project. Now checking the key.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, tt.fixture)
			got, err := ParseResponse(tt.ep, body, tt.sse, full)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Endpoint = tt.ep
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
			assertNoSecret(t, got)

			if tt.sse {
				// Fed in small pieces, the stream folds to the same result.
				s := NewStream(tt.ep, full)
				for off := 0; off < len(body); off += 7 {
					s.Feed(body[off:min(off+7, len(body))])
				}
				if r := s.Result(); !reflect.DeepEqual(*r, *got) {
					t.Errorf("chunked stream differs:\n%+v", *r)
				}
			}

			meta, _ := ParseResponse(tt.ep, body, tt.sse, Options{Capture: CaptureMetadata})
			if meta.Text != "" || len(meta.ToolCalls) != len(want.ToolCalls) || meta.Usage != want.Usage {
				t.Errorf("metadata: %+v", meta)
			}
			for i, tc := range meta.ToolCalls {
				if tc.Input != "" || tc.Name != want.ToolCalls[i].Name || tc.ID != want.ToolCalls[i].ID {
					t.Errorf("metadata tool call: %+v", tc)
				}
			}
			off, _ := ParseResponse(tt.ep, body, tt.sse, Options{})
			if off.Text != "" || off.ToolCalls != nil || off.Usage != want.Usage || off.Model != want.Model {
				t.Errorf("off: %+v", off)
			}
		})
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		ep   Endpoint
		body string
		sse  bool
		want string
	}{
		{Endpoint{API: AnthropicMessages}, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, false, "overloaded_error"},
		{Endpoint{API: AnthropicMessages}, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}\n\n", true, "rate_limit_error"},
		{Endpoint{API: OpenAIChatCompletions}, `{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, false, "invalid_request_error"},
		{Endpoint{API: OpenAIChatCompletions}, `{"error":{"message":"m","type":"","code":429}}`, false, "429"},
		{Endpoint{API: OpenAIResponses}, "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"x\"}\n\n", true, "server_error"},
		{Endpoint{API: GeminiGenerateContent}, `{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}`, false, "RESOURCE_EXHAUSTED"},
		{Endpoint{API: GeminiGenerateContent}, `[{"error":{"code":400,"status":"INVALID_ARGUMENT"}}]`, false, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		r, err := ParseResponse(tt.ep, []byte(tt.body), tt.sse, full)
		if err != nil || r.ErrorType != tt.want {
			t.Errorf("%s: %+v %v", tt.body, r, err)
		}
	}
}

func TestResponseVariants(t *testing.T) {
	// Gemini without alt=sse: a JSON array, here cut inside its last element.
	arr := `[{"candidates":[{"content":{"role":"model","parts":[{"text":"a"}]}}],"modelVersion":"gemini-2.5-flash"},` +
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"b"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}},` +
		`{"candidates":[{"content":{"role":"mo`
	r, err := ParseResponse(Endpoint{API: GeminiGenerateContent}, []byte(arr), false, full)
	if err != nil || r.Text != "ab" || !r.Partial || !r.Streamed || r.Usage.OutputTokens != 2 || r.Model != "gemini-2.5-flash" {
		t.Errorf("gemini array: %+v %v", r, err)
	}
	// Code Assist wraps each chunk in {"response": …}.
	wrapped := "data: {\"response\":{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":\"STOP\"}],\"modelVersion\":\"gemini-2.5-pro\"},\"traceId\":\"t\"}\r\n\r\n"
	r, _ = ParseResponse(Endpoint{API: GeminiGenerateContent}, []byte(wrapped), true, full)
	if r.Text != "ok" || r.Model != "gemini-2.5-pro" || r.Partial {
		t.Errorf("code assist: %+v", r)
	}
	// Responses: non-streamed object, text output, incomplete status.
	obj := `{"id":"resp_1","model":"gpt-5","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},` +
		`"output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"partial answer"}]},` +
		`{"type":"custom_tool_call","call_id":"c1","name":"apply_patch","input":"*** Begin Patch"},{"type":"web_search_call","id":"ws_1","action":{"query":"q"}}],` +
		`"usage":{"input_tokens":10,"output_tokens":20}}`
	r, _ = ParseResponse(Endpoint{API: OpenAIResponses}, []byte(obj), false, full)
	want := []ToolCall{{ID: "c1", Name: "apply_patch", Input: "*** Begin Patch"}, {ID: "ws_1", Name: "web_search", Input: `{"query":"q"}`}}
	if r.Text != "partial answer" || !reflect.DeepEqual(r.FinishReasons, []string{"max_output_tokens"}) || !reflect.DeepEqual(r.ToolCalls, want) {
		t.Errorf("responses object: %+v", r)
	}
	// A Responses stream cut before response.completed still yields the
	// tool call from its items and deltas.
	stream := string(fixture(t, "openai_responses_stream.sse"))
	cut := stream[:strings.Index(stream, "event: response.function_call_arguments.done")]
	r, _ = ParseResponse(Endpoint{API: OpenAIResponses}, []byte(cut), true, full)
	if !r.Partial || len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "shell" || !strings.Contains(r.ToolCalls[0].Input, "[REDACTED]@github.com") || r.HasUsage {
		t.Errorf("cut responses stream: %+v", r)
	}
	// An Anthropic stream cut mid-way is Partial with what it had.
	ant := string(fixture(t, "anthropic_stream.sse"))
	r, _ = ParseResponse(Endpoint{API: AnthropicMessages}, []byte(ant[:len(ant)/2]), true, full)
	if !r.Partial || r.Model != "claude-sonnet-4-5-20250929" || r.Usage.InputTokens != 2048+512+10240 {
		t.Errorf("cut anthropic stream: %+v", r)
	}
	// Chat stream without [DONE] but with a finish reason is complete.
	chat := string(fixture(t, "openai_chat_stream.sse"))
	r, _ = ParseResponse(Endpoint{API: OpenAIChatCompletions}, []byte(chat[:strings.Index(chat, "data: [DONE]")]), true, full)
	if r.Partial {
		t.Errorf("chat without DONE: %+v", r)
	}
	if _, err := ParseResponse(Endpoint{API: AnthropicMessages}, []byte("<html>"), false, full); err != ErrNotJSON {
		t.Errorf("html: %v", err)
	}
}

func TestTextCap(t *testing.T) {
	long := strings.Repeat("é", 20000) // 2 bytes each
	body := `{"model":"m","messages":[{"role":"user","content":"` + long + ` sk-ant-api03-` + secretAnt + `"}]}`
	r, _ := ParseRequest(Endpoint{API: AnthropicMessages}, []byte(body), Options{Capture: CaptureFull, MaxTextBytes: 1001})
	if !r.PromptTruncated || len(r.Prompt) != 1000 || r.PromptBytes != len(long)+len(" sk-ant-api03-"+secretAnt) {
		t.Errorf("cap: truncated %v len %d bytes %d", r.PromptTruncated, len(r.Prompt), r.PromptBytes)
	}
	// A secret straddling the cut is redacted whole, not cut into a
	// shorter, unrecognised token.
	body = `{"model":"m","messages":[{"role":"user","content":"xxxx ghp_` + secretGH + `"}]}`
	r, _ = ParseRequest(Endpoint{API: AnthropicMessages}, []byte(body), Options{Capture: CaptureFull, MaxTextBytes: 12})
	if strings.Contains(r.Prompt, "Zx8") || r.Prompt != "xxxx [REDACT" {
		t.Errorf("straddling secret: %q", r.Prompt)
	}
}

// assertNoSecret fails when any string field holds a fixture secret.
func assertNoSecret(t *testing.T, v any) {
	t.Helper()
	var walk func(reflect.Value)
	walk = func(x reflect.Value) {
		switch x.Kind() {
		case reflect.Pointer:
			if !x.IsNil() {
				walk(x.Elem())
			}
		case reflect.Struct:
			for i := 0; i < x.NumField(); i++ {
				walk(x.Field(i))
			}
		case reflect.Slice:
			for i := 0; i < x.Len(); i++ {
				walk(x.Index(i))
			}
		case reflect.String:
			s := x.String()
			for _, sec := range []string{"Qx7Lm2Np9", "Vw7Yb3Nc6Hd1", "hunter2"} {
				if strings.Contains(s, sec) {
					t.Errorf("secret %q leaked in %q", sec, s)
				}
			}
		}
	}
	walk(reflect.ValueOf(v))
}
