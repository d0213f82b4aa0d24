package session

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

const operationInvokeAgent = "invoke_agent"

type exitInfo struct {
	code   int
	signal int
}

// newLog appends a record with the attributes every event carries: the
// scoring processor's path rules need the user (for ~) and the working
// directory on each record, not only on the exec.
func (t *Tracker) newLog(dst plog.LogRecordSlice, s *session, span pcommon.SpanID, event string, at uint64, pid uint32, img *image, extra int) plog.LogRecord {
	lr := dst.AppendEmpty()
	lr.SetTimestamp(t.clock.Wall(at))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetTraceID(s.id)
	lr.SetSpanID(span)
	lr.SetEventName(event)
	a := lr.Attributes()
	a.EnsureCapacity(8 + extra)
	a.PutStr(semconv.EventName, event)
	a.PutStr(semconv.SessionID, s.idHex)
	a.PutInt(semconv.ProcessPID, int64(pid))
	a.PutStr(semconv.ProcessExecutablePath, img.exe)
	a.PutInt(semconv.ProcessUserID, int64(img.uid))
	a.PutStr(semconv.ProcessWorkingDirectory, img.cwd)
	putHomes(a, img)
	return lr
}

// putHomes: both meanings of `~`, on every record, for the policy's and
// enforcement's home-relative rules.
func putHomes(a pcommon.Map, img *image) {
	if img.envHome != "" {
		a.PutStr(semconv.ProcessEnvHome, img.envHome)
	}
	if img.userHome != "" {
		a.PutStr(semconv.UserHome, img.userHome)
	}
}

// eventLog is newLog for per-event records, which count against
// MaxPendingRecords; session and process structure records do not.
func (t *Tracker) eventLog(p *proc, event string, at uint64, extra int) (plog.LogRecord, bool) {
	// Even a record dropped here was the process's own doing.
	p.forkOnly = false
	if t.pending >= t.cfg.MaxPendingRecords {
		t.st.recordsDropped.Add(1)
		return plog.LogRecord{}, false
	}
	t.pending++
	dst := p.sess.logs
	if p.wait != nil {
		dst = t.heldLogs(p)
	}
	lr := t.newLog(dst, p.sess, t.ownSpan(p), event, at, p.key.PID, p.img, extra+3)
	putTool(lr.Attributes(), p.tool, p.toolRoot && event == semconv.EventProcessExec)
	return lr, true
}

func (t *Tracker) logSession(s *session, start bool) {
	event, at := semconv.EventSessionEnd, s.lastExit
	if start {
		event, at = semconv.EventSessionStart, s.start
	}
	lr := t.newLog(s.logs, s, s.rootSpan, event, at, s.rootPID, s.rootImg, 1)
	lr.Attributes().PutStr(semconv.GenAIAgentName, s.name)
}

func (t *Tracker) logExec(p *proc, at uint64) {
	lr, ok := t.eventLog(p, semconv.EventProcessExec, at, 5)
	if !ok {
		return
	}
	a := lr.Attributes()
	a.PutInt(semconv.ProcessParentPID, int64(p.ppid))
	a.PutStr(semconv.ProcessExecutableName, p.img.exeName)
	putArgs(a, p.img.args)
	putTruncation(a, p.img)
	putWhatRan(a, p.img)
	t.noteExec(p)
}

func (t *Tracker) logExit(p *proc, at uint64, ex *exitInfo) {
	if t.cfg.DropCleanExits && ex != nil && ex.code == 0 && ex.signal == 0 {
		t.st.cleanExitDrops.Add(1)
		return
	}
	lr, ok := t.eventLog(p, semconv.EventProcessExit, at, 3)
	if !ok {
		return
	}
	putExit(lr.Attributes(), ex)
}

func putArgs(a pcommon.Map, args []string) {
	sl := a.PutEmptySlice(semconv.ProcessCommandArgs)
	sl.EnsureCapacity(len(args))
	for _, arg := range args {
		sl.AppendEmpty().SetStr(arg)
	}
}

// putWhatRan: a fileless image, the program a loader loads, the pipes
// that join the process to others.
func putWhatRan(a pcommon.Map, img *image) {
	if img.fileless {
		a.PutBool(semconv.ProcessFileless, true)
	}
	if img.program != "" {
		a.PutStr(semconv.ProcessProgram, img.program)
	}
	if img.stdinPipe != 0 {
		a.PutInt(semconv.ProcessStdinPipe, int64(img.stdinPipe))
	}
	if img.stdoutPipe != 0 {
		a.PutInt(semconv.ProcessStdoutPipe, int64(img.stdoutPipe))
	}
}

func putTruncation(a pcommon.Map, img *image) {
	if img.argsTruncated {
		a.PutBool(semconv.ArgsTruncated, true)
	}
	if img.pathTruncated {
		a.PutBool(semconv.PathTruncated, true)
	}
}

// putExit writes the exit: error.type is the signal name when a signal
// ended the process, else the exit code; nothing for a clean exit. A nil
// exit (the exit event was lost) has no code.
func putExit(a pcommon.Map, ex *exitInfo) string {
	if ex == nil {
		return ""
	}
	a.PutInt(semconv.ProcessExitCode, int64(ex.code))
	var errType string
	switch {
	case ex.signal != 0:
		errType = SignalName(ex.signal)
		a.PutStr(semconv.ExitSignal, errType)
	case ex.code != 0:
		errType = strconv.Itoa(ex.code)
	}
	if errType != "" {
		a.PutStr(semconv.ErrorType, errType)
	}
	return errType
}

func putProcess(a pcommon.Map, pid, ppid uint32, img *image) {
	a.PutInt(semconv.ProcessPID, int64(pid))
	a.PutInt(semconv.ProcessParentPID, int64(ppid))
	a.PutStr(semconv.ProcessExecutablePath, img.exe)
	a.PutStr(semconv.ProcessExecutableName, img.exeName)
	putArgs(a, img.args)
	a.PutStr(semconv.ProcessWorkingDirectory, img.cwd)
	a.PutInt(semconv.ProcessUserID, int64(img.uid))
	putHomes(a, img)
	putTruncation(a, img)
}

// ownSpan is p's span for something that refers to it (a record, a
// child's parent): from now on that span will be exported.
func (t *Tracker) ownSpan(p *proc) pcommon.SpanID {
	p.forkOnly = false
	return p.span
}

// nextImageSpan starts the span of p's next image at an exec. A fork that
// did nothing of its own before it exec'd has no span: the new image takes
// its place under the parent process's span, and so keeps the fork's
// parent; otherwise the old image's span ends here and is the new one's
// parent.
func (t *Tracker) nextImageSpan(p *proc, at uint64) {
	t.releaseOpens(p) // they were the old image's
	if p.forkOnly {
		p.forkOnly = false
	} else {
		t.endSpan(p, at, nil)
		p.parentSpan = p.span
	}
	p.seq++
	p.span = spanID(p.sess.id, p.key.PID, p.key.Start, p.seq)
	p.spanStart = at
}

// endSpan emits the span of p's current image, ended at `at` by an exec
// (ex nil and not lost) or an exit. A fork-only image has none.
func (t *Tracker) endSpan(p *proc, at uint64, ex *exitInfo) {
	if p.forkOnly {
		return
	}
	if t.pending >= t.cfg.MaxPendingRecords {
		t.st.recordsDropped.Add(1)
		return
	}
	t.pending++
	s := p.sess
	dst := s.spans
	if p.wait != nil {
		dst = t.heldSpans(p)
	}
	sp := dst.AppendEmpty()
	sp.SetTraceID(s.id)
	sp.SetSpanID(p.span)
	sp.SetParentSpanID(p.parentSpan)
	sp.SetName(p.img.name)
	sp.SetKind(ptrace.SpanKindInternal)
	sp.SetStartTimestamp(t.clock.Wall(p.spanStart))
	sp.SetEndTimestamp(t.clock.Wall(max(at, p.spanStart)))
	a := sp.Attributes()
	a.EnsureCapacity(12)
	putProcess(a, p.key.PID, p.ppid, p.img)
	putTool(a, p.tool, false)
	if errType := putExit(a, ex); errType != "" {
		msg := "exit code " + errType
		if ex.signal != 0 {
			msg = "killed by " + errType
		}
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage(msg)
	}
}

// endSession emits the session's end record and its root span.
func (t *Tracker) endSession(s *session) {
	s.ended = true
	t.active--
	t.st.activeSessions.Store(int64(t.active))
	t.st.sessionsEnded.Add(1)
	t.intentSessionEnd(s)
	t.logSession(s, false)
	sp := s.spans.AppendEmpty()
	sp.SetTraceID(s.id)
	sp.SetSpanID(s.rootSpan)
	sp.SetName(operationInvokeAgent + " " + s.name)
	sp.SetKind(ptrace.SpanKindInternal)
	sp.SetStartTimestamp(t.clock.Wall(s.start))
	sp.SetEndTimestamp(t.clock.Wall(max(s.lastExit, s.start)))
	a := sp.Attributes()
	a.EnsureCapacity(12)
	a.PutStr(semconv.GenAIAgentName, s.name)
	a.PutStr(semconv.GenAIOperationName, operationInvokeAgent)
	a.PutStr(semconv.SessionID, s.idHex)
	putProcess(a, s.rootPID, s.rootPPID, s.rootImg)
}

// Flush hands over what accumulated since the last call: one ResourceLogs
// and one ResourceSpans per session with something to say. It also ends
// the sessions whose last process exited at least Grace before now, and
// does the periodic housekeeping (lost exits, expired rejections).
func (t *Tracker) Flush(now time.Time) (plog.Logs, ptrace.Traces) {
	t.clock.Refresh()
	nowBoot := t.clock.Boot(now)
	if t.cfg.ReapInterval > 0 && nowBoot >= t.lastReap+uint64(t.cfg.ReapInterval) {
		t.reap(nowBoot)
		t.lastReap = nowBoot
	}
	t.expireOpens(nowBoot)
	t.expireExited(nowBoot)
	t.intentFlush(nowBoot)
	grace := uint64(t.cfg.Grace)
	for _, s := range t.sessions {
		if !s.ended && s.live == 0 && nowBoot >= s.lastExit+grace {
			t.endSession(s)
		}
	}
	logs, traces := plog.NewLogs(), ptrace.NewTraces()
	kept := t.sessions[:0]
	for _, s := range t.sessions {
		if s.logs.Len() > 0 {
			rl := logs.ResourceLogs().AppendEmpty()
			t.putResource(rl.Resource(), s)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(scopeName)
			s.logs.MoveAndAppendTo(sl.LogRecords())
		}
		if s.spans.Len() > 0 {
			rs := traces.ResourceSpans().AppendEmpty()
			t.putResource(rs.Resource(), s)
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(scopeName)
			s.spans.MoveAndAppendTo(ss.Spans())
		}
		if !s.ended {
			kept = append(kept, s)
		}
	}
	clear(t.sessions[len(kept):])
	t.sessions = kept
	t.pending = 0
	if ttl := uint64(t.cfg.RejectTTL); nowBoot >= t.lastExpire+ttl/4 {
		for k, r := range t.rejected {
			if nowBoot >= r.at+ttl {
				delete(t.rejected, k)
			}
		}
		t.lastExpire = nowBoot
	}
	return logs, traces
}

func (t *Tracker) putResource(r pcommon.Resource, s *session) {
	a := r.Attributes()
	a.EnsureCapacity(3)
	a.PutStr(semconv.ServiceName, s.name)
	a.PutStr(semconv.SessionID, s.idHex)
	a.PutStr(semconv.HostName, t.cfg.HostName)
}

// reap ends processes whose exit event never came (ring buffer full): gone
// from /proc, reused pid, or a zombie, on two passes in a row, so that an
// exit still in the ring buffer is handled first.
func (t *Tracker) reap(nowBoot uint64) {
	for k, p := range t.procs {
		st, err := proctree.ReadStat(t.cfg.ProcRoot, k.PID)
		if err == nil && st.Start == k.Start && !st.Zombie() {
			p.suspect = false
			continue
		}
		if !p.suspect {
			p.suspect = true
			continue
		}
		t.st.reaped.Add(1)
		t.logExit(p, nowBoot, nil)
		t.endSpan(p, nowBoot, nil)
		t.removeProc(p, nowBoot)
	}
}

// ScanProc adopts what runs already: every process that matches an agent
// starts a session, its descendants join it, the kernel is told to follow
// them all, and each gets a session start / exec record as if it had just
// started. Safe to call again: known processes are skipped. The collector
// itself is never a session member (its own opens would feed back).
func (t *Tracker) ScanProc(procRoot string) error {
	t.scanStart = BootNow()
	snap, err := proctree.Scan(procRoot)
	if snap == nil {
		return err
	}
	snap.Walk(func(sp *proctree.Proc) {
		if sp.PID == t.self || t.procs[sp.Key] != nil {
			return
		}
		img := t.imageOfProc(sp)
		start := sp.StartNS()
		var p *proc
		if parent := t.procs[sp.Parent]; parent != nil {
			if p = t.addProc(parent.sess, sp.Key, start, sp.PPID, img, t.ownSpan(parent), start, t.scanSeq); p == nil {
				return
			}
		} else {
			name, ok := t.cfg.Matcher.Match(procMatch(sp))
			if !ok {
				return
			}
			var s *session
			if s, p = t.startSession(name, sp.Key, start, sp.PPID, img, start, t.scanSeq); p == nil {
				return
			}
			t.logSession(s, true)
		}
		p.scanned = true
		t.track(p, false)
		t.logExec(p, start)
	})
	return err
}
