package agentconsoleexporter

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/semconv"
)

// The tag column: short, emoji-free, greppable.
const (
	tagStart   = "start"
	tagEnd     = "end"
	tagExec    = "exec"
	tagExit    = "exit"
	tagOpen    = "open"
	tagConnect = "connect"
	tagDNS     = "dns"
	tagLLM     = "llm"
	tagEnforce = "enforce"
	tagEvent   = "event"
	tagSpan    = "span"
	tagAlert   = "ALERT"
)

const (
	tagWidth        = 7  // len("connect"), the longest tag
	sessionTagWidth = 20 // fits "claude-code:4bf92f35"; longer names just push the line
	sessionIDChars  = 8
	indentPerDepth  = 2
	maxIndentDepth  = 16 // a fork bomb must not push the text off screen
)

// levels in the order the summary lists them.
var levelOrder = []string{semconv.LevelCritical, semconv.LevelHigh, semconv.LevelMedium, semconv.LevelLow, semconv.LevelNone}

type renderer struct {
	color    bool
	allSpans bool
	sessions *sessions
	buf      []byte
}

func newRenderer(color bool, spans string, maxSessions int) *renderer {
	return &renderer{color: color, allSpans: spans == SpansAll, sessions: newSessions(maxSessions)}
}

// line is one output line before layout.
type line struct {
	s      *session
	tag    string
	depth  int
	body   string // already painted where parts need colour
	risk   risk
	noRisk bool
}

type risk struct {
	score int64
	level string
	alert bool
	rule  string
	rules []string
	tool  string // the tool call behind the record, "name:id"
}

func riskOf(attrs pcommon.Map) risk {
	score, _ := getInt(attrs, semconv.RiskScore)
	return risk{
		score: score,
		level: getStr(attrs, semconv.RiskLevel),
		alert: getBool(attrs, semconv.Alert),
		rule:  getStr(attrs, semconv.SecurityRuleName),
		rules: getStrs(attrs, semconv.RiskRules),
		tool:  toolOf(attrs),
	}
}

// toolOf names the tool call behind a record: the one whose process made
// it, else (a secret sent to the model) the one whose result carried it.
func toolOf(attrs pcommon.Map) string {
	id, name := getStr(attrs, semconv.GenAIToolCallID), getStr(attrs, semconv.GenAIToolName)
	if id == "" && name == "" {
		id, name = getStr(attrs, semconv.SecretToolCallID), getStr(attrs, semconv.SecretToolName)
	}
	switch {
	case id != "" && name != "":
		return name + ":" + id
	case id != "":
		return id
	}
	return name
}

func (k risk) scored() bool { return k.alert || k.score > 0 }

func (r *renderer) emit(l line) {
	tag := l.tag
	tagSGR := tagColors[tag]
	if l.risk.alert && !l.noRisk {
		// The alert takes the tag column so that `grep ALERT` finds every
		// alert; the event kind moves to the front of the body.
		l.body = r.paint(tag, tagSGR) + " " + l.body
		tag, tagSGR = tagAlert, levelColor(l.risk.level)
	}

	sessTag := clean(l.s.tag, 64)
	b := r.buf
	b = append(b, r.paint(sessTag, sessionColor(l.s.id))...)
	b = appendPad(b, utf8.RuneCountInString(sessTag), sessionTagWidth)
	b = append(b, ' ')
	b = append(b, r.paint(tag, tagSGR)...)
	b = appendPad(b, len(tag), tagWidth)
	b = append(b, ' ')
	depth := min(max(l.depth, 0), maxIndentDepth)
	for range depth * indentPerDepth {
		b = append(b, ' ')
	}
	b = append(b, l.body...)
	if !l.noRisk && l.risk.scored() {
		b = append(b, "  "...)
		b = append(b, r.riskText(l.risk)...)
	}
	b = append(b, '\n')
	r.buf = b
}

func appendPad(b []byte, have, want int) []byte {
	for ; have < want; have++ {
		b = append(b, ' ')
	}
	return b
}

// riskText is the suffix of a scored line: "critical 95 rule=x rules=a,b".
func (r *renderer) riskText(k risk) string {
	level := k.level
	if level == "" {
		level = "risk"
	}
	var b strings.Builder
	b.WriteString(level)
	b.WriteString(" ")
	b.WriteString(strconv.FormatInt(k.score, 10))
	if k.rule != "" {
		b.WriteString(" rule=")
		b.WriteString(clean(k.rule, maxFieldRunes))
	}
	// The rule list is worth its room only when it says more than the
	// top rule does.
	if len(k.rules) > 0 && !(len(k.rules) == 1 && k.rules[0] == k.rule) {
		b.WriteString(" rules=")
		b.WriteString(clean(strings.Join(k.rules, ","), maxFieldRunes))
	}
	if k.alert && k.tool != "" {
		b.WriteString(" tool=")
		b.WriteString(clean(k.tool, maxFieldRunes))
	}
	sgr := sgrDim
	if k.alert {
		sgr = levelColor(k.level)
	}
	return r.paint(b.String(), sgr)
}

// sessionKey finds the session of a record: session.id (resource first,
// then record), else the trace id, which the contract makes the same.
func sessionKey(res, attrs pcommon.Map, tid pcommon.TraceID) string {
	if id := first(semconv.SessionID, res, attrs); id != "" {
		return id
	}
	if !tid.IsEmpty() {
		return tid.String()
	}
	return "unknown"
}

func sessionTag(agent, id string) string {
	short := strings.ReplaceAll(id, "-", "")
	if len(short) > sessionIDChars {
		short = short[:sessionIDChars]
	}
	return agent + ":" + short
}

func agentName(res, attrs pcommon.Map) string {
	if a := first(semconv.ServiceName, res); a != "" {
		return a
	}
	if a := first(semconv.GenAIAgentName, attrs, res); a != "" {
		return a
	}
	return "agent"
}

func eventName(lr plog.LogRecord) string {
	if n := lr.EventName(); n != "" {
		return n
	}
	return getStr(lr.Attributes(), semconv.EventName)
}

func timestampOf(lr plog.LogRecord) pcommon.Timestamp {
	if ts := lr.Timestamp(); ts != 0 {
		return ts
	}
	return lr.ObservedTimestamp()
}

// renderLogs renders every record in arrival order and returns the bytes
// to write; the slice is reused by the next call.
func (r *renderer) renderLogs(ld plog.Logs) []byte {
	r.buf = r.buf[:0]
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				r.logRecord(res, lrs.At(k))
			}
		}
	}
	return r.buf
}

func (r *renderer) logRecord(res pcommon.Map, lr plog.LogRecord) {
	attrs := lr.Attributes()
	id := sessionKey(res, attrs, lr.TraceID())
	name := eventName(lr)
	tag := sessionTag(agentName(res, attrs), id)
	var s *session
	if name != semconv.EventSessionStart && r.sessions.get(id) == nil && r.sessions.hasEnded(id) {
		// A straggler of an ended session: printed, not remembered.
		s = newSession(id, tag)
	} else {
		s = r.sessions.getOrCreate(id, tag)
	}

	pid, _ := getInt(attrs, semconv.ProcessPID)
	k := riskOf(attrs)
	if name != semconv.EventSessionStart && name != semconv.EventSessionEnd {
		s.events++
	}
	s.score(k.score, k.level, k.alert)

	l := line{s: s, risk: k, depth: s.depthOf(pid)}
	switch name {
	case semconv.EventSessionStart:
		r.sessionStart(&l, res, attrs, lr, pid)
	case semconv.EventSessionEnd:
		r.sessionEnd(&l, res, attrs, lr)
		r.emit(l)
		r.sessions.remove(s)
		r.sessions.markEnded(id)
		return
	case semconv.EventProcessExec:
		ppid, _ := getInt(attrs, semconv.ProcessParentPID)
		l.tag = tagExec
		l.depth = s.exec(pid, ppid, procName(attrs, s, pid), lr.SpanID())
		l.body = r.execBody(s, attrs, pid)
	case semconv.EventProcessExit:
		l.tag = tagExit
		l.body = r.procLabel(attrs, s, pid) + " " + r.exitText(attrs)
		s.exit(pid)
	case semconv.EventFileOpen:
		l.tag = tagOpen
		l.body = r.procLabel(attrs, s, pid) + " " + openText(attrs)
	case semconv.EventNetConnect:
		l.tag = tagConnect
		l.body = r.procLabel(attrs, s, pid) + " " + connectText(attrs)
	case semconv.EventDNSQuery:
		l.tag = tagDNS
		l.body = r.procLabel(attrs, s, pid) + " " + dnsText(attrs)
	case semconv.EventLLMRequest:
		l.tag = tagLLM
		l.body = r.procLabel(attrs, s, pid) + " " + llmRequestText(attrs)
	case semconv.EventLLMResponse:
		l.tag = tagLLM
		l.body = r.procLabel(attrs, s, pid) + " " + llmResponseText(attrs)
	case semconv.EventEnforce:
		l.tag = tagEnforce
		l.body = r.procLabel(attrs, s, pid) + " " + enforceText(attrs)
	default:
		l.tag = tagEvent
		n := name
		if n == "" {
			n = "(unnamed)"
		}
		l.body = r.procLabel(attrs, s, pid) + " " + clean(n, maxFieldRunes)
	}
	r.emit(l)
}

func procName(attrs pcommon.Map, s *session, pid int64) string {
	if n := getStr(attrs, semconv.ProcessExecutableName); n != "" {
		return n
	}
	if p := getStr(attrs, semconv.ProcessExecutablePath); p != "" {
		return path.Base(p)
	}
	if n := s.nameOf(pid); n != "" {
		return n
	}
	return "?"
}

// procLabel is "curl[4301]": the name says what, the pid tells two curls
// apart.
func (r *renderer) procLabel(attrs pcommon.Map, s *session, pid int64) string {
	label := clean(procName(attrs, s, pid), maxFieldRunes)
	if pid != 0 {
		label += "[" + strconv.FormatInt(pid, 10) + "]"
	}
	return r.paint(label, sgrBold)
}

func (r *renderer) sessionStart(l *line, res, attrs pcommon.Map, lr plog.LogRecord, pid int64) {
	s := l.s
	l.tag = tagStart
	l.depth = 0
	s.start = timestampOf(lr)
	s.cwd = getStr(attrs, semconv.ProcessWorkingDirectory)
	if pid != 0 && s.rootPID != pid {
		s.rootPID = pid
		s.processes++
		s.put(pid, &proc{depth: 0, name: procName(attrs, s, pid), span: lr.SpanID()})
	}

	parts := []string{r.paint(clean(agentName(res, attrs), maxFieldRunes), sgrBold)}
	if uid, ok := getInt(attrs, semconv.ProcessUserID); ok {
		parts = append(parts, "user "+strconv.FormatInt(uid, 10))
	}
	if s.cwd != "" {
		parts = append(parts, "cwd "+clean(s.cwd, maxFieldRunes))
	}
	if h := first(semconv.HostName, res, attrs); h != "" {
		parts = append(parts, "host "+clean(h, maxFieldRunes))
	}
	if pid != 0 {
		root := r.procLabel(attrs, s, pid)
		if cmd := commandLine(getStr(attrs, semconv.ProcessExecutablePath), getStrs(attrs, semconv.ProcessCommandArgs), getBool(attrs, semconv.ArgsTruncated)); cmd != "" {
			root += " " + cmd
		}
		parts = append(parts, root)
	}
	l.body = strings.Join(parts, "  ")
}

func (r *renderer) sessionEnd(l *line, res, attrs pcommon.Map, lr plog.LogRecord) {
	s := l.s
	l.tag = tagEnd
	l.depth = 0
	l.noRisk = true // the summary below already carries the session's risk

	dur := "duration ?"
	if end := timestampOf(lr); s.start != 0 && end >= s.start {
		dur = shortDuration(time.Duration(end - s.start))
	}
	parts := []string{
		r.paint(clean(agentName(res, attrs), maxFieldRunes), sgrBold),
		dur,
		plural(s.processes, "process", "processes"),
		plural(s.events, "event", "events"),
		r.alertSummary(s),
		"max score " + strconv.FormatInt(s.maxScore, 10),
	}
	l.body = strings.Join(parts, "  ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// alertSummary: "alerts 2 (critical 1, high 1)".
func (r *renderer) alertSummary(s *session) string {
	total := 0
	var byLevel []string
	seen := map[string]bool{}
	add := func(level string) {
		n := s.alerts[level]
		seen[level] = true
		if n == 0 {
			return
		}
		total += n
		byLevel = append(byLevel, r.paint(level+" "+strconv.Itoa(n), levelColor(level)))
	}
	for _, level := range levelOrder {
		add(level)
	}
	// Levels outside the contract still count, in a stable order.
	var other []string
	for level := range s.alerts {
		if !seen[level] {
			other = append(other, level)
		}
	}
	slices.Sort(other)
	for _, level := range other {
		add(clean(level, 32))
	}
	text := plural(total, "alert", "alerts")
	if total > 0 {
		text += " (" + strings.Join(byLevel, ", ") + ")"
	}
	return text
}

func (r *renderer) execBody(s *session, attrs pcommon.Map, pid int64) string {
	body := r.procLabel(attrs, s, pid)
	if cmd := commandLine(getStr(attrs, semconv.ProcessExecutablePath), getStrs(attrs, semconv.ProcessCommandArgs), getBool(attrs, semconv.ArgsTruncated)); cmd != "" {
		body += " " + cmd
	}
	// The session header shows the session's cwd; repeat it only where a
	// process works elsewhere.
	if cwd := getStr(attrs, semconv.ProcessWorkingDirectory); cwd != "" && cwd != s.cwd {
		body += r.paint("  cwd "+clean(cwd, maxFieldRunes), sgrDim)
	}
	return body
}

func (r *renderer) exitText(attrs pcommon.Map) string {
	if sig, ok := getInt(attrs, semconv.ExitSignal); ok && sig > 0 {
		name := signalName(sig)
		if name == "" {
			name = "signal " + strconv.FormatInt(sig, 10)
		}
		return r.paint("killed by "+name, sgrRed)
	}
	code, ok := getInt(attrs, semconv.ProcessExitCode)
	if !ok {
		return "exited"
	}
	text := "exit " + strconv.FormatInt(code, 10)
	if code != 0 {
		return r.paint(text, sgrRed)
	}
	return text
}

func openText(attrs pcommon.Map) string {
	text := clean(getStr(attrs, semconv.FilePath), maxFieldRunes)
	if text == "" {
		text = "?"
	}
	if v, ok := attrs.Get(semconv.FileFlags); ok {
		if v.Type() == pcommon.ValueTypeInt {
			text += " " + openFlags(v.Int())
		} else if f := v.AsString(); f != "" {
			text += " " + clean(f, maxFieldRunes)
		}
	}
	if ret, ok := getInt(attrs, semconv.FileResult); ok && ret < 0 {
		text += " = " + errnoText(ret)
	}
	return text
}

func connectText(attrs pcommon.Map) string {
	port, hasPort := getInt(attrs, semconv.NetworkPeerPort)
	addr := getStr(attrs, semconv.NetworkPeerAddress)
	if addr == "" {
		addr = "?"
	}
	text := hostPort(clean(addr, maxFieldRunes), port, hasPort)
	if t := getStr(attrs, semconv.NetworkTransport); t != "" {
		text = clean(t, 16) + " " + text
	}
	if srv := getStr(attrs, semconv.ServerAddress); srv != "" {
		text += " (" + clean(srv, maxFieldRunes) + ")"
	}
	// -EINPROGRESS is the normal answer of a non-blocking connect.
	if ret, ok := getInt(attrs, semconv.ConnectResult); ok && ret < 0 && ret != -115 {
		text += " = " + errnoText(ret)
	}
	return text
}

func dnsText(attrs pcommon.Map) string {
	qtype := dnsType(getStr(attrs, semconv.DNSQuestionType))
	text := clean(getStr(attrs, semconv.DNSQuestionName), maxFieldRunes)
	if qtype != "" {
		text = clean(qtype, 16) + " " + text
	}
	if answers := getStrs(attrs, semconv.DNSAnswers); len(answers) > 0 {
		shown := answers[:min(len(answers), maxDNSAnswers)]
		text += " -> " + clean(strings.Join(shown, ", "), maxFieldRunes)
		if more := len(answers) - len(shown); more > 0 {
			text += fmt.Sprintf(" (+%d more)", more)
		}
	}
	if res := getStr(attrs, semconv.DNSResolver); res != "" {
		text += " @" + clean(res, maxFieldRunes)
	}
	return text
}

func llmRequestText(attrs pcommon.Map) string {
	parts := []string{"->"}
	if p := getStr(attrs, semconv.GenAIProviderName); p != "" {
		parts = append(parts, clean(p, maxFieldRunes))
	}
	if m := getStr(attrs, semconv.GenAIRequestModel); m != "" {
		parts = append(parts, clean(m, maxFieldRunes))
	}
	if srv := getStr(attrs, semconv.ServerAddress); srv != "" {
		parts = append(parts, "@"+clean(srv, maxFieldRunes))
	}
	if tools := getStrs(attrs, semconv.GenAIToolName); len(tools) > 0 {
		parts = append(parts, "tools "+clean(strings.Join(tools, ","), maxFieldRunes))
	}
	return strings.Join(parts, " ")
}

func llmResponseText(attrs pcommon.Map) string {
	parts := []string{"<-"}
	model := getStr(attrs, semconv.GenAIResponseModel)
	if model == "" {
		model = getStr(attrs, semconv.GenAIRequestModel)
	}
	if model != "" {
		parts = append(parts, clean(model, maxFieldRunes))
	}
	in, hasIn := getInt(attrs, semconv.GenAIUsageInputTokens)
	out, hasOut := getInt(attrs, semconv.GenAIUsageOutputTokens)
	if hasIn || hasOut {
		parts = append(parts, fmt.Sprintf("tokens in %d out %d", in, out))
	}
	if tools := getStrs(attrs, semconv.GenAIToolName); len(tools) > 0 {
		parts = append(parts, "tools "+clean(strings.Join(tools, ","), maxFieldRunes))
	}
	if fr := getStrs(attrs, semconv.GenAIFinishReasons); len(fr) > 0 {
		parts = append(parts, "finish "+clean(strings.Join(fr, ","), maxFieldRunes))
	}
	return strings.Join(parts, " ")
}

func enforceText(attrs pcommon.Map) string {
	action := getStr(attrs, semconv.EnforceAction)
	if action == "" {
		action = "enforce"
	}
	parts := []string{clean(action, 32)}
	if p := getStr(attrs, semconv.FilePath); p != "" {
		parts = append(parts, clean(p, maxFieldRunes))
	}
	if a := getStr(attrs, semconv.NetworkPeerAddress); a != "" {
		port, hasPort := getInt(attrs, semconv.NetworkPeerPort)
		parts = append(parts, hostPort(clean(a, maxFieldRunes), port, hasPort))
	}
	if rule := getStr(attrs, semconv.EnforceRule); rule != "" {
		parts = append(parts, "by "+clean(rule, maxFieldRunes))
	}
	return strings.Join(parts, " ")
}

// renderTraces prints spans as they end. Spans never create session state:
// the root span ends after the session's end event, and state made from it
// would never be dropped.
func (r *renderer) renderTraces(td ptrace.Traces) []byte {
	r.buf = r.buf[:0]
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				r.span(res, spans.At(k))
			}
		}
	}
	return r.buf
}

func (r *renderer) span(res pcommon.Map, sp ptrace.Span) {
	attrs := sp.Attributes()
	op := getStr(attrs, semconv.GenAIOperationName)
	genai := op != "" && op != semconv.GenAIOpInvokeAgent
	if !genai && !r.allSpans {
		return
	}
	id := sessionKey(res, attrs, sp.TraceID())
	s := r.sessions.get(id)
	detached := s == nil
	if detached {
		// The session already ended (its last spans end with it) or was
		// never seen: a throwaway state just for this line, at depth 0.
		s = newSession(id, sessionTag(agentName(res, attrs), id))
	}

	pid, hasPID := getInt(attrs, semconv.ProcessPID)
	depth := 0
	switch {
	case detached, op == semconv.GenAIOpInvokeAgent:
	case hasPID && !genai:
		depth = s.depthOf(pid)
	default:
		// A chat or tool span sits at the level of the process that made it,
		// like that process's events.
		if ppid, ok := s.spans[sp.ParentSpanID()]; ok {
			depth = s.depthOf(ppid)
		}
	}

	parts := []string{r.paint(clean(sp.Name(), maxFieldRunes), sgrBold)}
	if hasPID && !genai && op == "" {
		parts[0] += r.paint("["+strconv.FormatInt(pid, 10)+"]", sgrBold)
	}
	if sp.EndTimestamp() >= sp.StartTimestamp() && sp.StartTimestamp() != 0 {
		parts = append(parts, shortDuration(time.Duration(sp.EndTimestamp()-sp.StartTimestamp())))
	}
	switch op {
	case semconv.GenAIOpChat:
		in, hasIn := getInt(attrs, semconv.GenAIUsageInputTokens)
		out, hasOut := getInt(attrs, semconv.GenAIUsageOutputTokens)
		if hasIn || hasOut {
			parts = append(parts, fmt.Sprintf("tokens in %d out %d", in, out))
		}
		if srv := getStr(attrs, semconv.ServerAddress); srv != "" {
			parts = append(parts, "@"+clean(srv, maxFieldRunes))
		}
	case "":
		if code, ok := getInt(attrs, semconv.ProcessExitCode); ok {
			parts = append(parts, "exit "+strconv.FormatInt(code, 10))
		}
	}
	if sp.Status().Code() == ptrace.StatusCodeError {
		e := getStr(attrs, semconv.ErrorType)
		if e == "" {
			e = sp.Status().Message()
		}
		parts = append(parts, r.paint(strings.TrimSpace("error "+clean(e, maxFieldRunes)), sgrRed))
	}
	// Span rollups repeat what the scored events already showed, so they
	// are a quiet suffix and never an ALERT line of their own.
	k := riskOf(attrs)
	k.alert = false
	r.emit(line{s: s, tag: tagSpan, depth: depth, body: strings.Join(parts, "  "), risk: k})
}
