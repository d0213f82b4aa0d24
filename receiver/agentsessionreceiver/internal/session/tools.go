package session

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// Linking a model's tool calls to the processes they start.
//
// A process the LLM-calling process (the caller) forks while one of its
// tool calls is open belongs to that call: its span is a child of the
// execute_tool span, and it and its descendants (inherited at fork) carry
// gen_ai.tool.call.id / gen_ai.tool.name on every record and span.
//
// The call is not always known at the fork. An agent starts a tool as soon
// as the tool_use block is complete, while the response still streams (its
// end, which is when the response is parsed, comes later); or several
// calls are open at once. Such a process waits: its records and spans are
// held (not flushed) until the caller's response is parsed, its exec tells
// which of several calls it runs, or toolHoldWindow passes. Held state is
// bounded per process and in all.

const (
	toolHoldWindow = uint64(3 * time.Second) // longest a record waits for its tool call
	// An LLM call older than this is not in flight any more: its response
	// was lost.
	maxCallInFlight = uint64(10 * time.Minute)
	maxWaiting      = 256     // waiting processes per session
	maxHeldPerProc  = 1024    // records and spans held per waiting process
	maxHeld         = 1 << 16 // all held records and spans
	maxToolArgs     = 8       // argument strings kept for matching argv
)

type openTool struct {
	span   pcommon.SpanID
	parent pcommon.SpanID
	name   string
	callID string
	start  uint64
	caller proctree.Key
	call   uint64   // the LLM call that asked for it
	args   string   // JSON arguments, redacted; full capture only
	match  []string // string values of args, to recognise its command line
	result string   // redacted; full capture only
	procs  int      // processes it started
}

// toolWait is the state of a process whose tool call is not known yet.
type toolWait struct {
	until  uint64
	parent *proc // waiting too: the child takes its tool
	caller proctree.Key
	// forkParent is the caller's span at the fork: the parent of the
	// process's first span until the tool call's span replaces it.
	forkParent pcommon.SpanID
	since      uint64
	logs       plog.LogRecordSlice
	spans      ptrace.SpanSlice
	held       int
}

func newOpenTool(tc llmapi.ToolCall, span, parent pcommon.SpanID, caller proctree.Key, call, at uint64) *openTool {
	tool := &openTool{span: span, parent: parent, name: tc.Name, callID: tc.ID, start: at, caller: caller, call: call, args: tc.Input}
	if tc.Input != "" {
		var v any
		if json.Unmarshal([]byte(tc.Input), &v) == nil {
			tool.match = argStrings(v, tool.match)
		}
	}
	return tool
}

// argStrings collects the string values of a decoded JSON value that are
// long enough to say something about a command line.
func argStrings(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		if len(out) < maxToolArgs && len(strings.TrimSpace(x)) >= 2 {
			out = append(out, x)
		}
	case []any:
		// An argv array (Codex) reads as the command line it is.
		if len(x) > 0 && len(out) < maxToolArgs {
			parts := make([]string, 0, len(x))
			for _, e := range x {
				if s, ok := e.(string); ok {
					parts = append(parts, s)
				}
			}
			if len(parts) == len(x) {
				if j := strings.Join(parts, " "); len(j) >= 2 {
					out = append(out, j)
				}
				break
			}
		}
		for _, e := range x {
			out = argStrings(e, out)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = argStrings(x[k], out)
		}
	}
	return out
}

// runs tells whether img's command line carries one of the tool's
// arguments (a shell tool's command, a program and its arguments).
func (tool *openTool) runs(img *image) bool {
	if len(tool.match) == 0 || len(img.args) == 0 {
		return false
	}
	cmd := strings.Join(img.args, " ")
	for _, m := range tool.match {
		if strings.Contains(cmd, m) {
			return true
		}
	}
	return false
}

// toolFork attributes a fork: to its parent's tool call, to the caller's
// one open call, or to a call not known yet (the child waits).
func (t *Tracker) toolFork(parent, c *proc, at uint64) {
	if t.in == nil {
		return
	}
	if parent.tool != nil {
		c.tool = parent.tool
		return
	}
	si := parent.sess.intent
	if parent.wait != nil {
		t.wait(c, &toolWait{until: parent.wait.until, parent: parent, caller: parent.wait.caller, since: at})
		return
	}
	if !parent.llmCaller {
		return // only an LLM-calling process has tool calls of its own
	}
	var only *openTool
	n := 0
	if si != nil {
		for _, tool := range si.tools {
			if tool.caller == parent.key {
				only = tool
				n++
			}
		}
	}
	inFlight := t.inFlight(parent.key, at)
	switch {
	case n == 0 && !inFlight:
	case n == 1 && !inFlight:
		t.attribute(c, only)
	default:
		t.wait(c, &toolWait{until: at + toolHoldWindow, caller: parent.key, forkParent: c.parentSpan, since: at})
	}
}

// inFlight tells whether the caller has an LLM call whose response is not
// parsed yet: it may hold the tool call a new process runs.
func (t *Tracker) inFlight(caller proctree.Key, at uint64) bool {
	for k, c := range t.in.conns {
		if k.proc != caller {
			continue
		}
		for _, call := range c.calls {
			if call.begin+maxCallInFlight > at {
				return true
			}
		}
	}
	return false
}

func (t *Tracker) attribute(c *proc, tool *openTool) {
	c.tool, c.toolRoot = tool, true
	tool.procs++
	t.in.st.ToolProcesses++
	c.parentSpan = tool.span
}

func (t *Tracker) wait(c *proc, w *toolWait) {
	si := c.sess.intentState()
	if len(si.waiting) >= maxWaiting || t.in.held >= maxHeld {
		// Its records go out now, without a tool call; its span's parent
		// may still be held, which only changes the order of export.
		t.in.st.ToolHeldOverflow++
		return
	}
	w.logs, w.spans = plog.NewLogRecordSlice(), ptrace.NewSpanSlice()
	c.wait = w
	si.waiting = append(si.waiting, c)
}

// heldLogs is where a record of p goes: its session's, or its own while
// its tool call is not known.
func (t *Tracker) heldLogs(p *proc) plog.LogRecordSlice {
	if w := p.wait; w != nil {
		w.held++
		t.in.held++
		t.in.st.ToolHeld++
		if w.held > maxHeldPerProc {
			// Released at the next resolution, unattributed if unknown.
			w.until = 0
		}
		return w.logs
	}
	return p.sess.logs
}

func (t *Tracker) heldSpans(p *proc) ptrace.SpanSlice {
	if w := p.wait; w != nil {
		w.held++
		t.in.held++
		if w.held > maxHeldPerProc {
			w.until = 0
		}
		return w.spans
	}
	return p.sess.spans
}

// putTool writes the tool call of a process's record or span.
func putTool(a pcommon.Map, tool *openTool, exec bool) {
	if tool == nil {
		return
	}
	a.PutStr(semconv.GenAIToolName, utf8Safe(tool.name))
	if tool.callID != "" {
		a.PutStr(semconv.GenAIToolCallID, utf8Safe(tool.callID))
	}
	if exec && tool.args != "" {
		a.PutStr(semconv.GenAIToolCallArguments, utf8Safe(tool.args))
	}
}

// noteExec lets a waiting process's command line pick its tool call.
func (t *Tracker) noteExec(p *proc) {
	if p.wait != nil && p.wait.parent == nil {
		t.resolveWaiting(p.sess, p.spanStart, false)
	}
}

// resolveWaiting settles the waiting processes of s that can be: those
// whose call is known, and all of them past their window or when final.
func (t *Tracker) resolveWaiting(s *session, now uint64, final bool) {
	si := s.intent
	if si == nil || len(si.waiting) == 0 {
		return
	}
	kept := si.waiting[:0]
	for _, p := range si.waiting {
		w := p.wait
		last := final || now >= w.until
		var tool *openTool
		switch {
		case w.parent != nil:
			if w.parent.wait != nil && !last {
				kept = append(kept, p)
				continue
			}
			tool = w.parent.tool
		default:
			var ok bool
			if tool, ok = t.pickTool(si, p, now, last); !ok {
				kept = append(kept, p)
				continue
			}
		}
		t.release(p, tool)
	}
	clear(si.waiting[len(kept):])
	si.waiting = kept
}

// pickTool chooses the tool call of a process the caller started while it
// was unknown. ok is false while it is worth waiting.
func (t *Tracker) pickTool(si *sessIntent, p *proc, now uint64, last bool) (*openTool, bool) {
	w := p.wait
	var cands []*openTool
	for _, tool := range si.tools {
		if tool.caller == w.caller {
			cands = append(cands, tool)
		}
	}
	execd := p.seq > 0
	if execd {
		var hit *openTool
		n := 0
		for _, tool := range cands {
			if tool.runs(p.img) {
				hit, n = tool, n+1
			}
		}
		if n == 1 {
			return hit, true
		}
	}
	if !last && t.inFlight(w.caller, now) {
		return nil, false
	}
	if len(cands) == 1 {
		return cands[0], true
	}
	if len(cands) == 0 {
		return nil, true
	}
	if !last && !execd {
		return nil, false // its exec may tell which
	}
	// The latest response's calls are the most specific (a sub-agent's
	// inside a task); among them, the first still without a process.
	latest := cands[len(cands)-1].call
	var pick *openTool
	for _, tool := range cands {
		if tool.call == latest {
			if tool.procs == 0 {
				return tool, true
			}
			pick = tool
		}
	}
	return pick, true
}

// release hands over what p held, with its tool call (nil: none).
func (t *Tracker) release(p *proc, tool *openTool) {
	w := p.wait
	p.wait = nil
	t.in.held -= w.held
	if tool == nil {
		t.in.st.ToolUnresolved++
	} else if w.parent == nil {
		parent := p.parentSpan
		t.attribute(p, tool)
		if parent != w.forkParent {
			p.parentSpan = parent // under its own fork span, patched below
		}
	} else {
		p.tool = tool
	}
	s := p.sess
	for _, lr := range w.logs.All() {
		putTool(lr.Attributes(), tool, lr.EventName() == semconv.EventProcessExec && w.parent == nil)
	}
	for _, sp := range w.spans.All() {
		putTool(sp.Attributes(), tool, false)
		if w.parent == nil && tool != nil && sp.ParentSpanID() == w.forkParent {
			sp.SetParentSpanID(tool.span)
		}
	}
	if s.ended && s != t.in.ending {
		return // flushed for the last time already
	}
	w.logs.MoveAndAppendTo(s.logs)
	w.spans.MoveAndAppendTo(s.spans)
}

// toolsAnswered ends the tool calls whose results the request carries
// (and older calls of the same caller: the agent has moved past them).
// When the body could not be read, every call of the caller ends: its
// results may be in what was lost.
func (t *Tracker) toolsAnswered(p *proc, req *llmapi.Request, at uint64) {
	p.llmCaller = true
	p.sess.llmSeen = true
	si := p.sess.intent
	if si == nil || len(si.tools) == 0 {
		return
	}
	var upTo uint64
	done := map[*openTool]bool{}
	for _, r := range req.ToolResults {
		for _, tool := range si.tools {
			if tool.caller != p.key || done[tool] {
				continue
			}
			if (r.ID != "" && r.ID == tool.callID) || (r.ID == "" && tool.callID == "" && r.Name == tool.name) {
				tool.result = r.Content
				done[tool] = true
				upTo = max(upTo, tool.call)
				break
			}
		}
	}
	t.endToolsWhere(p.sess, at, func(tool *openTool) bool {
		return tool.caller == p.key && (req.Partial || done[tool] || tool.call < upTo)
	})
}

// endToolsWhere ends the open tool calls of s that end says are over and
// keeps the others open.
func (t *Tracker) endToolsWhere(s *session, at uint64, end func(*openTool) bool) {
	si := s.intent
	kept := si.tools[:0]
	for _, tool := range si.tools {
		if end(tool) {
			t.endTool(s, tool, at)
		} else {
			kept = append(kept, tool)
		}
	}
	clear(si.tools[len(kept):])
	si.tools = kept
}

// toolsCallerGone ends the calls of a caller that exited: no result can
// come back for them.
func (t *Tracker) toolsCallerGone(p *proc, at uint64) {
	si := p.sess.intent
	if t.in == nil || si == nil || len(si.tools) == 0 {
		return
	}
	t.endToolsWhere(p.sess, at, func(tool *openTool) bool { return tool.caller == p.key })
}

// closeTools emits every open execute_tool span of s, ended at `at`.
func (t *Tracker) closeTools(s *session, at uint64) {
	si := s.intent
	if si == nil || len(si.tools) == 0 {
		return
	}
	for _, tool := range si.tools {
		t.endTool(s, tool, at)
	}
	clear(si.tools)
	si.tools = si.tools[:0]
}

func (t *Tracker) endTool(s *session, tool *openTool, at uint64) {
	if t.pending >= t.cfg.MaxPendingRecords {
		t.st.recordsDropped.Add(1)
		return
	}
	t.pending++
	t.in.st.ToolSpans++
	sp := s.spans.AppendEmpty()
	sp.SetTraceID(s.id)
	sp.SetSpanID(tool.span)
	sp.SetParentSpanID(tool.parent)
	sp.SetName(semconv.GenAIOpExecuteTool + " " + utf8Safe(tool.name))
	sp.SetKind(ptrace.SpanKindInternal)
	sp.SetStartTimestamp(t.clock.Wall(tool.start))
	sp.SetEndTimestamp(t.clock.Wall(max(at, tool.start)))
	a := sp.Attributes()
	a.PutStr(semconv.GenAIOperationName, semconv.GenAIOpExecuteTool)
	putTool(a, tool, true)
	if tool.result != "" {
		a.PutStr(semconv.GenAIToolCallResult, utf8Safe(tool.result))
	}
}
