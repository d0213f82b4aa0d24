package llmapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func seedFixtures(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"model":`))
	f.Add([]byte(`[{"error":{}}`))
	f.Add([]byte("data: [DONE]\n\n"))
}

// fuzzAPI runs every entry point for ep on data and checks the caps.
func fuzzAPI(t *testing.T, ep Endpoint, data []byte) {
	opt := Options{Capture: CaptureFull, MaxTextBytes: 256}
	if r, err := ParseRequest(ep, data, opt); err == nil {
		if len(r.Prompt) > 256 {
			t.Fatalf("prompt %d bytes", len(r.Prompt))
		}
		if len(r.ToolResults) > maxBlocks {
			t.Fatalf("%d tool results", len(r.ToolResults))
		}
		for _, tr := range r.ToolResults {
			if len(tr.Content) > 256 {
				t.Fatalf("tool result %d bytes", len(tr.Content))
			}
		}
	}
	for _, isSSE := range []bool{false, true} {
		r, err := ParseResponse(ep, data, isSSE, opt)
		if err != nil {
			continue
		}
		if len(r.Text) > 256 || len(r.ToolCalls) > maxBlocks {
			t.Fatalf("text %d bytes, %d tool calls", len(r.Text), len(r.ToolCalls))
		}
		for _, tc := range r.ToolCalls {
			if len(tc.Input) > 256 {
				t.Fatalf("tool input %d bytes", len(tc.Input))
			}
		}
		off, _ := ParseResponse(ep, data, isSSE, Options{})
		if off.Text != "" || off.ToolCalls != nil {
			t.Fatalf("capture off kept content: %+v", off)
		}
	}
	// Split arbitrarily, a stream folds as it does whole.
	if len(data) > 3 {
		s := NewStream(ep, opt)
		k := len(data) / 3
		s.Feed(data[:k])
		s.Feed(data[k:])
		whole, _ := ParseResponse(ep, data, true, opt)
		if got := s.Result(); got.Text != whole.Text || len(got.ToolCalls) != len(whole.ToolCalls) || got.Usage != whole.Usage {
			t.Fatalf("split stream differs")
		}
	}
}

func FuzzAnthropic(f *testing.F) {
	seedFixtures(f, "anthropic_request.json", "anthropic_response.json", "anthropic_stream.sse")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzAPI(t, Endpoint{API: AnthropicMessages, Provider: ProviderAnthropic}, data)
	})
}

func FuzzOpenAIChat(f *testing.F) {
	seedFixtures(f, "openai_chat_request.json", "openai_chat_response.json", "openai_chat_stream.sse")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzAPI(t, Endpoint{API: OpenAIChatCompletions, Provider: ProviderOpenAI}, data)
	})
}

func FuzzOpenAIResponses(f *testing.F) {
	seedFixtures(f, "openai_responses_request.json", "openai_responses_stream.sse")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzAPI(t, Endpoint{API: OpenAIResponses, Provider: ProviderOpenAI}, data)
	})
}

func FuzzGemini(f *testing.F) {
	seedFixtures(f, "gemini_request.json", "gemini_stream.sse")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzAPI(t, Endpoint{API: GeminiGenerateContent, Provider: ProviderGemini}, data)
	})
}

func FuzzDetect(f *testing.F) {
	f.Add("api.anthropic.com", "/v1/messages")
	f.Add("x", "/publishers/anthropic/models/:rawPredict")
	f.Add("[::1]:8080", "/v1/models/:generateContent")
	f.Fuzz(func(t *testing.T, host, target string) {
		if ep, ok := Detect(host, target); ok != (ep.API != APIUnknown) {
			t.Fatalf("%+v %v", ep, ok)
		}
	})
}

// benchRequest is an agent request grown to a realistic size: a long
// conversation whose last turn is a user prompt.
func benchRequest(b *testing.B) []byte {
	body := string(fixture(b, "anthropic_request.json"))
	turn := `{"role": "assistant", "content": [{"type": "text", "text": "` + strings.Repeat("Reading the parser and its tests. ", 60) + `"}]},` +
		`{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "` + strings.Repeat("func (p *Parser) Feed(b []byte) {} ", 60) + `"}]},`
	return []byte(strings.Replace(body, `"messages": [`, `"messages": [`+strings.Repeat(turn, 40), 1))
}

func BenchmarkAnthropicRequest(b *testing.B) {
	body := benchRequest(b)
	ep := Endpoint{API: AnthropicMessages, Provider: ProviderAnthropic}
	for _, mode := range []CaptureMode{CaptureMetadata, CaptureFull} {
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseRequest(ep, body, Options{Capture: mode}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAnthropicStream(b *testing.B) {
	var sb strings.Builder
	stream := string(fixture(b, "anthropic_stream.sse"))
	head, tail, _ := strings.Cut(stream, "event: content_block_stop")
	sb.WriteString(head)
	for i := 0; i < 500; i++ {
		sb.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" more words\"}}\n\n")
	}
	sb.WriteString("event: content_block_stop" + tail)
	body := []byte(sb.String())
	ep := Endpoint{API: AnthropicMessages, Provider: ProviderAnthropic}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseResponse(ep, body, true, Options{Capture: CaptureFull}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatStream(b *testing.B) {
	body := fixture(b, "openai_chat_stream.sse")
	ep := Endpoint{API: OpenAIChatCompletions, Provider: ProviderOpenAI}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseResponse(ep, body, true, Options{Capture: CaptureFull}); err != nil {
			b.Fatal(err)
		}
	}
}
