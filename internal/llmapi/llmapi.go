// Package llmapi extracts what agentwatch reports about LLM calls from the
// JSON bodies seen in TLS plaintext: the provider and model, the last user
// prompt, the tools offered and called, token usage and why generation
// stopped. It understands the Anthropic Messages API, the OpenAI Chat
// Completions and Responses APIs, and Gemini generateContent /
// streamGenerateContent (including the Code Assist wrapping Gemini CLI
// uses), whole or streamed as Server-Sent Events.
//
// Bodies may be cut short by the capture. Parsing then falls back to the
// top-level fields that precede the cut (model, stream, …) and marks the
// result Partial, rather than failing.
//
// Every text kept (prompt, response text, tool-call input) has passed
// through redact.Text, and only as much is kept as the CaptureMode allows.
package llmapi

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agentwatch/agentwatch/internal/redact"
)

// API is the wire format of a call.
type API uint8

const (
	APIUnknown API = iota
	AnthropicMessages
	OpenAIChatCompletions
	OpenAIResponses
	GeminiGenerateContent
)

func (a API) String() string {
	switch a {
	case AnthropicMessages:
		return "anthropic.messages"
	case OpenAIChatCompletions:
		return "openai.chat_completions"
	case OpenAIResponses:
		return "openai.responses"
	case GeminiGenerateContent:
		return "gemini.generate_content"
	}
	return "unknown"
}

// Provider names, as gen_ai.provider.name values.
const (
	ProviderAnthropic   = "anthropic"
	ProviderOpenAI      = "openai"
	ProviderAzureOpenAI = "azure.ai.openai"
	ProviderGemini      = "gcp.gemini"
	ProviderVertexAI    = "gcp.vertex_ai"
	ProviderDeepSeek    = "deepseek"
	ProviderGroq        = "groq"
	ProviderMistral     = "mistral_ai"
	ProviderXAI         = "x_ai"
	ProviderPerplexity  = "perplexity"
)

// Endpoint is what the request line and Host tell about a call.
type Endpoint struct {
	API      API
	Provider string
	// Model is set when the path names it (Gemini, Vertex AI).
	Model string
	// Stream is set when the path asks for a stream (streamGenerateContent,
	// streamRawPredict); other APIs say so in the body.
	Stream bool
}

// Detect identifies the API of a request from its Host header and target
// (path, query allowed). ok is false for anything that is not an LLM call
// this package parses. The provider comes from the host when it is a known
// one and otherwise from the API's origin, so that an agent pointed at a
// local or proxy server is still attributed (an OpenAI-compatible server is
// reported as "openai").
func Detect(host, target string) (ep Endpoint, ok bool) {
	path := target
	if k := strings.IndexAny(path, "?#"); k >= 0 {
		path = path[:k]
	}
	host = strings.ToLower(host)
	if h, _, found := strings.Cut(host, ":"); found && !strings.Contains(h, "]") {
		host = h
	}
	switch {
	case path == "/v1/messages" || path == "/messages" || strings.HasSuffix(path, "/anthropic/v1/messages"):
		ep.API, ep.Provider = AnthropicMessages, ProviderAnthropic
	case strings.Contains(path, "/publishers/anthropic/models/") &&
		(strings.HasSuffix(path, ":rawPredict") || strings.HasSuffix(path, ":streamRawPredict")):
		ep.API, ep.Provider = AnthropicMessages, ProviderVertexAI
		ep.Model = modelFromPath(path, "/publishers/anthropic/models/")
		ep.Stream = strings.HasSuffix(path, ":streamRawPredict")
	case strings.HasSuffix(path, "/chat/completions"):
		ep.API, ep.Provider = OpenAIChatCompletions, ProviderOpenAI
	case path == "/v1/responses" || path == "/responses" || strings.HasSuffix(path, "/openai/v1/responses") ||
		strings.HasSuffix(path, "/codex/responses"):
		ep.API, ep.Provider = OpenAIResponses, ProviderOpenAI
	case strings.HasSuffix(path, ":generateContent") || strings.HasSuffix(path, ":streamGenerateContent"):
		ep.API, ep.Provider = GeminiGenerateContent, ProviderGemini
		ep.Stream = strings.HasSuffix(path, ":streamGenerateContent")
		if strings.Contains(path, "/models/") {
			ep.Model = modelFromPath(path, "/models/")
		}
	default:
		return Endpoint{}, false
	}
	if p := hostProvider(host, ep.API); p != "" {
		ep.Provider = p
	}
	return ep, true
}

func modelFromPath(path, marker string) string {
	k := strings.LastIndex(path, marker)
	m := path[k+len(marker):]
	if c := strings.IndexByte(m, ':'); c >= 0 {
		m = m[:c]
	}
	return m
}

func hostProvider(host string, api API) string {
	switch {
	case host == "api.anthropic.com":
		return ProviderAnthropic
	case host == "api.openai.com", host == "chatgpt.com":
		return ProviderOpenAI
	case strings.HasSuffix(host, ".openai.azure.com"):
		return ProviderAzureOpenAI
	case strings.HasSuffix(host, "aiplatform.googleapis.com"):
		return ProviderVertexAI
	case host == "generativelanguage.googleapis.com", host == "cloudcode-pa.googleapis.com":
		return ProviderGemini
	case host == "api.deepseek.com":
		return ProviderDeepSeek
	case host == "api.groq.com":
		return ProviderGroq
	case host == "api.mistral.ai":
		return ProviderMistral
	case host == "api.x.ai":
		return ProviderXAI
	case host == "api.perplexity.ai":
		return ProviderPerplexity
	}
	return ""
}

// CaptureMode decides how much conversation content is kept.
type CaptureMode uint8

const (
	// CaptureOff keeps no conversation content: provider, model, token
	// usage, finish reasons, response id and error type only.
	CaptureOff CaptureMode = iota
	// CaptureMetadata adds the shape of the conversation without its
	// words: tool names (declared and called), tool-call ids, message
	// count and prompt size.
	CaptureMetadata
	// CaptureFull adds the last user prompt, the response text and the
	// tool-call inputs, all redacted.
	CaptureFull
)

func (m CaptureMode) String() string {
	switch m {
	case CaptureMetadata:
		return "metadata"
	case CaptureFull:
		return "full"
	}
	return "off"
}

// ParseCaptureMode parses "off", "metadata" or "full".
func ParseCaptureMode(s string) (CaptureMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "":
		return CaptureOff, nil
	case "metadata":
		return CaptureMetadata, nil
	case "full":
		return CaptureFull, nil
	}
	return CaptureOff, fmt.Errorf("llmapi: capture mode %q: want off, metadata or full", s)
}

// Options control extraction.
type Options struct {
	Capture CaptureMode
	// MaxTextBytes caps each text kept (prompt, response text, one
	// tool-call input); 0 means 16 KiB.
	MaxTextBytes int
	// Redact, when set, runs on every text kept after redact.Text: the
	// session's secret scanner (file fingerprints, encoded secrets).
	Redact func(string) string
}

const defaultMaxText = 16 << 10

func (o Options) maxText() int {
	if o.MaxTextBytes > 0 {
		return o.MaxTextBytes
	}
	return defaultMaxText
}

func (o Options) metadata() bool { return o.Capture >= CaptureMetadata }
func (o Options) full() bool     { return o.Capture >= CaptureFull }

// keepText redacts s and cuts it to the cap on a UTF-8 boundary. Only the
// start of a long text is redacted, with a margin past the cut so that a
// secret straddling the cut is still recognised whole.
func (o Options) keepText(s string) (string, bool) {
	limit := o.maxText()
	truncated := false
	if len(s) > limit+1024 {
		s = s[:limit+1024]
		truncated = true
	}
	s = redact.Text(s)
	if o.Redact != nil {
		s = o.Redact(s)
	}
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
		truncated = true
	}
	return s, truncated
}

// Request is what a call's request body tells.
type Request struct {
	Endpoint
	Model     string
	Stream    bool
	MaxTokens int64
	// Partial is set when the body did not parse whole (cut by the
	// capture); the fields before the cut are filled.
	Partial bool

	// Metadata and up.
	Messages    int      // messages (or contents/input items) in the conversation
	Tools       []string // names of the tools offered
	PromptBytes int      // size of the last user prompt text
	// ToolResults are the results of the model's tool calls this request
	// carries back (its trailing tool messages): IDs and up (metadata),
	// content too (full, redacted). Nil when the body is Partial.
	ToolResults []ToolResult

	// Full only, redacted.
	Prompt          string // text of the last user message that has text
	PromptTruncated bool
}

// Usage is token accounting, normalised across APIs: InputTokens includes
// cached input (Anthropic reports those apart; they are added here, as the
// gen_ai.usage.input_tokens convention asks), and OutputTokens includes
// reasoning.
type Usage struct {
	InputTokens              int64
	OutputTokens             int64
	CacheReadInputTokens     int64
	CacheCreationInputTokens int64
	ReasoningTokens          int64
}

// ToolCall is a tool invocation the model asked for.
type ToolCall struct {
	ID   string
	Name string
	// Input is the JSON arguments, redacted (full capture only).
	Input          string
	InputTruncated bool
}

// Response is what a call's response body (whole or streamed) tells.
type Response struct {
	Endpoint
	ID            string
	Model         string
	Streamed      bool
	FinishReasons []string
	Usage         Usage
	HasUsage      bool
	// ErrorType is the API's error type or status for an error body or
	// stream error event (e.g. "overloaded_error", "RESOURCE_EXHAUSTED").
	ErrorType string
	// Partial is set when the body did not parse whole or a stream ended
	// before its final event.
	Partial bool

	// Metadata and up: Name and ID of each call; full: Input too.
	ToolCalls []ToolCall

	// Full only, redacted.
	Text          string
	TextTruncated bool
}

// scrubRequest drops what the capture mode does not allow.
func (o Options) scrubRequest(r *Request) {
	if !o.metadata() {
		r.Messages, r.Tools, r.PromptBytes = 0, nil, 0
	}
	if !o.full() {
		r.Prompt, r.PromptTruncated = "", false
	}
}

// scrubResponse drops what the capture mode does not allow.
func (o Options) scrubResponse(r *Response) {
	if !o.metadata() {
		r.ToolCalls = nil
	}
	if !o.full() {
		r.Text, r.TextTruncated = "", false
		for i := range r.ToolCalls {
			r.ToolCalls[i].Input, r.ToolCalls[i].InputTruncated = "", false
		}
	}
}
