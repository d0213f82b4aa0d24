package llmapi

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Part is one string of what a request sends, with the tool call whose
// result carries it (empty when it is not inside a tool result).
type Part struct {
	Text       string
	ToolCallID string
	ToolName   string
}

// maxContentDepth bounds the nesting walked; deeper values are skipped.
const maxContentDepth = 64

// RequestContent calls fn with every string value of a request body — the
// whole conversation, system prompt and tool results included — naming
// the tool call of the results that carry them: Anthropic tool_result
// (tool_use_id), OpenAI Chat tool messages (tool_call_id), Responses
// *_call_output items (call_id) and Gemini functionResponse (id, name).
// The tool's name comes from the call in the same conversation (tool_use,
// tool_calls, function_call, functionCall). Inline media (base64 image or
// document data) is skipped. It returns false when the body is not JSON
// (cut by the capture: nothing is reported then).
func RequestContent(body []byte, fn func(Part)) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false
	}
	names := map[string]string{}
	collectNames(v, names, 0)
	walkContent(v, toolCtx{}, names, fn, 0)
	return true
}

// structuralKeys hold the conversation's shape, not its content.
var structuralKeys = map[string]bool{
	"type": true, "role": true, "id": true, "name": true, "model": true, "signature": true,
	"tool_use_id": true, "tool_call_id": true, "call_id": true, "media_type": true, "mime_type": true, "mimeType": true,
}

type toolCtx struct{ id, name string }

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func collectNames(v any, names map[string]string, depth int) {
	if depth > maxContentDepth || len(names) > 4096 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		id := str(x, "id")
		if cid := str(x, "call_id"); cid != "" {
			id = cid
		}
		name := str(x, "name")
		switch typ := str(x, "type"); {
		case isAnthropicToolUse(typ), typ == "function_call", typ == "custom_tool_call", typ == "mcp_call":
			if id != "" && name != "" {
				names[id] = name
			}
		case typ == "function" || typ == "":
			// Chat tool_calls entries: {"id", "type": "function", "function": {"name"}}
			if f, ok := x["function"].(map[string]any); ok && id != "" && str(f, "name") != "" {
				names[id] = str(f, "name")
			}
		case strings.HasSuffix(typ, "_call") && id != "":
			names[id] = strings.TrimSuffix(typ, "_call")
		}
		if fc, ok := x["functionCall"].(map[string]any); ok && str(fc, "name") != "" {
			key := str(fc, "id")
			if key == "" {
				key = str(fc, "name")
			}
			names[key] = str(fc, "name")
		}
		for _, e := range x {
			collectNames(e, names, depth+1)
		}
	case []any:
		for _, e := range x {
			collectNames(e, names, depth+1)
		}
	}
}

func walkContent(v any, ctx toolCtx, names map[string]string, fn func(Part), depth int) {
	if depth > maxContentDepth {
		return
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return
		}
		name := ctx.name
		if n := names[ctx.id]; n != "" {
			name = n
		}
		fn(Part{Text: x, ToolCallID: ctx.id, ToolName: name})
	case map[string]any:
		if str(x, "media_type") != "" || str(x, "mime_type") != "" || str(x, "mimeType") != "" {
			if _, ok := x["data"].(string); ok {
				return // inline media
			}
		}
		switch {
		case str(x, "tool_use_id") != "":
			ctx = toolCtx{id: str(x, "tool_use_id")}
		case str(x, "tool_call_id") != "":
			ctx = toolCtx{id: str(x, "tool_call_id")}
		case strings.HasSuffix(str(x, "type"), "_output") && str(x, "call_id") != "":
			ctx = toolCtx{id: str(x, "call_id")}
		}
		if fr, ok := x["functionResponse"].(map[string]any); ok {
			id := str(fr, "id")
			if id == "" {
				id = str(fr, "name")
			}
			walkContent(fr, toolCtx{id: id, name: str(fr, "name")}, names, fn, depth+1)
		}
		for k, e := range x {
			if k == "functionResponse" || structuralKeys[k] {
				continue // walked above; names, ids and opaque signatures
			}
			walkContent(e, ctx, names, fn, depth+1)
		}
	case []any:
		for _, e := range x {
			walkContent(e, ctx, names, fn, depth+1)
		}
	}
}
