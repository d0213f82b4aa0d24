package session

import (
	"strconv"
	"strings"
	"testing"

	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

const toolSecret = "sk-ant-api03-T3stK3yV4lu3Zq8Rw2Xy5Ab7Cd9Ef1Gh3Ij5Kl7Mn9Op1Qr3St5Uv7Wx9Yz0AaBbCc-DdEeFf"

// tlsAgent drives one agent process (pid 100) talking to the Messages API
// over one TLS connection.
type tlsAgent struct {
	t  *testing.T
	tr *Tracker
	s0 uint64
	at uint64
}

func newTLSAgent(t *testing.T) *tlsAgent {
	tr, _ := newTestTracker(t, func(c *Config) {
		c.Intent = IntentConfig{TLS: true, Capture: llmapi.CaptureFull}
		c.Grace = 0
	})
	a := &tlsAgent{t: t, tr: tr, s0: 1000 * sec}
	a.at = a.s0 + ms
	tr.Handle(execEv(100, a.s0, a.at, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	return a
}

func (a *tlsAgent) tick() uint64 { a.at += ms; return a.at }

func (a *tlsAgent) tls(dir uint8, data string) {
	a.tr.Handle(&kevent.TLS{Header: hdr(kevent.KindTLS, 0, 100, a.s0, a.tick()), Conn: 0xabc, Dir: dir,
		Total: uint32(len(data)), Data: []byte(data)})
}

// request sends a Messages request whose last user message carries the
// results given as id → content.
func (a *tlsAgent) request(results map[string]string) {
	msgs := `{"role":"user","content":"fix it"}`
	if len(results) > 0 {
		var blocks []string
		for id, c := range results {
			blocks = append(blocks, `{"type":"tool_result","tool_use_id":"`+id+`","content":`+strconv.Quote(c)+`}`)
		}
		msgs += `,{"role":"assistant","content":[{"type":"text","text":"ok"}]},{"role":"user","content":[` + strings.Join(blocks, ",") + `]}`
	}
	body := `{"model":"claude-opus-4","max_tokens":10,"tools":[{"name":"Bash"}],"messages":[` + msgs + `]}`
	a.tls(kevent.TLSWrite, "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
}

// response is a whole (not streamed) response asking for Bash calls,
// given as id → command. It returns the bytes, for a caller that splits.
func response(calls ...[2]string) string {
	var blocks []string
	for _, c := range calls {
		blocks = append(blocks, `{"type":"tool_use","id":"`+c[0]+`","name":"Bash","input":{"command":`+strconv.Quote(c[1])+`}}`)
	}
	body := `{"id":"msg_1","type":"message","model":"claude-opus-4","stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7},"content":[` +
		strings.Join(blocks, ",") + `]}`
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func (a *tlsAgent) spawn(pid, ppid uint32, pstart uint64, exe string, args ...string) uint64 {
	start := a.tick()
	a.tr.Handle(forkEv(pid, start, start, ppid, pstart))
	a.tr.Handle(execEv(pid, start, a.tick(), 0, ppid, exe, "/w", args...))
	return start
}

func toolOf(t *testing.T, spans []spanRec, id string) spanRec {
	t.Helper()
	for _, s := range spans {
		if strings.HasPrefix(s.name, "execute_tool ") && s.attrs[semconv.GenAIToolCallID] == id {
			return s
		}
	}
	t.Fatalf("no execute_tool span for %s in %v", id, spanNames(spans))
	return spanRec{}
}

// The processes a tool call starts are under its execute_tool span and
// carry its id on every record and span, whether the exec is seen before
// the response that asked for the call is parsed or after.
func TestToolProcesses(t *testing.T) {
	for _, order := range []string{"exec after the response", "exec before the response ends"} {
		t.Run(order, func(t *testing.T) {
			a := newTLSAgent(t)
			a.request(nil)
			resp := response([2]string{"toolu_1", "ls -la && cat ~/.aws/credentials"})
			var pending string
			if order == "exec after the response" {
				a.tls(kevent.TLSRead, resp)
			} else {
				// The agent runs the tool as soon as the tool_use block
				// is complete; the response's last bytes come later.
				a.tls(kevent.TLSRead, resp[:len(resp)-3])
				pending = resp[len(resp)-3:]
			}
			s1 := a.spawn(101, 100, a.s0, "/bin/bash", "bash", "-c", "ls -la && cat ~/.aws/credentials")
			a.tr.Handle(openEv(101, s1, a.tick(), 0, "/w/out", 0, 3))
			s2 := a.spawn(102, 101, s1, "/usr/bin/cat", "cat", "/home/u/.aws/credentials")
			if pending != "" {
				// Nothing of the tool's processes leaves before its call is known.
				ld, _ := a.tr.Flush(wall(a.at))
				for _, l := range flatLogs(t, ld) {
					if p := l.pid(); p == 101 || p == 102 {
						t.Fatalf("%s of %d flushed before its tool call was known", l.event, p)
					}
				}
				a.tls(kevent.TLSRead, pending)
			}
			a.tr.Handle(exitEv(102, s2, a.tick(), 0))
			a.tr.Handle(exitEv(101, s1, a.tick(), 0))
			a.request(map[string]string{"toolu_1": "[default]\naws_secret_access_key = " + toolSecret})
			a.tr.Handle(exitEv(100, a.s0, a.tick(), 0))
			ld, td := a.tr.Flush(wall(a.at + sec))
			spans, logs := flatSpans(t, td), flatLogs(t, ld)

			tool := toolOf(t, spans, "toolu_1")
			if tool.attrs[semconv.GenAIToolCallArguments] != `{"command":"ls -la \u0026\u0026 cat ~/.aws/credentials"}` &&
				!strings.Contains(tool.attrs[semconv.GenAIToolCallArguments].(string), "cat ~/.aws/credentials") {
				t.Errorf("arguments %v", tool.attrs[semconv.GenAIToolCallArguments])
			}
			res, _ := tool.attrs[semconv.GenAIToolCallResult].(string)
			if !strings.Contains(res, "aws_secret_access_key") || strings.Contains(res, toolSecret[:20]) {
				t.Errorf("result %q: want it, redacted", res)
			}
			bash := findSpan(t, spans, 101, "bash")
			cat := findSpan(t, spans, 102, "cat")
			if bash.parent != tool.id || cat.parent != bash.id {
				t.Errorf("tree: bash under %v, cat under %v; tool %v bash %v", bash.parent, cat.parent, tool.id, bash.id)
			}
			for _, s := range []spanRec{bash, cat} {
				if s.attrs[semconv.GenAIToolCallID] != "toolu_1" || s.attrs[semconv.GenAIToolName] != "Bash" {
					t.Errorf("span %s: %v", s.name, s.attrs)
				}
			}
			n := 0
			for _, l := range logs {
				if p := l.pid(); p != 101 && p != 102 {
					if l.attrs[semconv.GenAIToolCallID] != nil && l.event != semconv.EventLLMResponse {
						t.Errorf("%s of %d carries a tool call", l.event, p)
					}
					continue
				}
				n++
				if l.attrs[semconv.GenAIToolCallID] != "toolu_1" || l.attrs[semconv.GenAIToolName] != "Bash" {
					t.Errorf("%s of %d: %v", l.event, l.pid(), l.attrs)
				}
				_, args := l.attrs[semconv.GenAIToolCallArguments]
				if want := l.event == semconv.EventProcessExec && l.pid() == 101; args != want {
					t.Errorf("%s of %d: arguments %v, want %v", l.event, l.pid(), args, want)
				}
			}
			if n != 5 {
				t.Errorf("%d records of the tool's processes, want 5: %v", n, events(logs))
			}
			if st := a.tr.IntentStats(); st.ToolProcesses != 1 || st.ToolUnresolved != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// Parallel calls: each process goes to the call whose command it runs.
// A request without their results (a side call) does not end them.
func TestToolParallelCalls(t *testing.T) {
	a := newTLSAgent(t)
	a.request(nil)
	a.tls(kevent.TLSRead, response([2]string{"t1", "git status"}, [2]string{"t2", "npm test"}))
	a.request(nil) // e.g. a title for the conversation, on the same process
	a.tls(kevent.TLSRead, response())
	s1 := a.spawn(101, 100, a.s0, "/bin/sh", "sh", "-c", "npm test")
	s2 := a.spawn(102, 100, a.s0, "/bin/sh", "sh", "-c", "git status")
	a.tr.Handle(exitEv(101, s1, a.tick(), 0))
	a.tr.Handle(exitEv(102, s2, a.tick(), 0))
	a.request(map[string]string{"t1": "clean", "t2": "ok"})
	ld, td := a.tr.Flush(wall(a.at + sec))
	spans := flatSpans(t, td)
	if findSpan(t, spans, 101, "sh").parent != toolOf(t, spans, "t2").id || findSpan(t, spans, 102, "sh").parent != toolOf(t, spans, "t1").id {
		t.Errorf("processes under the wrong calls: %v", spanNames(spans))
	}
	for _, l := range flatLogs(t, ld) {
		if l.pid() == 101 && l.attrs[semconv.GenAIToolCallID] != "t2" {
			t.Errorf("%s of 101: %v", l.event, l.attrs[semconv.GenAIToolCallID])
		}
	}
}

// A process started while nothing is open is nobody's; one started while a
// call is in flight whose response never ends waits at most the window.
func TestToolUnresolved(t *testing.T) {
	a := newTLSAgent(t)
	a.spawn(101, 100, a.s0, "/usr/bin/git", "git", "status")
	a.request(nil)
	resp := response([2]string{"t1", "make"})
	a.tls(kevent.TLSRead, resp[:len(resp)-2])
	a.spawn(102, 100, a.s0, "/usr/bin/make", "make")
	ld, _ := a.tr.Flush(wall(a.at))
	got := map[int64]int{}
	for _, l := range flatLogs(t, ld) {
		got[l.pid()]++
	}
	if got[101] == 0 || got[102] != 0 {
		t.Fatalf("records by pid %v: 101 is free to go, 102 waits", got)
	}
	ld, td := a.tr.Flush(wall(a.at + toolHoldWindow))
	logs := flatLogs(t, ld)
	if len(logs) == 0 || logs[0].pid() != 102 || logs[0].attrs[semconv.GenAIToolCallID] != nil {
		t.Fatalf("after the window: %v", events(logs))
	}
	if td.SpanCount() != 0 {
		t.Errorf("spans %d", td.SpanCount())
	}
	if st := a.tr.IntentStats(); st.ToolUnresolved != 1 || st.ToolHeld == 0 {
		t.Errorf("stats %+v", st)
	}
}

// Held records are not lost when the session ends before the call is known.
func TestToolHeldAtSessionEnd(t *testing.T) {
	a := newTLSAgent(t)
	a.request(nil)
	s1 := a.spawn(101, 100, a.s0, "/usr/bin/make", "make")
	a.tr.Handle(exitEv(101, s1, a.tick(), 0))
	a.tr.Handle(exitEv(100, a.s0, a.tick(), 0))
	ld, td := a.tr.Flush(wall(a.at + 100*ms))
	var n int
	for _, l := range flatLogs(t, ld) {
		if l.pid() == 101 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d records of 101 at the session's end, want exec and exit", n)
	}
	findSpan(t, flatSpans(t, td), 101, "make")
}
