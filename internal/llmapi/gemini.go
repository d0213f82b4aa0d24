package llmapi

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

type geminiPart struct {
	Text         *string `json:"text"`
	Thought      bool    `json:"thought"`
	FunctionCall *struct {
		ID   string          `json:"id"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
}

type geminiContent struct {
	Role  string       `json:"role"`
	Parts []geminiPart `json:"parts"`
}

type geminiReq struct {
	// Code Assist (Gemini CLI with a Google login) wraps the request:
	// {"model": …, "project": …, "request": {…}}.
	Model            string                       `json:"model"`
	Request          *geminiReq                   `json:"request"`
	Contents         []geminiContent              `json:"contents"`
	Tools            []map[string]json.RawMessage `json:"tools"`
	GenerationConfig *struct {
		MaxOutputTokens int64 `json:"maxOutputTokens"`
	} `json:"generationConfig"`
}

func geminiRequest(r *Request, body []byte, opt Options) error {
	var req geminiReq
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if req.Model != "" {
		r.Model = strings.TrimPrefix(req.Model, "models/")
	}
	inner := &req
	if req.Request != nil {
		inner = req.Request
	}
	if inner.GenerationConfig != nil {
		r.MaxTokens = inner.GenerationConfig.MaxOutputTokens
	}
	r.Messages = len(inner.Contents)
	for _, t := range inner.Tools {
		if raw, ok := t["functionDeclarations"]; ok {
			var decls []struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &decls) == nil {
				for _, d := range decls {
					r.Tools = append(r.Tools, d.Name)
				}
			}
			continue
		}
		// Built-in tools are keys: googleSearch, codeExecution, urlContext.
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		r.Tools = append(r.Tools, keys...)
	}
	for i := len(inner.Contents) - 1; i >= 0; i-- {
		c := inner.Contents[i]
		if c.Role != "user" && c.Role != "" {
			continue
		}
		var b strings.Builder
		found := false
		for _, p := range c.Parts {
			if p.Text == nil || p.Thought {
				continue
			}
			if found {
				b.WriteByte('\n')
			}
			b.WriteString(*p.Text)
			found = true
		}
		if found {
			setPrompt(r, b.String(), opt)
			break
		}
	}
	opt.scrubRequest(r)
	return nil
}

type geminiResp struct {
	Response   *geminiResp `json:"response"` // Code Assist wrapping
	Candidates []struct {
		Content      *geminiContent `json:"content"`
		FinishReason string         `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata *struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
	ResponseID   string `json:"responseId"`
	Error        *struct {
		Status string          `json:"status"`
		Code   json.RawMessage `json:"code"`
	} `json:"error"`
}

// geminiFold folds GenerateContentResponse chunks: text and function calls
// come in parts of the first candidate, the finish reason and usage in
// the last chunks.
type geminiFold struct {
	opt  Options
	r    Response
	text strings.Builder
	fin  bool
}

func newGeminiFold(ep Endpoint, opt Options) *geminiFold {
	return &geminiFold{opt: opt, r: Response{Endpoint: ep}}
}

func (f *geminiFold) event(_ string, data []byte) {
	var g geminiResp
	if json.Unmarshal(data, &g) != nil {
		f.r.Partial = true
		return
	}
	f.chunk(&g)
}

func (f *geminiFold) chunk(g *geminiResp) {
	if g.Response != nil {
		g = g.Response
	}
	if g.ResponseID != "" {
		f.r.ID = g.ResponseID
	}
	if g.ModelVersion != "" {
		f.r.Model = g.ModelVersion
	}
	if g.Error != nil {
		f.r.ErrorType = g.Error.Status
		if f.r.ErrorType == "" {
			f.r.ErrorType = rawString(g.Error.Code)
		}
		f.fin = true
	}
	if u := g.UsageMetadata; u != nil {
		f.r.HasUsage = true
		f.r.Usage = Usage{
			InputTokens:          u.PromptTokenCount,
			OutputTokens:         u.CandidatesTokenCount + u.ThoughtsTokenCount,
			CacheReadInputTokens: u.CachedContentTokenCount,
			ReasoningTokens:      u.ThoughtsTokenCount,
		}
	}
	for i, c := range g.Candidates {
		if c.FinishReason != "" {
			addFinish(&f.r, c.FinishReason)
			f.fin = true
		}
		if c.Content == nil || i > 0 {
			continue
		}
		for _, p := range c.Content.Parts {
			switch {
			case p.FunctionCall != nil && len(f.r.ToolCalls) < maxBlocks:
				tc := ToolCall{ID: p.FunctionCall.ID, Name: p.FunctionCall.Name}
				toolInput(&tc, string(p.FunctionCall.Args), f.opt)
				f.r.ToolCalls = append(f.r.ToolCalls, tc)
			case p.Text != nil && !p.Thought && f.opt.full():
				capped(&f.text, *p.Text, f.opt.maxText())
			}
		}
	}
}

func (f *geminiFold) result() *Response {
	r := f.r
	r.FinishReasons = append([]string(nil), f.r.FinishReasons...)
	r.ToolCalls = append([]ToolCall(nil), f.r.ToolCalls...)
	r.Partial = r.Partial || !f.fin
	if f.opt.full() {
		r.Text, r.TextTruncated = f.opt.keepText(f.text.String())
	}
	f.opt.scrubResponse(&r)
	return &r
}

// geminiResponse parses a generateContent body, or a
// streamGenerateContent body sent without alt=sse: a JSON array of
// responses, possibly cut short.
func geminiResponse(ep Endpoint, body []byte, opt Options) (*Response, error) {
	f := newGeminiFold(ep, opt)
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.Token() // '['
		for dec.More() {
			var g geminiResp
			if err := dec.Decode(&g); err != nil {
				f.r.Partial = true
				break
			}
			f.chunk(&g)
		}
		r := f.result()
		r.Streamed = true
		return r, nil
	}
	var g geminiResp
	if err := json.Unmarshal(body, &g); err != nil {
		top := scanTop(body)
		if top == nil {
			return nil, ErrNotJSON
		}
		f.r.Partial = true
		f.r.ID, _ = top["responseId"].(string)
		f.r.Model, _ = top["modelVersion"].(string)
		return f.result(), nil
	}
	f.chunk(&g)
	return f.result(), nil
}
