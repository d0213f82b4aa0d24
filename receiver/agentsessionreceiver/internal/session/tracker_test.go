package session

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree/proctreetest"
)

func invoked(e *kevent.Exec, filename string) *kevent.Exec {
	e.Filename = filename
	return e
}

// A whole session: agent → sh → curl, with file and network events, exits
// by code and by signal, and the grace period before the end.
func TestSessionTree(t *testing.T) {
	tr, rec := newTestTracker(t, nil)
	const (
		s0 = 1000*sec + 3*ms // root start; not a whole tick on purpose
		s1 = s0 + 100*ms
		s2 = s0 + 200*ms
	)
	tr.Handle(execEv(100, s0, s0+1*ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/home/u/proj", "aw-agent", "--task", "x"))
	tr.Handle(forkEv(101, s1, s1, 100, s0))
	tr.Handle(invoked(execEv(101, s1, s1+10*ms, 0, 100, "/usr/bin/dash", "/home/u/proj", "/bin/sh", "-c", "curl -s x"), "/bin/sh"))
	tr.Handle(forkEv(102, s2, s2, 101, s1))
	tr.Handle(execEv(102, s2, s2+10*ms, kevent.FlagArgsTruncated, 101, "/usr/bin/curl", "/home/u/proj", "curl", "-s", "https://example.com"))
	tr.Handle(openEv(102, s2, s2+20*ms, kevent.FlagPathRaw, "data/../out.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 3))
	tr.Handle(connectEv(102, s2, s2+30*ms, "127.0.0.1", 8080, 1, -115))
	tr.Handle(exitEv(102, s2, s0+300*ms, 0))
	tr.Handle(exitEv(101, s1, s0+400*ms, 1<<8))

	ld, td := tr.Flush(wall(s0 + 450*ms))
	logs, spans := flatLogs(t, ld), flatSpans(t, td)
	want := []string{"session.start:100", "process.exec:100", "process.exec:101", "process.exec:102",
		"file.open:102", "net.connect:102", "process.exit:102", "process.exit:101"}
	if got := events(logs); !slices.Equal(got, want) {
		t.Fatalf("events = %v\nwant %v", got, want)
	}
	id := SessionID(testBootID, key(100, s0))
	if ld.ResourceLogs().Len() != 1 || td.ResourceSpans().Len() != 1 {
		t.Fatalf("resources: %d logs, %d spans; want one each", ld.ResourceLogs().Len(), td.ResourceSpans().Len())
	}
	wantRes := map[string]any{semconv.ServiceName: "test-agent", semconv.SessionID: id.String(), semconv.HostName: "host-1"}
	for _, l := range logs {
		if l.trace != id || l.attrs[semconv.SessionID] != id.String() {
			t.Errorf("%s: trace %v, want %v", l.event, l.trace, id)
		}
		if l.attrs[semconv.ProcessWorkingDirectory] != "/home/u/proj" || l.attrs[semconv.ProcessUserID] != int64(1000) || l.attrs[semconv.ProcessExecutablePath] == "" {
			t.Errorf("%s: common attributes %v", l.event, l.attrs)
		}
		if !mapsEqual(l.resource, wantRes) {
			t.Errorf("resource %v", l.resource)
		}
	}
	// One span per process image: the forks exec'd before doing anything
	// of their own, so their exec images are their first spans.
	if got := spanNames(spans); !slices.Equal(got, []string{"curl:102", "sh:101"}) {
		t.Fatalf("spans = %v", got)
	}
	if rec := rec.take(); len(rec) != 0 {
		t.Errorf("kernel map calls for a kernel-matched session: %v", rec)
	}

	// Span ancestry follows the process tree.
	root := rootSpanID(id)
	sh101 := findSpan(t, spans, 101, "sh")
	curl := findSpan(t, spans, 102, "curl")
	span100 := spanID(id, 100, key(100, s0).Start, 0)
	for _, c := range []struct {
		name         string
		span, parent pcommon.SpanID
	}{
		{"sh under the agent", sh101.parent, span100},
		{"curl under sh", curl.parent, sh101.id},
	} {
		if c.span != c.parent {
			t.Errorf("%s: parent %v, want %v", c.name, c.span, c.parent)
		}
	}
	if sh101.start != tr.clock.Wall(s1+10*ms) {
		t.Errorf("sh starts %v, want at its exec", sh101.start)
	}
	if curl.attrs[semconv.ProcessExitCode] != int64(0) || curl.status != ptrace.StatusCodeUnset || curl.attrs[semconv.ErrorType] != nil {
		t.Errorf("curl exit: %v status %v", curl.attrs, curl.status)
	}
	if sh101.attrs[semconv.ProcessExitCode] != int64(1) || sh101.attrs[semconv.ErrorType] != "1" || sh101.status != ptrace.StatusCodeError {
		t.Errorf("sh exit: %v status %v", sh101.attrs, sh101.status)
	}
	if curl.kind != ptrace.SpanKindInternal || curl.attrs[semconv.ProcessParentPID] != int64(101) || !slices.Equal(curl.attrs[semconv.ProcessCommandArgs].([]any), []any{"curl", "-s", "https://example.com"}) {
		t.Errorf("curl span attrs %v", curl.attrs)
	}

	// Records carry their process's current span.
	for _, l := range logs {
		var want pcommon.SpanID
		switch l.event + ":" + strconv.FormatInt(l.pid(), 10) {
		case "agent.session.start:100":
			want = root
		case "agent.process.exec:100":
			want = span100
		case "agent.process.exec:101", "agent.process.exit:101":
			want = sh101.id
		default:
			want = curl.id
		}
		if l.span != want {
			t.Errorf("%s of %d: span %v, want %v", l.event, l.pid(), l.span, want)
		}
	}

	byEvent := func(ev string, pid int64) logRec {
		for _, l := range logs {
			if l.event == ev && l.pid() == pid {
				return l
			}
		}
		t.Fatalf("no %s of %d", ev, pid)
		return logRec{}
	}
	exec100 := byEvent(semconv.EventProcessExec, 100)
	if exec100.ts != tr.clock.Wall(s0+1*ms) || exec100.attrs[semconv.ProcessParentPID] != int64(1) ||
		exec100.attrs[semconv.ProcessExecutableName] != "aw-agent" ||
		!slices.Equal(exec100.attrs[semconv.ProcessCommandArgs].([]any), []any{"aw-agent", "--task", "x"}) {
		t.Errorf("exec 100: ts %v attrs %v", exec100.ts, exec100.attrs)
	}
	if _, ok := exec100.attrs[semconv.ArgsTruncated]; ok {
		t.Error("args_truncated without the flag")
	}
	if byEvent(semconv.EventProcessExec, 102).attrs[semconv.ArgsTruncated] != true {
		t.Error("args_truncated missing")
	}
	open := byEvent(semconv.EventFileOpen, 102).attrs
	wantOpen := map[string]any{semconv.FilePath: "/home/u/proj/out.txt", semconv.FileFlags: "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC",
		semconv.FileResult: int64(3), semconv.Hook: "tracepoint/syscalls/sys_exit_openat"}
	for k, v := range wantOpen {
		if open[k] != v {
			t.Errorf("open %s = %v, want %v", k, open[k], v)
		}
	}
	conn := byEvent(semconv.EventNetConnect, 102).attrs
	wantConn := map[string]any{semconv.NetworkPeerAddress: "127.0.0.1", semconv.NetworkPeerPort: int64(8080), semconv.NetworkTransport: "tcp",
		semconv.NetworkType: "ipv4", semconv.ConnectResult: int64(-115), semconv.Hook: "tracepoint/syscalls/sys_exit_connect"}
	for k, v := range wantConn {
		if conn[k] != v {
			t.Errorf("connect %s = %v, want %v", k, conn[k], v)
		}
	}
	if e := byEvent(semconv.EventProcessExit, 101).attrs; e[semconv.ProcessExitCode] != int64(1) || e[semconv.ErrorType] != "1" {
		t.Errorf("exit 101 %v", e)
	}

	// The agent is killed; its session waits out the grace period.
	tr.Handle(exitEv(100, s0, s0+500*ms, uint32(unix.SIGKILL)))
	ld, td = tr.Flush(wall(s0 + 500*ms + 2*sec - 1))
	if got := events(flatLogs(t, ld)); !slices.Equal(got, []string{"process.exit:100"}) {
		t.Fatalf("before grace: %v", got)
	}
	spans = flatSpans(t, td)
	agent := findSpan(t, spans, 100, "aw-agent")
	if agent.parent != root || agent.attrs[semconv.ProcessExitCode] != int64(137) || agent.attrs[semconv.ErrorType] != "SIGKILL" || agent.status != ptrace.StatusCodeError {
		t.Errorf("agent span %v", agent.attrs)
	}
	if st := tr.Stats(); st.ActiveSessions != 1 || st.TrackedProcesses != 0 {
		t.Errorf("stats before grace %+v", st)
	}
	ld, td = tr.Flush(wall(s0 + 500*ms + 2*sec))
	logs, spans = flatLogs(t, ld), flatSpans(t, td)
	if got := events(logs); !slices.Equal(got, []string{"session.end:100"}) || logs[0].attrs[semconv.GenAIAgentName] != "test-agent" || logs[0].span != root {
		t.Fatalf("after grace: %v %v", got, logs)
	}
	if len(spans) != 1 || spans[0].name != "invoke_agent test-agent" || spans[0].id != root || !spans[0].parent.IsEmpty() {
		t.Fatalf("root span %v", spanNames(spans))
	}
	rs := spans[0]
	if rs.start != tr.clock.Wall(s0+1*ms) || rs.end != tr.clock.Wall(s0+500*ms) ||
		rs.attrs[semconv.GenAIOperationName] != "invoke_agent" || rs.attrs[semconv.GenAIAgentName] != "test-agent" ||
		rs.attrs[semconv.SessionID] != id.String() || rs.attrs[semconv.ProcessPID] != int64(100) {
		t.Errorf("root span %+v", rs)
	}
	st := tr.Stats()
	if st.ActiveSessions != 0 || st.SessionsStarted != 1 || st.SessionsEnded != 1 || st.Events[kevent.KindExec] != 3 || st.Events[kevent.KindFork] != 2 || st.Events[kevent.KindExit] != 3 {
		t.Errorf("stats %+v", st)
	}
	// Forgotten: nothing more comes out.
	if ld, td := tr.Flush(wall(s0 + 10*sec)); ld.LogRecordCount() != 0 || td.SpanCount() != 0 {
		t.Error("an ended session emitted again")
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		status  uint32
		code    int64
		errType any
		signal  any
		spanErr bool
	}{
		{"clean", 0, 0, nil, nil, false},
		{"exit 1", 1 << 8, 1, "1", nil, true},
		{"exit 255", 255 << 8, 255, "255", nil, true},
		{"SIGTERM", uint32(unix.SIGTERM), 143, "SIGTERM", "SIGTERM", true},
		{"SIGSEGV with core", 0x80 | uint32(unix.SIGSEGV), 139, "SIGSEGV", "SIGSEGV", true},
		{"SIGKILL", uint32(unix.SIGKILL), 137, "SIGKILL", "SIGKILL", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, func(c *Config) { c.Grace = 0 })
			tr.Handle(execEv(7, 10*sec, 10*sec, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
			tr.Handle(exitEv(7, 10*sec, 11*sec, tc.status))
			ld, td := tr.Flush(wall(11 * sec))
			var exit logRec
			for _, l := range flatLogs(t, ld) {
				if l.event == semconv.EventProcessExit {
					exit = l
				}
			}
			sp := findSpan(t, flatSpans(t, td), 7, "aw-agent")
			for what, attrs := range map[string]map[string]any{"log": exit.attrs, "span": sp.attrs} {
				if attrs[semconv.ProcessExitCode] != tc.code || attrs[semconv.ErrorType] != tc.errType || attrs[semconv.ExitSignal] != tc.signal {
					t.Errorf("%s: code %v error.type %v signal %v", what, attrs[semconv.ProcessExitCode], attrs[semconv.ErrorType], attrs[semconv.ExitSignal])
				}
			}
			if (sp.status == ptrace.StatusCodeError) != tc.spanErr {
				t.Errorf("span status %v", sp.status)
			}
		})
	}
}

// A candidate the matcher turns down leaves the kernel map with every child
// forked meanwhile; their events are dropped; a child that execs an agent
// is judged again.
func TestCandidateRejected(t *testing.T) {
	tr, rec := newTestTracker(t, nil)
	const s0, s1, s2 = 50 * sec, 51 * sec, 52 * sec
	tr.Handle(execEv(200, s0, s0, kevent.FlagExecCandidate, 1, "/usr/bin/python3", "/srv", "python3", "server.py"))
	tr.Handle(forkEv(201, s1, s1, 200, s0))
	tr.Handle(openEv(200, s0, s1, 0, "/etc/passwd", 0, 3))
	tr.Handle(openEv(201, s1, s1, 0, "/etc/passwd", 0, 3))
	tr.Handle(connectEv(201, s1, s1, "10.0.0.1", 443, 1, 0))
	if got := rec.take(); !slices.Equal(got, []string{"untrack 200", "untrack 201"}) {
		t.Fatalf("kernel calls %v", got)
	}
	// 202 was forked before userspace untracked 201: still pending in the
	// kernel, so its exec comes as a candidate, and it is an agent.
	tr.Handle(forkEv(202, s2, s2, 201, s1))
	tr.Handle(execEv(202, s2, s2+1, kevent.FlagExecCandidate, 201, "/opt/aw-agent", "/srv", "aw-agent"))
	if got := rec.take(); !slices.Equal(got, []string{"untrack 202", "track 202 pending=false"}) {
		t.Fatalf("kernel calls %v", got)
	}
	tr.Handle(exitEv(200, s0, s2+2, 0))
	if _, still := tr.rejected[key(200, s0)]; still {
		t.Error("a rejected process is remembered after its exit")
	}
	ld, _ := tr.Flush(wall(s2 + 3))
	if got := events(flatLogs(t, ld)); !slices.Equal(got, []string{"session.start:202", "process.exec:202"}) {
		t.Fatalf("events %v", got)
	}
	st := tr.Stats()
	// dropped: fork 201, three I/O events, fork 202, exit 200
	if st.CandidatesRejected != 1 || st.EventsDropped != 6 || st.ActiveSessions != 1 {
		t.Errorf("stats %+v", st)
	}
}

// An accepted candidate is switched to a plain member in the kernel; so are
// children forked while the kernel still had it pending.
func TestCandidateAccepted(t *testing.T) {
	tr, rec := newTestTracker(t, nil)
	const s0 = 70 * sec
	tr.Handle(execEv(300, s0, s0, kevent.FlagExecCandidate, 1, "/usr/bin/python3", "/w", "python3", "/w/agent.py", "--serve"))
	tr.Handle(forkEv(301, s0+ms*20, s0+ms*20, 300, s0))
	late := BootNow() + uint64(time.Hour)
	tr.Handle(forkEv(302, late, late, 300, s0))
	want := []string{"track 300 pending=false", "track 301 pending=false"}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("kernel calls %v, want %v", got, want)
	}
	ld, _ := tr.Flush(wall(late))
	logs := flatLogs(t, ld)
	if len(logs) < 1 || logs[0].resource[semconv.ServiceName] != "py-agent" {
		t.Fatalf("logs %v", logs)
	}
	if tr.Stats().TrackedProcesses != 3 {
		t.Errorf("tracked %d", tr.Stats().TrackedProcesses)
	}
}

// pid reuse: a new process with an old pid is a different process.
func TestPIDReuse(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) { c.Grace = 0 })
	const a, b, c = 100 * sec, 200 * sec, 300 * sec
	tr.Handle(execEv(400, a, a, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
	// The exit of 400@a is lost; 400@b is an unrelated candidate.
	tr.Handle(execEv(400, b, b, kevent.FlagExecCandidate, 1, "/usr/bin/node", "/", "node", "app.js"))
	tr.Handle(openEv(400, b, b+1, 0, "/etc/shadow", 0, 3))
	tr.Handle(openEv(400, a, b+2, 0, "/tmp/a", 0, 4))
	// 400@c is an agent again: its own session.
	tr.Handle(execEv(400, c, c, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
	ld, _ := tr.Flush(wall(c))
	logs := flatLogs(t, ld)
	idA, idC := SessionID(testBootID, key(400, a)), SessionID(testBootID, key(400, c))
	if idA == idC {
		t.Fatal("same session id for two processes sharing a pid")
	}
	var got []string
	for _, l := range logs {
		who := "a"
		if l.trace == idC {
			who = "c"
		}
		got = append(got, who+":"+strings.TrimPrefix(l.event, "agent."))
		if l.event == semconv.EventFileOpen && l.attrs[semconv.FilePath] == "/etc/shadow" {
			t.Error("the unrelated process's open landed in a session")
		}
	}
	want := []string{"a:session.start", "a:process.exec", "a:file.open", "c:session.start", "c:process.exec"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if ld.ResourceLogs().Len() != 2 {
		t.Errorf("%d ResourceLogs, want one per session", ld.ResourceLogs().Len())
	}
}

// A collector restart finds the root in /proc and carries on with the same
// session id; another boot gives another id.
func TestRestartSameSessionID(t *testing.T) {
	const start = 4242*sec + 7*ms // start_boottime of the root, ns
	live, _ := newTestTracker(t, nil)
	live.Handle(execEv(555, start, start+5*ms, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent"))
	liveID, _, ok := live.Lookup(555, start)
	if !ok {
		t.Fatal("Lookup of the live root failed")
	}

	proc := t.TempDir()
	proctreetest.Write(t, proc, proctreetest.Proc{PID: 555, PPID: 1, Comm: "aw-agent", Start: start / proctree.NSPerTick,
		Exe: "/opt/aw-agent", Cwd: "/w", Cmdline: "aw-agent\x00"})
	proctreetest.Write(t, proc, proctreetest.Proc{PID: 556, PPID: 555, Comm: "sleep", Start: start/proctree.NSPerTick + 1,
		Exe: "/usr/bin/sleep", Cwd: "/w", Cmdline: "sleep\x0030\x00"})
	proctreetest.WriteBootID(t, proc, testBootID)
	restarted, rec := newTestTracker(t, func(c *Config) { c.ProcRoot = proc; c.BootID = "" })
	if err := restarted.ScanProc(proc); err != nil {
		t.Fatal(err)
	}
	gotID, _, ok := restarted.Lookup(555, start)
	if !ok || gotID != liveID {
		t.Fatalf("after restart: %v, %v; want %v", gotID, ok, liveID)
	}
	if _, _, ok := restarted.Lookup(556, (start/proctree.NSPerTick+1)*proctree.NSPerTick); !ok {
		t.Error("the root's child was not adopted")
	}
	if got := rec.take(); !slices.Equal(got, []string{"track 555 pending=false", "track 556 pending=false"}) {
		t.Errorf("kernel calls %v", got)
	}
	// The restarted run must not reuse the previous run's image span ids.
	_, liveSpan, _ := live.Lookup(555, start)
	if _, sp, _ := restarted.Lookup(555, start); sp == liveSpan {
		t.Error("a scanned image reuses the span id of the exec'd image")
	}
	if SessionID("another-boot", key(555, start)) == liveID {
		t.Error("the boot id does not change the session id")
	}
}

func TestGrace(t *testing.T) {
	tests := []struct {
		name  string
		grace time.Duration
		after uint64 // flush this long after the last exit
		ended bool
	}{
		{"zero grace ends at once", 0, 0, true},
		{"just before", 2 * time.Second, 2*sec - 1, false},
		{"exactly at", 2 * time.Second, 2 * sec, true},
		{"long after", 2 * time.Second, 60 * sec, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, func(c *Config) { c.Grace = tc.grace })
			const s0 = 9 * sec
			tr.Handle(execEv(9, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
			tr.Handle(forkEv(10, s0+sec, s0+sec, 9, s0))
			tr.Handle(exitEv(9, s0, s0+2*sec, 0))
			// The child outlives the root: the session goes on.
			if ld, _ := tr.Flush(wall(s0 + 30*sec)); hasEvent(t, ld, semconv.EventSessionEnd) {
				t.Fatal("session ended while a process lives")
			}
			tr.Handle(exitEv(10, s0+sec, s0+40*sec, 0))
			ld, _ := tr.Flush(wall(s0 + 40*sec + tc.after))
			if got := hasEvent(t, ld, semconv.EventSessionEnd); got != tc.ended {
				t.Fatalf("ended = %v, want %v", got, tc.ended)
			}
			if got := tr.Stats().ActiveSessions; got != map[bool]int{true: 0, false: 1}[tc.ended] {
				t.Errorf("active = %d", got)
			}
		})
	}
}

func hasEvent(t testing.TB, ld plog.Logs, ev string) bool {
	t.Helper()
	for _, l := range flatLogs(t, ld) {
		if l.event == ev {
			return true
		}
	}
	return false
}

// `#!/usr/bin/env node` launchers: the kernel reports the script's exec with
// env's image, then env's exec of node (same pid). The session's root and
// the process span are node running the script; no env span is left.
func TestEnvLauncherRootIsTheAgent(t *testing.T) {
	tr, _ := newTestTracker(t, nil)
	const s0 = 1000 * sec
	tr.Handle(invoked(execEv(100, s0, s0+1*ms, kevent.FlagExecMatched, 1, "/usr/bin/env", "/p", "/n/.bin/aw-agent", "--x"), "/n/.bin/aw-agent"))
	tr.Handle(invoked(execEv(100, s0, s0+2*ms, 0, 1, "/usr/bin/node", "/p", "node", "/n/.bin/aw-agent", "--x"), "/usr/bin/node"))
	tr.Handle(exitEv(100, s0, s0+100*ms, 0))
	_, td := tr.Flush(wall(s0 + 10*sec))
	spans := flatSpans(t, td)
	for _, s := range spans {
		if s.attrs[semconv.ProcessExecutablePath] == "/usr/bin/env" {
			t.Errorf("span %q still has env's image: %v", s.name, s.attrs)
		}
	}
	if got := spanNames(spans); !slices.Equal(got, []string{"invoke_agent test-agent:100", "node:100"}) {
		t.Fatalf("spans = %v, want the root and one node span", got)
	}
	root := spans[slices.IndexFunc(spans, func(s spanRec) bool { return strings.HasPrefix(s.name, "invoke_agent") })]
	if root.attrs[semconv.ProcessExecutablePath] != "/usr/bin/node" {
		t.Errorf("root span process = %v", root.attrs)
	}
}
