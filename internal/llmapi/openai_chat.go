package llmapi

import (
	"encoding/json"
	"strings"
)

type chatReq struct {
	Model               string `json:"model"`
	Stream              bool   `json:"stream"`
	MaxTokens           int64  `json:"max_tokens"`
	MaxCompletionTokens int64  `json:"max_completion_tokens"`
	Messages            []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function *struct {
			Name string `json:"name"`
		} `json:"function"`
		Custom *struct {
			Name string `json:"name"`
		} `json:"custom"`
	} `json:"tools"`
	Functions []struct {
		Name string `json:"name"`
	} `json:"functions"`
}

func chatRequest(r *Request, body []byte, opt Options) error {
	var req chatReq
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if req.Model != "" {
		r.Model = req.Model
	}
	r.Stream = r.Stream || req.Stream
	r.MaxTokens = max(req.MaxTokens, req.MaxCompletionTokens)
	r.Messages = len(req.Messages)
	for _, t := range req.Tools {
		switch {
		case t.Function != nil:
			r.Tools = append(r.Tools, t.Function.Name)
		case t.Custom != nil:
			r.Tools = append(r.Tools, t.Custom.Name)
		default:
			r.Tools = append(r.Tools, t.Type)
		}
	}
	for _, f := range req.Functions {
		r.Tools = append(r.Tools, f.Name)
	}
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role != "user" {
			continue
		}
		if text, ok := contentText(req.Messages[i].Content, "text"); ok {
			setPrompt(r, text, opt)
			break
		}
	}
	opt.scrubRequest(r)
	return nil
}

type chatToolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
	Custom *struct {
		Name  string `json:"name"`
		Input string `json:"input"`
	} `json:"custom"`
}

type chatMsg struct {
	Content      json.RawMessage `json:"content"`
	ToolCalls    []chatToolCall  `json:"tool_calls"`
	FunctionCall *struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function_call"`
}

type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

func (u *chatUsage) set(r *Response) {
	r.HasUsage = true
	r.Usage.InputTokens = u.PromptTokens
	r.Usage.OutputTokens = u.CompletionTokens
	if u.PromptTokensDetails != nil {
		r.Usage.CacheReadInputTokens = u.PromptTokensDetails.CachedTokens
	}
	if u.CompletionTokensDetails != nil {
		r.Usage.ReasoningTokens = u.CompletionTokensDetails.ReasoningTokens
	}
}

type openAIError struct {
	Type string          `json:"type"`
	Code json.RawMessage `json:"code"`
}

func (e *openAIError) typ() string {
	if e.Type != "" {
		return e.Type
	}
	return rawString(e.Code)
}

type chatResp struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index        int      `json:"index"`
		Message      *chatMsg `json:"message"`
		Delta        *chatMsg `json:"delta"`
		FinishReason string   `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage   `json:"usage"`
	Error *openAIError `json:"error"`
}

func chatResponse(ep Endpoint, body []byte, opt Options) (*Response, error) {
	r := &Response{Endpoint: ep}
	var c chatResp
	if err := json.Unmarshal(body, &c); err != nil {
		top := scanTop(body)
		if top == nil {
			return nil, ErrNotJSON
		}
		r.Partial = true
		r.ID, _ = top["id"].(string)
		r.Model, _ = top["model"].(string)
		return r, nil
	}
	r.ID, r.Model = c.ID, c.Model
	if c.Error != nil {
		r.ErrorType = c.Error.typ()
	}
	if c.Usage != nil {
		c.Usage.set(r)
	}
	var text strings.Builder
	for _, ch := range c.Choices {
		addFinish(r, ch.FinishReason)
		m := ch.Message
		if m == nil {
			continue
		}
		if s, ok := contentText(m.Content, "text"); ok && opt.full() && ch.Index == 0 {
			capped(&text, s, opt.maxText())
		}
		for _, tc := range m.ToolCalls {
			if len(r.ToolCalls) >= maxBlocks {
				break
			}
			r.ToolCalls = append(r.ToolCalls, chatCall(tc.ID, tc, opt))
		}
		if m.FunctionCall != nil && len(r.ToolCalls) < maxBlocks {
			call := ToolCall{Name: m.FunctionCall.Name}
			toolInput(&call, m.FunctionCall.Arguments, opt)
			r.ToolCalls = append(r.ToolCalls, call)
		}
	}
	if opt.full() {
		r.Text, r.TextTruncated = opt.keepText(text.String())
	}
	opt.scrubResponse(r)
	return r, nil
}

func chatCall(id string, tc chatToolCall, opt Options) ToolCall {
	call := ToolCall{ID: id, Name: tc.Function.Name}
	input := tc.Function.Arguments
	if tc.Custom != nil {
		call.Name, input = tc.Custom.Name, tc.Custom.Input
	}
	toolInput(&call, input, opt)
	return call
}

// chatFold folds Chat Completions chunks: choices[].delta carries text and
// tool calls whose arguments arrive in pieces keyed by the call's index;
// the final chunk (with stream_options.include_usage) has the usage and
// no choices; "[DONE]" ends the stream.
type chatFold struct {
	opt   Options
	r     Response
	text  strings.Builder
	calls slots[[2]int, chatCallState]
	done  bool
	fin   bool
}

type chatCallState struct {
	id, name string
	args     strings.Builder
}

func newChatFold(ep Endpoint, opt Options) *chatFold {
	return &chatFold{opt: opt, r: Response{Endpoint: ep}}
}

func (f *chatFold) event(_ string, data []byte) {
	if strings.TrimSpace(string(data)) == "[DONE]" {
		f.done = true
		return
	}
	var c chatResp
	if json.Unmarshal(data, &c) != nil {
		f.r.Partial = true
		return
	}
	if f.r.ID == "" {
		f.r.ID = c.ID
	}
	if f.r.Model == "" {
		f.r.Model = c.Model
	}
	if c.Error != nil {
		f.r.ErrorType = c.Error.typ()
		f.done = true
	}
	if c.Usage != nil {
		c.Usage.set(&f.r)
	}
	for _, ch := range c.Choices {
		if ch.FinishReason != "" {
			addFinish(&f.r, ch.FinishReason)
			f.fin = true
		}
		d := ch.Delta
		if d == nil {
			continue
		}
		if f.opt.full() && ch.Index == 0 {
			if s, ok := contentText(d.Content, "text"); ok {
				capped(&f.text, s, f.opt.maxText())
			}
		}
		for _, tc := range d.ToolCalls {
			st := f.calls.get([2]int{ch.Index, tc.Index})
			if st == nil {
				continue
			}
			if tc.ID != "" {
				st.id = tc.ID
			}
			if tc.Function.Name != "" {
				st.name = tc.Function.Name
			}
			if f.opt.full() {
				capped(&st.args, tc.Function.Arguments, f.opt.maxText())
			}
		}
	}
}

func (f *chatFold) result() *Response {
	r := f.r
	r.FinishReasons = append([]string(nil), f.r.FinishReasons...)
	r.Partial = r.Partial || !(f.done || f.fin)
	for _, st := range f.calls.inOrder() {
		call := ToolCall{ID: st.id, Name: st.name}
		toolInput(&call, st.args.String(), f.opt)
		r.ToolCalls = append(r.ToolCalls, call)
	}
	if f.opt.full() {
		r.Text, r.TextTruncated = f.opt.keepText(f.text.String())
	}
	f.opt.scrubResponse(&r)
	return &r
}
