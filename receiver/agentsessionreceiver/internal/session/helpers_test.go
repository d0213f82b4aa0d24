package session

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// recorder is the in-kernel session map as the tests see it: the real one
// needs root and BPF, and is exercised by the receiver's kernel tests.
type recorder struct {
	mu      sync.Mutex
	tracked map[uint32]bool // pid -> pending
	calls   []string
}

func newRecorder() *recorder { return &recorder{tracked: map[uint32]bool{}} }

func (r *recorder) Track(pid uint32, _ uint64, pending bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tracked[pid] = pending
	r.calls = append(r.calls, fmt.Sprintf("track %d pending=%v", pid, pending))
	return nil
}

func (r *recorder) Untrack(pid uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tracked, pid)
	r.calls = append(r.calls, fmt.Sprintf("untrack %d", pid))
	return nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

const (
	testBootID = "6f1c1e5a-3b0e-4c1a-9d52-2a1f0e7c9b11"
	testOffset = int64(1_700_000_000_000_000_000) // wall = boot + offset
	ms         = uint64(time.Millisecond)
	sec        = uint64(time.Second)
)

func testMatchers(t testing.TB) *matcher.Set {
	t.Helper()
	set, err := matcher.New([]matcher.Spec{
		{Name: "test-agent", Executables: []string{"aw-agent"}},
		{Name: "py-agent", Executables: []string{"python3"}, CommandLine: `agent\.py`},
	}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func newTestTracker(t testing.TB, mod func(*Config)) (*Tracker, *recorder) {
	t.Helper()
	cfg := Config{
		Matcher:      testMatchers(t),
		BootID:       testBootID,
		HostName:     "host-1",
		Backend:      BackendTracepoint,
		Grace:        2 * time.Second,
		ProcRoot:     t.TempDir(), // an empty procfs: nothing can be adopted
		ReapInterval: -1,
		Clock:        FixedClock(testOffset),
	}
	if mod != nil {
		mod(&cfg)
	}
	rec := newRecorder()
	tr, err := New(cfg, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr, rec
}

// wall is the Flush time for a boot timestamp under the test clock.
func wall(boot uint64) time.Time { return time.Unix(0, int64(boot)+testOffset) }

func hdr(kind kevent.Kind, flags uint16, pid uint32, start, at uint64) kevent.Header {
	return kevent.Header{Kind: kind, Version: kevent.Version, Flags: flags, PID: pid, TID: pid, Time: at, Start: start}
}

func execEv(pid uint32, start, at uint64, flags uint16, ppid uint32, exe, cwd string, args ...string) *kevent.Exec {
	return &kevent.Exec{Header: hdr(kevent.KindExec, flags, pid, start, at), PPID: ppid, UID: 1000, EUID: 1000,
		Exe: exe, Filename: exe, Args: args, Cwd: cwd}
}

func forkEv(pid uint32, start, at uint64, ppid uint32, pstart uint64) *kevent.Fork {
	return &kevent.Fork{Header: hdr(kevent.KindFork, 0, pid, start, at), PPID: ppid, PStart: pstart}
}

func exitEv(pid uint32, start, at uint64, status uint32) *kevent.Exit {
	return &kevent.Exit{Header: hdr(kevent.KindExit, 0, pid, start, at), Status: status}
}

func openEv(pid uint32, start, at uint64, flags uint16, p string, oflags uint32, ret int32) *kevent.Open {
	return &kevent.Open{Header: hdr(kevent.KindOpen, flags, pid, start, at), Ret: ret, OpenFlags: oflags, Syscall: kevent.SyscallOpenat, Path: p}
}

func connectEv(pid uint32, start, at uint64, addr string, port uint16, sockType uint16, ret int32) *kevent.Connect {
	a := netip.MustParseAddr(addr)
	fam := uint16(2)
	if a.Is6() {
		fam = 10
	}
	return &kevent.Connect{Header: hdr(kevent.KindConnect, 0, pid, start, at), Ret: ret, Family: fam, Port: port, Addr: a.Unmap(), SockType: sockType}
}

// rec is a flattened LogRecord.
type logRec struct {
	event    string
	trace    pcommon.TraceID
	span     pcommon.SpanID
	ts       pcommon.Timestamp
	attrs    map[string]any
	resource map[string]any
}

func (l logRec) pid() int64 { return l.attrs[semconv.ProcessPID].(int64) }

type spanRec struct {
	name     string
	trace    pcommon.TraceID
	id       pcommon.SpanID
	parent   pcommon.SpanID
	start    pcommon.Timestamp
	end      pcommon.Timestamp
	kind     ptrace.SpanKind
	status   ptrace.StatusCode
	attrs    map[string]any
	resource map[string]any
}

func (s spanRec) pid() int64 { return s.attrs[semconv.ProcessPID].(int64) }

func flatLogs(t testing.TB, ld plog.Logs) []logRec {
	t.Helper()
	var out []logRec
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource().Attributes().AsRaw()
		for _, sl := range rl.ScopeLogs().All() {
			if sl.Scope().Name() != scopeName {
				t.Errorf("scope %q", sl.Scope().Name())
			}
			for _, lr := range sl.LogRecords().All() {
				attrs := lr.Attributes().AsRaw()
				if lr.EventName() != attrs[semconv.EventName] {
					t.Errorf("EventName %q vs attribute %v", lr.EventName(), attrs[semconv.EventName])
				}
				if lr.SeverityNumber() != plog.SeverityNumberInfo || lr.ObservedTimestamp() == 0 {
					t.Errorf("severity %v observed %v", lr.SeverityNumber(), lr.ObservedTimestamp())
				}
				out = append(out, logRec{event: lr.EventName(), trace: lr.TraceID(), span: lr.SpanID(), ts: lr.Timestamp(), attrs: attrs, resource: res})
			}
		}
	}
	return out
}

func flatSpans(t testing.TB, td ptrace.Traces) []spanRec {
	t.Helper()
	var out []spanRec
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes().AsRaw()
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, spanRec{name: sp.Name(), trace: sp.TraceID(), id: sp.SpanID(), parent: sp.ParentSpanID(),
					start: sp.StartTimestamp(), end: sp.EndTimestamp(), kind: sp.Kind(), status: sp.Status().Code(),
					attrs: sp.Attributes().AsRaw(), resource: res})
			}
		}
	}
	return out
}

func events(ls []logRec) []string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%s:%d", strings.TrimPrefix(l.event, "agent."), l.pid()))
	}
	return out
}

func findSpan(t testing.TB, spans []spanRec, pid int64, name string) spanRec {
	t.Helper()
	for _, s := range spans {
		if s.attrs[semconv.ProcessPID] == pid && s.name == name {
			return s
		}
	}
	t.Fatalf("no span %q of pid %d in %v", name, pid, spanNames(spans))
	return spanRec{}
}

func spanNames(spans []spanRec) []string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%s:%v", s.name, s.attrs[semconv.ProcessPID]))
	}
	slices.Sort(out)
	return out
}

func key(pid uint32, start uint64) proctree.Key { return proctree.KeyOf(pid, start) }
