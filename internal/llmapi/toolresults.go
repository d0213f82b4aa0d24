package llmapi

import (
	"bytes"
	"encoding/json"
)

// ToolResult is the result of one tool call, as the agent sends it back.
type ToolResult struct {
	// ID is the call's id (tool_use_id, call_id, tool_call_id, or Gemini's
	// functionResponse id); Name is set where the API says it (Gemini,
	// whose calls may have no id).
	ID   string
	Name string
	// Content is the result text, redacted (full capture only).
	Content          string
	ContentTruncated bool
}

// toolResults finds the tool results at the end of a conversation: only
// the messages after the model's last turn, which is where an agent puts
// the results of the calls that turn made (older results are of calls
// long finished). A body that does not decode yields none.
func toolResults(api API, body []byte, opt Options) []ToolResult {
	var out []ToolResult
	add := func(id, name string, content json.RawMessage) {
		if len(out) >= maxBlocks || (id == "" && name == "") {
			return
		}
		tr := ToolResult{ID: id, Name: name}
		if opt.full() {
			text, ok := contentText(content)
			if !ok {
				text = string(bytes.TrimSpace(content))
			}
			tr.Content, tr.ContentTruncated = opt.keepText(text)
		}
		out = append(out, tr)
	}
	switch api {
	case AnthropicMessages:
		var req struct {
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if json.Unmarshal(body, &req) != nil {
			return nil
		}
		for i := len(req.Messages) - 1; i >= 0 && req.Messages[i].Role != "assistant"; i-- {
			var blocks []struct {
				Type      string          `json:"type"`
				ToolUseID string          `json:"tool_use_id"`
				Content   json.RawMessage `json:"content"`
			}
			if json.Unmarshal(req.Messages[i].Content, &blocks) != nil {
				continue
			}
			for _, b := range blocks {
				if b.Type == "tool_result" || b.Type == "mcp_tool_result" {
					add(b.ToolUseID, "", b.Content)
				}
			}
		}
	case OpenAIChatCompletions:
		var req struct {
			Messages []struct {
				Role       string          `json:"role"`
				ToolCallID string          `json:"tool_call_id"`
				Name       string          `json:"name"`
				Content    json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if json.Unmarshal(body, &req) != nil {
			return nil
		}
		for i := len(req.Messages) - 1; i >= 0 && req.Messages[i].Role != "assistant"; i-- {
			if m := req.Messages[i]; m.Role == "tool" || m.Role == "function" {
				add(m.ToolCallID, m.Name, m.Content)
			}
		}
	case OpenAIResponses:
		var req struct {
			Input json.RawMessage `json:"input"`
		}
		if json.Unmarshal(body, &req) != nil {
			return nil
		}
		var items []struct {
			Type   string          `json:"type"`
			Role   string          `json:"role"`
			CallID string          `json:"call_id"`
			Output json.RawMessage `json:"output"`
		}
		if json.Unmarshal(req.Input, &items) != nil {
			return nil
		}
		for i := len(items) - 1; i >= 0 && items[i].Role != "assistant"; i-- {
			switch it := items[i]; it.Type {
			case "function_call_output", "custom_tool_call_output", "local_shell_call_output", "mcp_call_output":
				add(it.CallID, "", it.Output)
			}
		}
	case GeminiGenerateContent:
		var req struct {
			Request  *json.RawMessage `json:"request"`
			Contents []struct {
				Role  string `json:"role"`
				Parts []struct {
					FunctionResponse *struct {
						ID       string          `json:"id"`
						Name     string          `json:"name"`
						Response json.RawMessage `json:"response"`
					} `json:"functionResponse"`
				} `json:"parts"`
			} `json:"contents"`
		}
		if json.Unmarshal(body, &req) != nil {
			return nil
		}
		if req.Request != nil { // Code Assist wrapping
			return toolResults(api, *req.Request, opt)
		}
		for i := len(req.Contents) - 1; i >= 0 && req.Contents[i].Role != "model"; i-- {
			for _, p := range req.Contents[i].Parts {
				if f := p.FunctionResponse; f != nil {
					add(f.ID, f.Name, f.Response)
				}
			}
		}
	}
	return out
}
