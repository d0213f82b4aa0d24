package llmapi

import (
	"encoding/json"
	"strings"
)

type anthropicReq struct {
	Model     string `json:"model"`
	Stream    bool   `json:"stream"`
	MaxTokens int64  `json:"max_tokens"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"tools"`
}

func anthropicRequest(r *Request, body []byte, opt Options) error {
	var req anthropicReq
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if req.Model != "" {
		r.Model = req.Model
	}
	r.Stream = r.Stream || req.Stream
	r.MaxTokens = req.MaxTokens
	r.Messages = len(req.Messages)
	for _, t := range req.Tools {
		name := t.Name
		if name == "" {
			name = t.Type
		}
		r.Tools = append(r.Tools, name)
	}
	// Claude Code sends tool results as user messages: the prompt is the
	// last user message that carries text.
	for i := len(req.Messages) - 1; i >= 0; i-- {
		m := req.Messages[i]
		if m.Role != "user" {
			continue
		}
		if text, ok := contentText(m.Content, "text"); ok {
			setPrompt(r, text, opt)
			break
		}
	}
	opt.scrubRequest(r)
	return nil
}

type anthropicUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

// merge takes the fields present in u: message_delta repeats only what
// changed (output_tokens, and in newer API versions the input counts).
func (a *anthropicUsage) merge(u *anthropicUsage) {
	if u == nil {
		return
	}
	if u.InputTokens != nil {
		a.InputTokens = u.InputTokens
	}
	if u.OutputTokens != nil {
		a.OutputTokens = u.OutputTokens
	}
	if u.CacheCreationInputTokens != nil {
		a.CacheCreationInputTokens = u.CacheCreationInputTokens
	}
	if u.CacheReadInputTokens != nil {
		a.CacheReadInputTokens = u.CacheReadInputTokens
	}
}

func (a *anthropicUsage) set(r *Response) {
	v := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	if a.InputTokens == nil && a.OutputTokens == nil {
		return
	}
	r.HasUsage = true
	r.Usage.CacheReadInputTokens = v(a.CacheReadInputTokens)
	r.Usage.CacheCreationInputTokens = v(a.CacheCreationInputTokens)
	r.Usage.InputTokens = v(a.InputTokens) + r.Usage.CacheReadInputTokens + r.Usage.CacheCreationInputTokens
	r.Usage.OutputTokens = v(a.OutputTokens)
}

type anthropicBlock struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Text  string          `json:"text"`
	Input json.RawMessage `json:"input"`
}

type anthropicMsg struct {
	Type       string           `json:"type"`
	ID         string           `json:"id"`
	Model      string           `json:"model"`
	StopReason string           `json:"stop_reason"`
	Content    []anthropicBlock `json:"content"`
	Usage      *anthropicUsage  `json:"usage"`
	Error      *struct {
		Type string `json:"type"`
	} `json:"error"`
}

func isAnthropicToolUse(t string) bool {
	return t == "tool_use" || t == "server_tool_use" || t == "mcp_tool_use"
}

func anthropicResponse(ep Endpoint, body []byte, opt Options) (*Response, error) {
	r := &Response{Endpoint: ep}
	var m anthropicMsg
	if err := json.Unmarshal(body, &m); err != nil {
		top := scanTop(body)
		if top == nil {
			return nil, ErrNotJSON
		}
		r.Partial = true
		r.ID, _ = top["id"].(string)
		r.Model, _ = top["model"].(string)
		if s, _ := top["stop_reason"].(string); s != "" {
			addFinish(r, s)
		}
		return r, nil
	}
	r.ID, r.Model = m.ID, m.Model
	if m.Error != nil {
		r.ErrorType = m.Error.Type
	}
	addFinish(r, m.StopReason)
	if m.Usage != nil {
		m.Usage.set(r)
	}
	var text strings.Builder
	for _, b := range m.Content {
		switch {
		case b.Type == "text" && opt.full():
			if text.Len() > 0 {
				text.WriteByte('\n')
			}
			capped(&text, b.Text, opt.maxText())
		case isAnthropicToolUse(b.Type) && len(r.ToolCalls) < maxBlocks:
			tc := ToolCall{ID: b.ID, Name: b.Name}
			toolInput(&tc, string(b.Input), opt)
			r.ToolCalls = append(r.ToolCalls, tc)
		}
	}
	if opt.full() {
		r.Text, r.TextTruncated = opt.keepText(text.String())
	}
	opt.scrubResponse(r)
	return r, nil
}

// anthropicFold folds a Messages stream: message_start, then per content
// block content_block_start / _delta / _stop, then message_delta (stop
// reason, usage) and message_stop.
type anthropicFold struct {
	opt    Options
	r      Response
	usage  anthropicUsage
	blocks slots[int, anthropicBlockState]
	done   bool
}

type anthropicBlockState struct {
	typ   string
	id    string
	name  string
	text  strings.Builder
	input strings.Builder
}

type anthropicEvent struct {
	Type         string          `json:"type"`
	Message      *anthropicMsg   `json:"message"`
	Index        int             `json:"index"`
	ContentBlock *anthropicBlock `json:"content_block"`
	Delta        *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthropicUsage `json:"usage"`
	Error *struct {
		Type string `json:"type"`
	} `json:"error"`
}

func newAnthropicFold(ep Endpoint, opt Options) *anthropicFold {
	return &anthropicFold{opt: opt, r: Response{Endpoint: ep}}
}

func (f *anthropicFold) event(typ string, data []byte) {
	var e anthropicEvent
	if json.Unmarshal(data, &e) != nil {
		f.r.Partial = true
		return
	}
	if e.Type == "" {
		e.Type = typ
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil {
			f.r.ID, f.r.Model = e.Message.ID, e.Message.Model
			f.usage.merge(e.Message.Usage)
		}
	case "content_block_start":
		if e.ContentBlock == nil {
			return
		}
		b := f.blocks.get(e.Index)
		if b == nil {
			return
		}
		b.typ, b.id, b.name = e.ContentBlock.Type, e.ContentBlock.ID, e.ContentBlock.Name
		if e.ContentBlock.Type == "text" && f.opt.full() {
			capped(&b.text, e.ContentBlock.Text, f.opt.maxText())
		}
		// A non-empty start input is complete (server tools); streamed
		// ones start as {} and arrive in input_json_delta.
		if in := string(e.ContentBlock.Input); f.opt.full() && in != "" && in != "{}" {
			capped(&b.input, in, f.opt.maxText())
		}
	case "content_block_delta":
		if e.Delta == nil || !f.opt.full() {
			return
		}
		b := f.blocks.get(e.Index)
		if b == nil {
			return
		}
		switch e.Delta.Type {
		case "text_delta":
			capped(&b.text, e.Delta.Text, f.opt.maxText())
		case "input_json_delta":
			capped(&b.input, e.Delta.PartialJSON, f.opt.maxText())
		}
	case "message_delta":
		if e.Delta != nil {
			addFinish(&f.r, e.Delta.StopReason)
		}
		f.usage.merge(e.Usage)
	case "message_stop":
		f.done = true
	case "error":
		if e.Error != nil {
			f.r.ErrorType = e.Error.Type
		}
		f.done = true
	}
}

func (f *anthropicFold) result() *Response {
	r := f.r
	r.FinishReasons = append([]string(nil), f.r.FinishReasons...)
	r.Partial = r.Partial || !f.done
	f.usage.set(&r)
	var text strings.Builder
	for _, b := range f.blocks.inOrder() {
		switch {
		case b.typ == "text" && f.opt.full():
			if text.Len() > 0 {
				text.WriteByte('\n')
			}
			capped(&text, b.text.String(), f.opt.maxText())
		case isAnthropicToolUse(b.typ):
			tc := ToolCall{ID: b.id, Name: b.name}
			toolInput(&tc, b.input.String(), f.opt)
			r.ToolCalls = append(r.ToolCalls, tc)
		}
	}
	if f.opt.full() {
		r.Text, r.TextTruncated = f.opt.keepText(text.String())
	}
	f.opt.scrubResponse(&r)
	return &r
}
