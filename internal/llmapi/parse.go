package llmapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/agentwatch/agentwatch/internal/redact"
	"github.com/agentwatch/agentwatch/internal/sse"
)

// ErrNotJSON is returned when a body yields nothing at all.
var ErrNotJSON = errors.New("llmapi: body is not a JSON object")

// maxBlocks caps the content blocks / output items / tool calls tracked
// while folding a stream; a hostile stream cannot grow state beyond it.
const maxBlocks = 128

// slots holds the per-index state of a streamed response (content blocks,
// output items, tool calls) in first-seen order, at most maxBlocks of them,
// so a hostile stream cannot grow it.
type slots[K comparable, V any] struct {
	m     map[K]*V
	order []K
}

// get returns the state of k, created on first sight; nil once full.
func (s *slots[K, V]) get(k K) *V {
	if v, ok := s.m[k]; ok {
		return v
	}
	if len(s.m) >= maxBlocks {
		return nil
	}
	if s.m == nil {
		s.m = map[K]*V{}
	}
	v := new(V)
	s.m[k] = v
	s.order = append(s.order, k)
	return v
}

// inOrder returns the states in the order their indexes first appeared.
func (s *slots[K, V]) inOrder() []*V {
	out := make([]*V, len(s.order))
	for i, k := range s.order {
		out[i] = s.m[k]
	}
	return out
}

// ParseRequest extracts what the request body of a call to ep tells.
func ParseRequest(ep Endpoint, body []byte, opt Options) (*Request, error) {
	r := &Request{Endpoint: ep, Model: ep.Model, Stream: ep.Stream}
	var err error
	switch ep.API {
	case AnthropicMessages:
		err = anthropicRequest(r, body, opt)
	case OpenAIChatCompletions:
		err = chatRequest(r, body, opt)
	case OpenAIResponses:
		err = responsesRequest(r, body, opt)
	case GeminiGenerateContent:
		err = geminiRequest(r, body, opt)
	default:
		return nil, errors.New("llmapi: unknown API")
	}
	if err != nil {
		// Cut by the capture, most likely: keep the top-level scalars
		// that came before the cut.
		top := scanTop(body)
		if len(top) == 0 {
			return nil, ErrNotJSON
		}
		r.Partial = true
		if s, ok := top["model"].(string); ok && r.Model == "" {
			r.Model = s
		}
		if b, ok := top["stream"].(bool); ok {
			r.Stream = r.Stream || b
		}
		for _, k := range []string{"max_tokens", "max_completion_tokens", "max_output_tokens"} {
			if f, ok := top[k].(float64); ok && r.MaxTokens == 0 {
				r.MaxTokens = int64(f)
			}
		}
	} else if opt.metadata() {
		r.ToolResults = toolResults(ep.API, body, opt)
	}
	return r, nil
}

// ParseResponse extracts what a response body tells; isSSE says whether it
// is a text/event-stream. Gemini's streamGenerateContent without alt=sse
// sends a JSON array of responses, which is accepted too.
func ParseResponse(ep Endpoint, body []byte, isSSE bool, opt Options) (*Response, error) {
	if isSSE {
		s := NewStream(ep, opt)
		s.Feed(body)
		return s.Result(), nil
	}
	switch ep.API {
	case AnthropicMessages:
		return anthropicResponse(ep, body, opt)
	case OpenAIChatCompletions:
		return chatResponse(ep, body, opt)
	case OpenAIResponses:
		return responsesResponse(ep, body, opt)
	case GeminiGenerateContent:
		return geminiResponse(ep, body, opt)
	}
	return nil, errors.New("llmapi: unknown API")
}

// folder accumulates the events of one streamed response.
type folder interface {
	event(typ string, data []byte)
	result() *Response
}

// Stream folds a streamed (SSE) response event by event, so that a
// response can be followed while it arrives and its state stays bounded.
type Stream struct {
	parser sse.Parser
	f      folder
	emit   func(sse.Event)
}

// NewStream returns a Stream for a response from ep.
func NewStream(ep Endpoint, opt Options) *Stream {
	s := &Stream{}
	switch ep.API {
	case AnthropicMessages:
		s.f = newAnthropicFold(ep, opt)
	case OpenAIChatCompletions:
		s.f = newChatFold(ep, opt)
	case OpenAIResponses:
		s.f = newResponsesFold(ep, opt)
	default:
		s.f = newGeminiFold(ep, opt)
	}
	s.emit = s.Event
	return s
}

// Feed consumes raw event-stream bytes.
func (s *Stream) Feed(b []byte) { s.parser.Feed(b, s.emit) }

// Event consumes one parsed event.
func (s *Stream) Event(e sse.Event) { s.f.event(e.Type, e.Data) }

// Reset tells the stream that the capture lost bytes: the partial event is
// dropped and folding goes on with the next whole one.
func (s *Stream) Reset() { s.parser.Reset() }

// Result flushes a pending event and returns the response folded so far.
// It can be called again after more bytes.
func (s *Stream) Result() *Response {
	s.parser.Flush(s.emit)
	r := s.f.result()
	r.Streamed = true
	return r
}

// scanTop returns the top-level scalar fields of a JSON object that may be
// cut short, stopping at the cut. Nested values are skipped. It returns nil
// when b does not start a JSON object.
func scanTop(b []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	out := map[string]any{}
	for len(out) < 64 {
		t, err := dec.Token()
		if err != nil {
			break
		}
		key, ok := t.(string)
		if !ok {
			break
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		switch v[0] {
		case '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			var x any
			if json.Unmarshal(v, &x) == nil {
				out[key] = x
			}
		}
	}
	return out
}

// contentText returns the text of a message content that is either a JSON
// string or an array of parts, joining the parts whose type is one of
// textTypes (any type when textTypes is empty and the part has "text").
func contentText(raw json.RawMessage, textTypes ...string) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if json.Unmarshal(raw, &parts) != nil {
			return "", false
		}
		var b strings.Builder
		found := false
		for _, p := range parts {
			if p.Text == nil || (len(textTypes) > 0 && !oneOf(p.Type, textTypes)) {
				continue
			}
			if found {
				b.WriteByte('\n')
			}
			b.WriteString(*p.Text)
			found = true
		}
		return b.String(), found
	}
	return "", false
}

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

// setPrompt fills the prompt fields from the last user text.
func setPrompt(r *Request, text string, opt Options) {
	r.PromptBytes = len(text)
	if opt.full() {
		r.Prompt, r.PromptTruncated = opt.keepText(text)
	}
}

// capped appends s to b while b is under limit bytes; past it the text is
// cut later by keepText, so only a margin more is kept.
func capped(b *strings.Builder, s string, limit int) {
	if room := limit + 1024 - b.Len(); room > 0 {
		b.WriteString(s[:min(len(s), room)])
	}
}

// rawString turns a JSON value that may be a string, number or null into a
// string ("" for null or invalid).
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	return string(raw)
}

// toolInput redacts and caps a tool call's JSON input for full capture.
func toolInput(tc *ToolCall, input string, opt Options) {
	if !opt.full() {
		return
	}
	if strings.TrimSpace(input) == "" {
		input = "{}"
	}
	tc.Input, tc.InputTruncated = opt.keepText(redactCommands(input))
}

// redactCommands applies the command-line rules of package redact to the
// string values of a tool input — a shell tool's "command" string, or an
// argv array as Codex sends — which Text alone cannot read as commands
// ("curl -u user:PASSWORD"). The JSON is re-encoded only when something
// changed (keys then come out sorted). An input that does not parse is
// returned as is; Text still runs on it.
func redactCommands(input string) string {
	if len(input) > 1<<20 {
		return input
	}
	dec := json.NewDecoder(strings.NewReader(input))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return input
	}
	v, changed := redactValue(v, 0)
	if !changed {
		return input
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return input
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func redactValue(v any, depth int) (any, bool) {
	if depth > 32 {
		return v, false
	}
	switch x := v.(type) {
	case string:
		if r := redact.Command(x); r != x {
			return r, true
		}
	case []any:
		strs := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				strs = append(strs, s)
			}
		}
		if len(strs) == len(x) && len(x) > 0 {
			red := redact.Args(strs)
			if &red[0] == &strs[0] {
				return v, false
			}
			out := make([]any, len(red))
			for i, s := range red {
				out[i] = s
			}
			return out, true
		}
		changed := false
		for i, e := range x {
			if r, c := redactValue(e, depth+1); c {
				x[i], changed = r, true
			}
		}
		return x, changed
	case map[string]any:
		changed := false
		for k, e := range x {
			if r, c := redactValue(e, depth+1); c {
				x[k], changed = r, true
			}
		}
		return x, changed
	}
	return v, false
}

func addFinish(r *Response, reason string) {
	if reason == "" {
		return
	}
	for _, f := range r.FinishReasons {
		if f == reason {
			return
		}
	}
	r.FinishReasons = append(r.FinishReasons, reason)
}
