package agentconsoleexporter

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/agentwatch/agentwatch/internal/semconv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// checkGolden compares got with testdata/name, or rewrites the file under
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(file, got, 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "run `go test -run %s -update` to create it", t.Name())
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- want\n%s\n--- got\n%s", file, want, got)
	}
}

func renderAll(r *renderer, batches ...plog.Logs) []byte {
	var out []byte
	for _, ld := range batches {
		out = append(out, r.renderLogs(ld)...)
	}
	return out
}

func TestGoldenSessionPlain(t *testing.T) {
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	got := renderAll(r, claudeBatches()...)
	checkGolden(t, "session_never.golden", got)

	assert.NotContains(t, string(got), "\x1b", "color never must not emit escape sequences")
	assert.Equal(t, 0, r.sessions.len(), "session state must be dropped at session end")
}

func TestGoldenSessionColor(t *testing.T) {
	r := newRenderer(true, SpansGenAI, defaultMaxSessions)
	got := renderAll(r, claudeBatches()...)
	checkGolden(t, "session_always.golden", got)

	// Colour must not change the text: stripped, it is the plain output.
	plain := renderAll(newRenderer(false, SpansGenAI, defaultMaxSessions), claudeBatches()...)
	assert.Equal(t, string(plain), stripANSI(string(got)))
	assert.Contains(t, string(got), sgrCritical+tagAlert+sgrReset, "a critical alert is highlighted")
	assert.Contains(t, string(got), sgrBoldRed+tagAlert+sgrReset, "a high alert is highlighted")
}

func TestGoldenSpansAll(t *testing.T) {
	early, late := claudeSpans()
	batches := claudeBatches()
	r := newRenderer(false, SpansAll, defaultMaxSessions)
	var out []byte
	out = append(out, renderAll(r, batches[:3]...)...)
	out = append(out, r.renderTraces(early)...)
	out = append(out, renderAll(r, batches[3])...)
	out = append(out, r.renderTraces(late)...)
	checkGolden(t, "spans_all.golden", out)
	assert.Equal(t, 0, r.sessions.len(), "spans must not bring an ended session back")
}

func TestSpansGenAIOnlyPrintsChatAndTools(t *testing.T) {
	early, late := claudeSpans()
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	out := string(r.renderTraces(early)) + string(r.renderTraces(late))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 2, out)
	assert.Contains(t, lines[0], "span    chat claude-sonnet-4-5  2s  tokens in 1834 out 211  @api.anthropic.com")
	assert.Contains(t, lines[1], "span    execute_tool Bash  5.13s")
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }

// linesOf splits rendered output and drops the trailing newline.
func linesOf(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestProcessTreeIndentation(t *testing.T) {
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	lines := linesOf(renderAll(r, claudeBatches()...))
	indentOf := func(prefix string) int {
		for _, l := range lines {
			body := l[sessionTagWidth+1+tagWidth+1:]
			if strings.HasPrefix(strings.TrimLeft(body, " "), prefix) {
				return len(body) - len(strings.TrimLeft(body, " "))
			}
		}
		t.Fatalf("no line starts with %q:\n%s", prefix, strings.Join(lines, "\n"))
		return -1
	}
	assert.Equal(t, 0, indentOf("claude[4242] -> anthropic"), "the agent's own events")
	assert.Equal(t, 2, indentOf("bash[4300] /usr/bin/bash"), "child of the agent")
	assert.Equal(t, 4, indentOf("curl[4301] /usr/bin/curl"), "grandchild")
	assert.Equal(t, 4, indentOf("connect curl[4301] tcp 127.0.0.1:9999"), "a process's events, alerts included, sit at its depth")
	assert.Equal(t, 4, indentOf("dig[4302] TXT"), "sibling of curl")
	assert.Equal(t, 2, indentOf("bash[4300] exit 9"))
}

func TestExecWithoutForkKeepsDepth(t *testing.T) {
	sid := pcommon.TraceID{1}
	b := newLogBatch("codex", sid).
		event(0, spanClaude, semconv.EventSessionStart, 100, "/usr/bin/codex", nil).
		event(1, spanBash, semconv.EventProcessExec, 200, bashExe, map[string]any{semconv.ProcessParentPID: 100}).
		// bash execs into git in the same pid: same place in the tree.
		event(2, spanCurl, semconv.EventProcessExec, 200, "/usr/bin/git", map[string]any{semconv.ProcessParentPID: 100}).
		event(3, spanCurl, semconv.EventFileOpen, 200, "/usr/bin/git", map[string]any{semconv.FilePath: "/repo/.git/HEAD"})
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	lines := linesOf(r.renderLogs(b.ld))
	require.Len(t, lines, 4)
	assert.Contains(t, lines[1], "exec      bash[200] /usr/bin/bash")
	assert.Contains(t, lines[2], "exec      git[200] /usr/bin/git")
	assert.Contains(t, lines[3], "open      git[200] /repo/.git/HEAD")
	s := r.sessions.get(sid.String())
	require.NotNil(t, s)
	assert.Equal(t, 2, s.processes, "an exec in the same pid is the same process")
}

func TestInterleavedSessions(t *testing.T) {
	a := pcommon.TraceID{0xaa, 0xaa, 0xaa, 0xaa, 0x11}
	g := pcommon.TraceID{0xbb, 0xbb, 0xbb, 0xbb, 0x22}
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	var out []byte
	out = append(out, r.renderLogs(newLogBatch("aider", a).
		event(0, spanClaude, semconv.EventSessionStart, 10, "/usr/bin/python3", nil).ld)...)
	out = append(out, r.renderLogs(newLogBatch("gemini-cli", g).
		event(1, spanClaude, semconv.EventSessionStart, 20, "/usr/bin/node", nil).
		event(2, spanBash, semconv.EventProcessExec, 21, "/usr/bin/git", map[string]any{semconv.ProcessParentPID: 20}).ld)...)
	out = append(out, r.renderLogs(newLogBatch("aider", a).
		event(3, spanBash, semconv.EventProcessExec, 11, "/usr/bin/git", map[string]any{semconv.ProcessParentPID: 10}).
		event(4, spanBash, semconv.EventProcessExec, 12, "/usr/bin/sed", map[string]any{semconv.ProcessParentPID: 11}).ld)...)
	out = append(out, r.renderLogs(newLogBatch("gemini-cli", g).
		event(5, spanClaude, semconv.EventSessionEnd, 20, "/usr/bin/node", nil).ld)...)
	out = append(out, r.renderLogs(newLogBatch("aider", a).
		event(6, spanClaude, semconv.EventSessionEnd, 10, "/usr/bin/python3", nil).ld)...)

	want := []string{
		"aider:aaaaaaaa       start   aider  host devbox  python3[10] /usr/bin/python3",
		"gemini-cli:bbbbbbbb  start   gemini-cli  host devbox  node[20] /usr/bin/node",
		"gemini-cli:bbbbbbbb  exec      git[21] /usr/bin/git",
		"aider:aaaaaaaa       exec      git[11] /usr/bin/git",
		"aider:aaaaaaaa       exec        sed[12] /usr/bin/sed",
		"gemini-cli:bbbbbbbb  end     gemini-cli  4ms  2 processes  1 event  0 alerts  max score 0",
		"aider:aaaaaaaa       end     aider  6ms  3 processes  2 events  0 alerts  max score 0",
	}
	assert.Equal(t, want, linesOf(out))
	assert.Equal(t, 0, r.sessions.len())
}

func TestSessionStateIsBounded(t *testing.T) {
	r := newRenderer(false, SpansGenAI, 3)
	start := func(n byte) {
		r.renderLogs(newLogBatch("aider", pcommon.TraceID{n}).
			event(0, spanClaude, semconv.EventSessionStart, int64(n), "/usr/bin/python3", nil).ld)
	}
	start(1)
	start(2)
	start(3)
	// Touch session 1 so that 2 is now the least recently seen.
	r.renderLogs(newLogBatch("aider", pcommon.TraceID{1}).
		event(1, spanClaude, semconv.EventFileOpen, 1, "/usr/bin/python3", map[string]any{semconv.FilePath: "/x"}).ld)
	start(4)
	assert.Equal(t, 3, r.sessions.len())
	assert.Nil(t, r.sessions.get(pcommon.TraceID{2}.String()), "least recently seen session dropped")
	for _, n := range []byte{1, 3, 4} {
		assert.NotNil(t, r.sessions.get(pcommon.TraceID{n}.String()), "session %d kept", n)
	}
}

func TestProcessTableIsBounded(t *testing.T) {
	sid := pcommon.TraceID{9}
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	r.renderLogs(newLogBatch("claude-code", sid).
		event(0, spanClaude, semconv.EventSessionStart, 1, claudeExe, nil).ld)
	// A build that runs many short compilers: exec and exit, over and over.
	const n = maxProcsPerSession * 3
	for i := range n {
		pid := int64(1000 + i)
		r.renderLogs(newLogBatch("claude-code", sid).
			event(1, spanBash, semconv.EventProcessExec, pid, "/usr/bin/cc", map[string]any{semconv.ProcessParentPID: 1}).
			event(2, spanBash, semconv.EventProcessExit, pid, "/usr/bin/cc", map[string]any{semconv.ProcessExitCode: 0}).ld)
	}
	s := r.sessions.get(sid.String())
	require.NotNil(t, s)
	assert.LessOrEqual(t, len(s.procs), maxProcsPerSession)
	assert.LessOrEqual(t, len(s.spans), maxProcsPerSession)
	assert.Equal(t, n+1, s.processes, "counting does not depend on the table")
	// A live process is still placed correctly after all that churn.
	out := r.renderLogs(newLogBatch("claude-code", sid).
		event(3, spanBash, semconv.EventProcessExec, 99, "/usr/bin/make", map[string]any{semconv.ProcessParentPID: 1}).
		event(4, spanCurl, semconv.EventProcessExec, 98, "/usr/bin/cc", map[string]any{semconv.ProcessParentPID: 99}).ld)
	assert.Contains(t, string(out), "exec        cc[98]")
}

func TestTerminalEscapesAreNeutralised(t *testing.T) {
	sid := pcommon.TraceID{7}
	evil := "\x1b]0;pwned\x07\x1b[2J"
	b := newLogBatch("claude-code\x1b[31m", sid).
		event(0, spanClaude, semconv.EventProcessExec, 5, "/tmp/x\nfake line", map[string]any{
			semconv.ProcessCommandArgs: []any{"x", evil},
		}).
		event(1, spanClaude, semconv.EventFileOpen, 5, "/tmp/x", map[string]any{semconv.FilePath: "/tmp/" + evil}).
		event(2, spanClaude, semconv.EventDNSQuery, 5, "/tmp/x", map[string]any{semconv.DNSQuestionName: evil + ".example"})
	for _, color := range []bool{false, true} {
		out := string(newRenderer(color, SpansGenAI, defaultMaxSessions).renderLogs(b.ld))
		stripped := stripANSI(out)
		assert.NotContains(t, stripped, "\x1b", "raw ESC reached the terminal (color=%v)", color)
		assert.NotContains(t, stripped, "\x07")
		assert.Equal(t, 3, strings.Count(out, "\n"), "an embedded newline must not forge a line")
		assert.Contains(t, stripped, `\x1b]0;pwned\x07\x1b[2J`)
	}
}

func TestEventFormatting(t *testing.T) {
	sid := pcommon.TraceID{3}
	cases := []struct {
		name  string
		event string
		kv    map[string]any
		want  string
	}{
		{"open flags decoded", semconv.EventFileOpen, map[string]any{semconv.FilePath: "/a", semconv.FileFlags: 0o1101 | 0o2000000}, "open      x[5] /a O_WRONLY|O_CREAT|O_TRUNC"},
		{"open flags given as text", semconv.EventFileOpen, map[string]any{semconv.FilePath: "/a", semconv.FileFlags: "O_RDWR"}, "open      x[5] /a O_RDWR"},
		{"open failure", semconv.EventFileOpen, map[string]any{semconv.FilePath: "/a", semconv.FileFlags: 0, semconv.FileResult: -13}, "/a O_RDONLY = EACCES"},
		{"ipv6 connect", semconv.EventNetConnect, map[string]any{semconv.NetworkPeerAddress: "2001:db8::1", semconv.NetworkPeerPort: 443, semconv.NetworkTransport: "tcp"}, "connect   x[5] tcp [2001:db8::1]:443"},
		{"refused connect", semconv.EventNetConnect, map[string]any{semconv.NetworkPeerAddress: "10.0.0.1", semconv.NetworkPeerPort: 22, semconv.ConnectResult: -111}, "10.0.0.1:22 = ECONNREFUSED"},
		{"dns answers capped", semconv.EventDNSQuery, map[string]any{semconv.DNSQuestionName: "a.example", semconv.DNSQuestionType: 28, semconv.DNSAnswers: []any{"::1", "::2", "::3", "::4", "::5", "::6"}}, "dns       x[5] AAAA a.example -> ::1, ::2, ::3, ::4 (+2 more)"},
		{"killed by signal", semconv.EventProcessExit, map[string]any{semconv.ExitSignal: 9}, "exit      x[5] killed by SIGKILL"},
		{"enforcement", semconv.EventEnforce, map[string]any{semconv.EnforceAction: "deny", semconv.FilePath: "/home/a/.ssh/id_ed25519", semconv.EnforceRule: "sensitive_path"}, "enforce   x[5] deny /home/a/.ssh/id_ed25519 by sensitive_path"},
		{"unknown event", "agent.something.new", nil, "event     x[5] agent.something.new"},
		{"llm request with tools", semconv.EventLLMRequest, map[string]any{semconv.GenAIProviderName: "openai", semconv.GenAIRequestModel: "gpt-5", semconv.GenAIToolName: []any{"shell", "apply_patch"}}, "llm       x[5] -> openai gpt-5 tools shell,apply_patch"},
		{"scored but no alert", semconv.EventFileOpen, scored(map[string]any{semconv.FilePath: "/p/.env"}, 25, semconv.LevelLow, false, "dotenv", "dotenv"), "open      x[5] /p/.env  low 25 rule=dotenv"},
		{"alert without level", semconv.EventFileOpen, map[string]any{semconv.FilePath: "/z", semconv.Alert: true, semconv.RiskScore: 70}, "ALERT     open x[5] /z  risk 70"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRenderer(false, SpansGenAI, defaultMaxSessions)
			r.renderLogs(newLogBatch("codex", sid).event(0, spanClaude, semconv.EventSessionStart, 1, "/usr/bin/codex", nil).ld)
			b := newLogBatch("codex", sid).
				event(1, spanBash, semconv.EventProcessExec, 5, "/usr/bin/x", map[string]any{semconv.ProcessParentPID: 1}).
				event(2, spanBash, tc.event, 5, "/usr/bin/x", tc.kv)
			lines := linesOf(r.renderLogs(b.ld))
			require.Len(t, lines, 2)
			assert.Contains(t, lines[1], tc.want)
		})
	}
}

func TestSessionEndWithoutStart(t *testing.T) {
	// The collector started mid-session: the summary must not invent a
	// duration, and the state must still be dropped.
	sid := pcommon.TraceID{4}
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	out := r.renderLogs(newLogBatch("cursor", sid).
		event(5, spanBash, semconv.EventFileOpen, 50, "/usr/bin/cat", scored(map[string]any{semconv.FilePath: "/home/u/.ssh/id_rsa"}, 95, semconv.LevelCritical, true, "sensitive_path")).
		event(9, spanClaude, semconv.EventSessionEnd, 40, "/opt/cursor/cursor", nil).ld)
	lines := linesOf(out)
	require.Len(t, lines, 2)
	assert.Equal(t, "cursor:04000000      end     cursor  duration ?  0 processes  1 event  1 alert (critical 1)  max score 95", lines[1])
	assert.Equal(t, 0, r.sessions.len())
}

func TestStragglersAfterEndDoNotReviveTheSession(t *testing.T) {
	sid := pcommon.TraceID{5}
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	r.renderLogs(newLogBatch("codex", sid).
		event(0, spanClaude, semconv.EventSessionStart, 1, "/usr/bin/codex", nil).
		event(1, spanBash, semconv.EventProcessExec, 2, "/usr/bin/sleep", map[string]any{semconv.ProcessParentPID: 1}).
		event(2, spanClaude, semconv.EventSessionEnd, 1, "/usr/bin/codex", nil).ld)
	require.Equal(t, 0, r.sessions.len())

	// The exit was flushed after the end, and the end came twice.
	out := r.renderLogs(newLogBatch("codex", sid).
		event(3, spanBash, semconv.EventProcessExit, 2, "/usr/bin/sleep", map[string]any{semconv.ProcessExitCode: 0}).
		event(4, spanClaude, semconv.EventSessionEnd, 1, "/usr/bin/codex", nil).ld)
	lines := linesOf(out)
	require.Len(t, lines, 2)
	assert.Equal(t, "codex:05000000       exit      sleep[2] exit 0", lines[0])
	assert.Equal(t, 0, r.sessions.len(), "stragglers are printed, not remembered")

	// A new start with the same id (a restarted collector re-deriving it)
	// is a session again.
	r.renderLogs(newLogBatch("codex", sid).event(5, spanClaude, semconv.EventSessionStart, 1, "/usr/bin/codex", nil).ld)
	assert.Equal(t, 1, r.sessions.len())
}

func TestSessionKeyFallsBackToTraceID(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(semconv.ServiceName, "aider")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTraceID(pcommon.TraceID{0xde, 0xad, 0xbe, 0xef})
	// event.name only as an attribute, as older producers send it.
	lr.Attributes().PutStr(semconv.EventName, semconv.EventFileOpen)
	lr.Attributes().PutStr(semconv.FilePath, "/etc/hosts")
	out := newRenderer(false, SpansGenAI, defaultMaxSessions).renderLogs(ld)
	assert.Equal(t, "aider:deadbeef       open    ? /etc/hosts\n", string(out))
}

func TestHelpers(t *testing.T) {
	assert.Equal(t, "-c", shellQuote("-c"))
	assert.Equal(t, "'a b'", shellQuote("a b"))
	assert.Equal(t, `'it'\''s'`, shellQuote("it's"))
	assert.Equal(t, "''", shellQuote(""))
	assert.Equal(t, "O_RDONLY", openFlags(0))
	assert.Equal(t, "O_RDWR|O_TMPFILE", openFlags(2|0o20200000))
	assert.Equal(t, "O_RDONLY|O_DIRECTORY", openFlags(0o200000))
	assert.Equal(t, "TXT", dnsType("16"))
	assert.Equal(t, "TYPE99", dnsType("99"))
	assert.Equal(t, "MX", dnsType("MX"))
	assert.Equal(t, "ENOENT", errnoText(-2))
	assert.Equal(t, "abc...", clean("abcdef", 3))
	assert.Equal(t, `\xff`, clean("\xff", 10))
	assert.Equal(t, "héllo", clean("héllo", 10))
	long := strings.Repeat("a", 2*maxArgvRunes)
	assert.Len(t, []rune(commandLine("/bin/echo", []string{"echo", long}, false)), maxArgvRunes+3)
	assert.Equal(t, "/bin/echo hi ...", commandLine("/bin/echo", []string{"echo", "hi"}, true))
	assert.Equal(t, "echo hi", commandLine("", []string{"echo", "hi"}, false))
	assert.Equal(t, "claude-code:4bf92f35", sessionTag("claude-code", claudeSession.String()))
	assert.Equal(t, "x:0a1b2c3d", sessionTag("x", "0a1b2c3d-4e5f-6789-abcd-ef0123456789"))
	assert.Equal(t, sessionColor("s1"), sessionColor("s1"), "a session keeps its colour")
}

// A short session as it appears on the console (the README shows it too).
func Example_plainOutput() {
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	b := newLogBatch("claude-code", claudeSession).
		event(0, spanClaude, semconv.EventSessionStart, 4242, claudeExe, map[string]any{semconv.ProcessWorkingDirectory: "/home/alice/proj"}).
		event(10, spanBash, semconv.EventProcessExec, 4300, bashExe, map[string]any{semconv.ProcessParentPID: 4242, semconv.ProcessCommandArgs: []any{"bash", "-c", "cat ~/.aws/credentials"}}).
		event(20, spanBash, semconv.EventFileOpen, 4300, bashExe, scored(map[string]any{semconv.FilePath: "/home/alice/.aws/credentials", semconv.FileFlags: 0}, 90, semconv.LevelCritical, true, "sensitive_path"))
	fmt.Print(string(r.renderLogs(b.ld)))
	// Output:
	// claude-code:4bf92f35 start   claude-code  cwd /home/alice/proj  host devbox  claude[4242] /home/alice/.local/bin/claude
	// claude-code:4bf92f35 exec      bash[4300] /usr/bin/bash -c 'cat ~/.aws/credentials'
	// claude-code:4bf92f35 ALERT     open bash[4300] /home/alice/.aws/credentials O_RDONLY  critical 90 rule=sensitive_path
}

func TestAlertNamesTheToolCall(t *testing.T) {
	r := newRenderer(false, SpansGenAI, defaultMaxSessions)
	attrs := pcommon.NewMap()
	attrs.PutStr(semconv.GenAIToolCallID, "toolu_01")
	attrs.PutStr(semconv.GenAIToolName, "Bash")
	attrs.PutInt(semconv.RiskScore, 80)
	attrs.PutStr(semconv.RiskLevel, "high")
	attrs.PutBool(semconv.Alert, true)
	attrs.PutStr(semconv.SecurityRuleName, "file.ssh_key")
	assert.Contains(t, r.riskText(riskOf(attrs)), "tool=Bash:toolu_01")

	// A secret sent to the model names the call whose result carried it.
	attrs = pcommon.NewMap()
	attrs.PutStr(semconv.SecretToolCallID, "toolu_02")
	attrs.PutStr(semconv.SecretToolName, "Bash")
	attrs.PutInt(semconv.RiskScore, 85)
	attrs.PutBool(semconv.Alert, true)
	assert.Contains(t, r.riskText(riskOf(attrs)), "tool=Bash:toolu_02")

	// Not an alert: no tool suffix, the line stays short.
	attrs.PutBool(semconv.Alert, false)
	assert.NotContains(t, r.riskText(riskOf(attrs)), "tool=")
}
