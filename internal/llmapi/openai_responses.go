package llmapi

import (
	"bytes"
	"encoding/json"
	"strings"
)

type responsesReq struct {
	Model           string          `json:"model"`
	Stream          bool            `json:"stream"`
	MaxOutputTokens int64           `json:"max_output_tokens"`
	Input           json.RawMessage `json:"input"`
	Tools           []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
}

type responsesInputItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

func responsesRequest(r *Request, body []byte, opt Options) error {
	var req responsesReq
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if req.Model != "" {
		r.Model = req.Model
	}
	r.Stream = r.Stream || req.Stream
	r.MaxTokens = req.MaxOutputTokens
	for _, t := range req.Tools {
		name := t.Name
		if name == "" {
			name = t.Type // built-in tools: web_search, local_shell, …
		}
		r.Tools = append(r.Tools, name)
	}
	in := bytes.TrimSpace(req.Input)
	switch {
	case len(in) > 0 && in[0] == '"':
		r.Messages = 1
		if text, ok := contentText(in); ok {
			setPrompt(r, text, opt)
		}
	case len(in) > 0 && in[0] == '[':
		var items []responsesInputItem
		if err := json.Unmarshal(in, &items); err != nil {
			return err
		}
		r.Messages = len(items)
		for i := len(items) - 1; i >= 0; i-- {
			it := items[i]
			if it.Role != "user" || (it.Type != "" && it.Type != "message") {
				continue
			}
			if text, ok := contentText(it.Content, "input_text", "text"); ok {
				setPrompt(r, text, opt)
				break
			}
		}
	}
	opt.scrubRequest(r)
	return nil
}

type responsesItem struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Input     string          `json:"input"`
	Action    json.RawMessage `json:"action"`
	Content   []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
}

// call returns the tool call an output item stands for.
func (it *responsesItem) call() (ToolCall, string, bool) {
	id := it.CallID
	if id == "" {
		id = it.ID
	}
	switch it.Type {
	case "function_call", "mcp_call":
		return ToolCall{ID: id, Name: it.Name}, it.Arguments, true
	case "custom_tool_call":
		return ToolCall{ID: id, Name: it.Name}, it.Input, true
	case "local_shell_call":
		return ToolCall{ID: id, Name: "local_shell"}, string(it.Action), true
	}
	if name, ok := strings.CutSuffix(it.Type, "_call"); ok && name != "" {
		// Built-in tools: web_search_call, file_search_call, …
		return ToolCall{ID: id, Name: name}, string(it.Action), true
	}
	return ToolCall{}, "", false
}

type responsesObj struct {
	ID     string          `json:"id"`
	Model  string          `json:"model"`
	Status string          `json:"status"`
	Output []responsesItem `json:"output"`
	Usage  *struct {
		InputTokens        int64 `json:"input_tokens"`
		OutputTokens       int64 `json:"output_tokens"`
		InputTokensDetails *struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputTokensDetails *struct {
			ReasoningTokens int64 `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
	} `json:"usage"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Error *openAIError `json:"error"`
}

// apply sets the response fields the object carries. The Responses API
// has no finish_reason: it is derived from status — "tool_calls" or "stop"
// when completed, the incomplete reason (e.g. "max_output_tokens"), or
// "error" when failed.
func (o *responsesObj) apply(r *Response, opt Options, withOutput bool) {
	if o.ID != "" {
		r.ID = o.ID
	}
	if o.Model != "" {
		r.Model = o.Model
	}
	if o.Error != nil {
		r.ErrorType = o.Error.typ()
	}
	if u := o.Usage; u != nil {
		r.HasUsage = true
		r.Usage = Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens}
		if u.InputTokensDetails != nil {
			r.Usage.CacheReadInputTokens = u.InputTokensDetails.CachedTokens
		}
		if u.OutputTokensDetails != nil {
			r.Usage.ReasoningTokens = u.OutputTokensDetails.ReasoningTokens
		}
	}
	if withOutput {
		var text strings.Builder
		r.ToolCalls = nil
		for i := range o.Output {
			it := &o.Output[i]
			if it.Type == "message" && opt.full() {
				for _, c := range it.Content {
					if c.Type == "output_text" {
						capped(&text, c.Text, opt.maxText())
					}
				}
				continue
			}
			if tc, input, ok := it.call(); ok && len(r.ToolCalls) < maxBlocks {
				toolInput(&tc, input, opt)
				r.ToolCalls = append(r.ToolCalls, tc)
			}
		}
		if opt.full() {
			r.Text, r.TextTruncated = opt.keepText(text.String())
		}
	}
	switch o.Status {
	case "completed":
		if len(r.ToolCalls) > 0 {
			addFinish(r, "tool_calls")
		} else {
			addFinish(r, "stop")
		}
	case "incomplete":
		if o.IncompleteDetails != nil && o.IncompleteDetails.Reason != "" {
			addFinish(r, o.IncompleteDetails.Reason)
		} else {
			addFinish(r, "incomplete")
		}
	case "failed":
		addFinish(r, "error")
	case "cancelled":
		addFinish(r, "cancelled")
	}
}

func responsesResponse(ep Endpoint, body []byte, opt Options) (*Response, error) {
	r := &Response{Endpoint: ep}
	var o responsesObj
	if err := json.Unmarshal(body, &o); err != nil {
		top := scanTop(body)
		if top == nil {
			return nil, ErrNotJSON
		}
		r.Partial = true
		r.ID, _ = top["id"].(string)
		r.Model, _ = top["model"].(string)
		return r, nil
	}
	o.apply(r, opt, true)
	opt.scrubResponse(r)
	return r, nil
}

// responsesFold folds a Responses stream. The terminal event
// (response.completed / .incomplete / .failed) carries the whole response
// object, which wins; the item and delta events before it are kept so that
// a stream cut before its end still yields its tool calls and text.
type responsesFold struct {
	opt   Options
	r     Response
	items slots[int, responsesItemState]
	text  strings.Builder
	final *responsesObj
}

type responsesItemState struct {
	item responsesItem
	args strings.Builder
}

type responsesEvent struct {
	Type        string         `json:"type"`
	Response    *responsesObj  `json:"response"`
	OutputIndex int            `json:"output_index"`
	Item        *responsesItem `json:"item"`
	Delta       string         `json:"delta"`
	Code        string         `json:"code"`
	Error       *openAIError   `json:"error"`
}

func newResponsesFold(ep Endpoint, opt Options) *responsesFold {
	return &responsesFold{opt: opt, r: Response{Endpoint: ep}}
}

func (f *responsesFold) event(typ string, data []byte) {
	var e responsesEvent
	if json.Unmarshal(data, &e) != nil {
		f.r.Partial = true
		return
	}
	if e.Type == "" {
		e.Type = typ
	}
	switch e.Type {
	case "response.created", "response.in_progress":
		if e.Response != nil {
			e.Response.apply(&f.r, f.opt, false)
		}
	case "response.output_item.added", "response.output_item.done":
		if e.Item == nil {
			return
		}
		st := f.items.get(e.OutputIndex)
		if st == nil {
			return
		}
		st.item = *e.Item
		if e.Type == "response.output_item.done" {
			st.args.Reset()
		}
	case "response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
		if st := f.items.get(e.OutputIndex); st != nil && f.opt.full() {
			capped(&st.args, e.Delta, f.opt.maxText())
		}
	case "response.output_text.delta":
		if f.opt.full() {
			capped(&f.text, e.Delta, f.opt.maxText())
		}
	case "response.completed", "response.incomplete", "response.failed":
		if e.Response != nil {
			f.final = e.Response
		}
	case "error":
		if e.Error != nil {
			f.r.ErrorType = e.Error.typ()
		} else {
			f.r.ErrorType = e.Code
		}
	}
}

func (f *responsesFold) result() *Response {
	r := f.r
	r.FinishReasons = append([]string(nil), f.r.FinishReasons...)
	if f.final != nil && len(f.final.Output) > 0 {
		f.final.apply(&r, f.opt, true)
		f.opt.scrubResponse(&r)
		return &r
	}
	// Cut short, or a final object without its output: use the folded
	// items.
	for _, st := range f.items.inOrder() {
		tc, input, ok := st.item.call()
		if !ok {
			continue
		}
		if st.args.Len() > 0 {
			input = st.args.String()
		}
		toolInput(&tc, input, f.opt)
		r.ToolCalls = append(r.ToolCalls, tc)
	}
	if f.opt.full() {
		r.Text, r.TextTruncated = f.opt.keepText(f.text.String())
	}
	if f.final != nil {
		f.final.apply(&r, f.opt, false)
	} else {
		r.Partial = true
	}
	f.opt.scrubResponse(&r)
	return &r
}
