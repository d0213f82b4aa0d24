// Package fakellm is a scripted model API for tests that run real agent
// CLIs: it speaks the Anthropic Messages, Gemini streamGenerateContent and
// OpenAI Responses streaming protocols, answers the first request that
// offers the agent's shell tool with one tool call of the test's choice,
// and the request that carries that call's result with an end of turn.
// Every request is recorded, so a test can check what the agent sent back.
package fakellm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// ToolCall is the scripted model turn: run Command in the agent's shell tool.
type ToolCall struct {
	ID      string
	Command string
}

// Request is one request the agent made.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	// Answer says what the server did: "tool_call", "end_turn", "text", "404".
	Answer string
}

// Server is an http.Handler; one scripted tool call at a time (Script).
type Server struct {
	mu     sync.Mutex
	call   ToolCall
	issued bool
	reqs   []Request
}

// Script sets the tool call of the next scenario and forgets the requests
// of the last one.
func (s *Server) Script(c ToolCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call, s.issued, s.reqs = c, false, nil
}

// Requests returns the requests made since the last Script.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Issued reports whether the scripted tool call was sent to the agent.
func (s *Server) Issued() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// ToolResult returns the body of the first request that carried the
// scripted call's result, or nil.
func (s *Server) ToolResult() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.reqs {
		if r.Answer == "end_turn" {
			return r.Body
		}
	}
	return nil
}

// Summary lists the requests, one a line, for failure messages.
func (s *Server) Summary() string {
	var b strings.Builder
	for _, r := range s.Requests() {
		enc := ""
		if e := r.Header.Get("Content-Encoding"); e != "" {
			enc = ", " + e
		}
		fmt.Fprintf(&b, "%s %s → %s (%d bytes%s)\n", r.Method, r.Path, r.Answer, len(r.Body), enc)
	}
	return b.String()
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	s.mu.Lock()
	call, issued := s.call, s.issued
	s.mu.Unlock()
	answer := "404"
	switch p := r.URL.Path; {
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/v1/messages"):
		answer = anthropic(w, body, call, issued)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/v1/messages/count_tokens"):
		answer = "text"
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":10}`)
	case r.Method == http.MethodPost && strings.Contains(p, ":streamGenerateContent"):
		answer = gemini(w, body, call, issued)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/responses"):
		answer = responses(w, body, call, issued)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/models"):
		answer = "text"
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[],"models":[]}`)
	default:
		http.NotFound(w, r)
	}
	s.mu.Lock()
	if answer == "tool_call" {
		s.issued = true
	}
	s.reqs = append(s.reqs, Request{r.Method, r.URL.Path, r.Header.Clone(), body, answer})
	s.mu.Unlock()
}

// hasResult: the agent sends the call's id back with its result in every
// protocol (tool_use_id, functionResponse.id, call_id).
func hasResult(body []byte, id string) bool {
	return id != "" && bytes.Contains(body, []byte(`"`+id+`"`)) &&
		(bytes.Contains(body, []byte(`"tool_result"`)) || bytes.Contains(body, []byte(`"functionResponse"`)) ||
			bytes.Contains(body, []byte(`"function_call_output"`)))
}

func jsonStr(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func sse(w http.ResponseWriter, event string, data any) {
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", jsonStr(data))
}

// anthropic answers POST /v1/messages (Claude Code, OpenCode's anthropic provider).
func anthropic(w http.ResponseWriter, body []byte, call ToolCall, issued bool) string {
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
		Tools  []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	json.Unmarshal(body, &req)
	tool := ""
	for _, t := range req.Tools {
		if t.Name == "Bash" || t.Name == "bash" {
			tool = t.Name
		}
	}
	answer := nextTurn(body, call, tool != "", issued)
	model := req.Model
	if model == "" {
		model = "claude-sonnet-4-5"
	}
	input := map[string]string{"command": call.Command, "description": "Run the command"}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		msg := map[string]any{"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
			"stop_reason": "end_turn", "usage": map[string]int{"input_tokens": 10, "output_tokens": 2},
			"content": []any{map[string]string{"type": "text", "text": "Done."}}}
		if answer == "tool_call" {
			msg["stop_reason"] = "tool_use"
			msg["content"] = []any{map[string]any{"type": "tool_use", "id": call.ID, "name": tool, "input": input}}
		}
		io.WriteString(w, jsonStr(msg))
		return answer
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sse(w, "message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "usage": map[string]int{"input_tokens": 100, "output_tokens": 1}}})
	stop := "end_turn"
	if answer == "tool_call" {
		stop = "tool_use"
		sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "tool_use", "id": call.ID, "name": tool, "input": map[string]any{}}})
		sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]string{"type": "input_json_delta", "partial_json": jsonStr(input)}})
	} else {
		sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]string{"type": "text", "text": ""}})
		sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]string{"type": "text_delta", "text": "Done."}})
	}
	sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	sse(w, "message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]int{"output_tokens": 3}})
	sse(w, "message_stop", map[string]string{"type": "message_stop"})
	return answer
}

// gemini answers POST …:streamGenerateContent?alt=sse (Gemini CLI).
func gemini(w http.ResponseWriter, body []byte, call ToolCall, issued bool) string {
	var req struct {
		Tools []struct {
			FunctionDeclarations []struct {
				Name string `json:"name"`
			} `json:"functionDeclarations"`
		} `json:"tools"`
	}
	json.Unmarshal(body, &req)
	offered := false
	for _, t := range req.Tools {
		for _, f := range t.FunctionDeclarations {
			offered = offered || f.Name == "run_shell_command"
		}
	}
	answer := nextTurn(body, call, offered, issued)
	part := map[string]any{"text": "Done."}
	if answer == "tool_call" {
		part = map[string]any{"functionCall": map[string]any{"id": call.ID, "name": "run_shell_command",
			"args": map[string]string{"command": call.Command, "description": "Run the command"}}}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	sse(w, "", map[string]any{
		"candidates": []any{map[string]any{"content": map[string]any{"role": "model", "parts": []any{part}},
			"finishReason": "STOP", "index": 0}},
		"usageMetadata": map[string]int{"promptTokenCount": 100, "candidatesTokenCount": 5, "totalTokenCount": 105},
		"modelVersion":  "gemini-2.5-pro", "responseId": "resp_fake"})
	return answer
}

// responses answers POST /v1/responses (Codex), streamed.
// nextTurn is the model's move on one request: end the turn once the
// scripted call's result comes back, make the call the first time the
// agent offers its shell tool, else answer with text.
func nextTurn(body []byte, call ToolCall, offered, issued bool) string {
	switch {
	case hasResult(body, call.ID):
		return "end_turn"
	case offered && !issued && call.ID != "":
		return "tool_call"
	}
	return "text"
}

func responses(w http.ResponseWriter, body []byte, call ToolCall, issued bool) string {
	var req struct {
		Model string `json:"model"`
		Tools []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tools"`
	}
	json.Unmarshal(body, &req)
	tool := ""
	for _, t := range req.Tools {
		switch t.Name {
		case "shell", "shell_command", "exec_command":
			if tool == "" || t.Name == "shell_command" {
				tool = t.Name
			}
		}
	}
	answer := nextTurn(body, call, tool != "", issued)
	if tool == "" && len(req.Tools) > 0 {
		// Say what was offered: a new agent release renames its tools.
		var names []string
		for _, t := range req.Tools {
			names = append(names, t.Type+":"+t.Name)
		}
		answer = "text (no shell tool among " + strings.Join(names, ",") + ")"
	}
	var item map[string]any
	if answer == "tool_call" {
		var args any
		switch tool {
		case "shell":
			args = map[string]any{"command": []string{"bash", "-lc", call.Command}}
		case "exec_command":
			args = map[string]any{"cmd": call.Command}
		default:
			args = map[string]any{"command": call.Command}
		}
		item = map[string]any{"type": "function_call", "id": "fc_fake", "call_id": call.ID, "name": tool,
			"arguments": jsonStr(args), "status": "completed"}
	} else {
		item = map[string]any{"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed",
			"content": []any{map[string]any{"type": "output_text", "text": "Done.", "annotations": []any{}}}}
	}
	resp := map[string]any{"id": "resp_fake", "object": "response", "model": req.Model, "status": "in_progress", "output": []any{}}
	w.Header().Set("Content-Type", "text/event-stream")
	sse(w, "response.created", map[string]any{"type": "response.created", "response": resp})
	sse(w, "response.output_item.added", map[string]any{"type": "response.output_item.added", "output_index": 0, "item": item})
	sse(w, "response.output_item.done", map[string]any{"type": "response.output_item.done", "output_index": 0, "item": item})
	resp["status"], resp["output"] = "completed", []any{item}
	resp["usage"] = map[string]any{"input_tokens": 100, "output_tokens": 5, "total_tokens": 105,
		"input_tokens_details": map[string]int{"cached_tokens": 0}, "output_tokens_details": map[string]int{"reasoning_tokens": 0}}
	sse(w, "response.completed", map[string]any{"type": "response.completed", "response": resp})
	return answer
}
