package session

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree/proctreetest"
)

func ticks(ns uint64) uint64 { return ns / proctree.NSPerTick }

// Events of processes the tracker never heard of (lost fork events, members
// from before a restart) are resolved through /proc.
func TestAdoption(t *testing.T) {
	proc := t.TempDir()
	tr, rec := newTestTracker(t, func(c *Config) { c.ProcRoot = proc })
	const s0 = 30 * sec
	for _, p := range []proctreetest.Proc{
		{PID: 100, PPID: 1, Comm: "aw-agent", Start: ticks(s0), Exe: "/opt/aw-agent", Cwd: "/w", Cmdline: "aw-agent\x00"},
		{PID: 150, PPID: 100, Comm: "sh", Start: ticks(s0) + 1, Exe: "/usr/bin/dash", Cwd: "/w", Cmdline: "sh\x00"},
		{PID: 160, PPID: 150, Comm: "cat", Start: ticks(s0) + 2, Exe: "/usr/bin/cat", Cwd: "/w/sub", Cmdline: "cat\x00f\x00", EUID: 1000, UID: 1000},
		{PID: 170, PPID: 1, Comm: "vim", Start: ticks(s0) + 3, Exe: "/usr/bin/vim", Cwd: "/", Cmdline: "vim\x00"},
		{PID: 180, PPID: 1, Comm: "aw-agent", Start: ticks(s0) + 4, Exe: "/opt/aw-agent", Cwd: "/", Cmdline: "aw-agent\x00"},
	} {
		proctreetest.Write(t, proc, p)
	}
	ns := func(tk uint64) uint64 { return tk * proctree.NSPerTick }
	tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent"))
	tr.Flush(wall(s0))
	rec.take()

	tests := []struct {
		name    string
		ev      kevent.Event
		events  []string // what comes out for this event
		calls   []string
		session string // service.name of the records, "" none
	}{
		{"grandchild through an unknown parent", openEv(160, ns(ticks(s0)+2), s0+sec, 0, "/w/sub/f", 0, 3),
			[]string{"process.exec:160", "file.open:160"}, []string{"track 160 pending=false"}, "test-agent"},
		{"known now: no second lookup", openEv(160, ns(ticks(s0)+2), s0+sec, 0, "/w/sub/g", 0, 4),
			[]string{"file.open:160"}, nil, "test-agent"},
		{"unrelated process leaves the kernel map", openEv(170, ns(ticks(s0)+3), s0+sec, 0, "/etc/hosts", 0, 3),
			nil, []string{"untrack 170"}, ""},
		{"and is not looked up again", connectEv(170, ns(ticks(s0)+3), s0+sec, "10.0.0.1", 80, 1, 0),
			nil, nil, ""},
		{"an agent on its own starts a session", openEv(180, ns(ticks(s0)+4), s0+sec, 0, "/x", 0, 3),
			[]string{"session.start:180", "process.exec:180", "file.open:180"}, []string{"track 180 pending=false"}, "test-agent"},
		{"vanished process", openEv(190, s0, s0+sec, 0, "/x", 0, 3), nil, nil, ""},
		{"fork from a vanished parent, child vanished too", forkEv(191, s0+sec, s0+sec, 190, s0), nil, nil, ""},
		{"exec of an unknown member", execEv(150, ns(ticks(s0)+1), s0+2*sec, 0, 100, "/usr/bin/dash", "/w", "sh", "-c", "ls"),
			[]string{"process.exec:150"}, []string{"track 150 pending=false"}, "test-agent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr.Handle(tc.ev)
			ld, _ := tr.Flush(wall(s0 + sec))
			logs := flatLogs(t, ld)
			if got := events(logs); !slices.Equal(got, tc.events) {
				t.Errorf("events %v, want %v", got, tc.events)
			}
			if got := rec.take(); !slices.Equal(got, tc.calls) {
				t.Errorf("kernel calls %v, want %v", got, tc.calls)
			}
			for _, l := range logs {
				if l.resource[semconv.ServiceName] != tc.session {
					t.Errorf("%s in %v", l.event, l.resource[semconv.ServiceName])
				}
			}
		})
	}
	// 160 joined 100's session under 100's image: its span's parent.
	id100, span100, _ := tr.Lookup(100, s0)
	id160, _, ok := tr.Lookup(160, ns(ticks(s0)+2))
	if !ok || id160 != id100 {
		t.Fatalf("160 in %v, want %v", id160, id100)
	}
	if p := tr.procs[proctree.Key{PID: 160, Start: ticks(s0) + 2}]; p.parentSpan != span100 || p.img.cwd != "/w/sub" || p.img.uid != 1000 {
		t.Errorf("adopted 160: parent %v (want %v), image %+v", p.parentSpan, span100, p.img)
	}
	if st := tr.Stats(); st.Adopted != 3 {
		t.Errorf("adopted %d, want 3", st.Adopted)
	}
}

// Exits lost in a full ring buffer are found by the reaper: gone from /proc,
// or a zombie, on two passes in a row.
func TestReap(t *testing.T) {
	proc := t.TempDir()
	tr, _ := newTestTracker(t, func(c *Config) {
		c.ProcRoot = proc
		c.ReapInterval = 10 * time.Second
		c.Grace = time.Second
	})
	const s0 = 500 * sec
	proctreetest.Write(t, proc, proctreetest.Proc{PID: 100, PPID: 1, Comm: "aw-agent", Start: ticks(s0), Exe: "/opt/aw-agent"})
	proctreetest.Write(t, proc, proctreetest.Proc{PID: 102, PPID: 100, Comm: "zombie", State: 'Z', Start: ticks(s0 + 2*sec)})
	tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/"))
	tr.Handle(forkEv(101, s0+sec, s0+sec, 100, s0)) // not in /proc
	tr.Handle(forkEv(102, s0+2*sec, s0+2*sec, 100, s0))
	tr.Handle(forkEv(103, s0+3*sec, s0+3*sec, 100, s0)) // pid reused by another process
	proctreetest.Write(t, proc, proctreetest.Proc{PID: 103, PPID: 1, Comm: "other", Start: ticks(s0 + 9*sec)})

	steps := []struct {
		at      uint64
		exits   []string
		tracked int
	}{
		{s0 + 10*sec, nil, 4}, // first pass: suspects only
		{s0 + 15*sec, nil, 4}, // not yet the next pass
		{s0 + 20*sec, []string{"process.exit:101", "process.exit:102", "process.exit:103"}, 1},
		{s0 + 30*sec, nil, 1},
	}
	for i, st := range steps {
		ld, td := tr.Flush(wall(st.at))
		var got []string
		for _, l := range flatLogs(t, ld) {
			if l.event != semconv.EventProcessExit {
				continue
			}
			got = append(got, events([]logRec{l})...)
			if _, ok := l.attrs[semconv.ProcessExitCode]; ok {
				t.Errorf("step %d: a reaped exit has an exit code", i)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, st.exits) {
			t.Errorf("step %d: %v, want %v", i, got, st.exits)
		}
		if td.SpanCount() != len(st.exits) {
			t.Errorf("step %d: %d spans", i, td.SpanCount())
		}
		if n := tr.Stats().TrackedProcesses; n != st.tracked {
			t.Errorf("step %d: tracked %d, want %d", i, n, st.tracked)
		}
	}
	proctreetest.Remove(t, proc, 100)
	tr.Flush(wall(s0 + 40*sec))
	ld, _ := tr.Flush(wall(s0 + 50*sec))
	if got := events(flatLogs(t, ld)); !slices.Equal(got, []string{"process.exit:100"}) {
		t.Fatalf("root reap: %v", got)
	}
	ld, _ = tr.Flush(wall(s0 + 51*sec))
	if !hasEvent(t, ld, semconv.EventSessionEnd) {
		t.Fatal("the session did not end after its reaped root")
	}
	if st := tr.Stats(); st.Reaped != 4 || st.ActiveSessions != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestBounds(t *testing.T) {
	const s0 = 80 * sec
	t.Run("max sessions", func(t *testing.T) {
		tr, rec := newTestTracker(t, func(c *Config) { c.MaxSessions = 1 })
		tr.Handle(execEv(1000, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
		tr.Handle(execEv(1001, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
		tr.Handle(openEv(1001, s0, s0+1, 0, "/x", 0, 3))
		ld, _ := tr.Flush(wall(s0))
		if ld.ResourceLogs().Len() != 1 {
			t.Errorf("%d sessions out", ld.ResourceLogs().Len())
		}
		if got := rec.take(); !slices.Equal(got, []string{"untrack 1001"}) {
			t.Errorf("calls %v", got)
		}
		if st := tr.Stats(); st.SessionsDropped != 1 || st.ActiveSessions != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("max processes per session", func(t *testing.T) {
		tr, rec := newTestTracker(t, func(c *Config) { c.MaxSessionProcesses = 2 })
		tr.Handle(execEv(1000, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
		tr.Handle(forkEv(1001, s0+sec, s0+sec, 1000, s0))
		tr.Handle(forkEv(1002, s0+2*sec, s0+2*sec, 1000, s0))
		tr.Handle(forkEv(1003, s0+3*sec, s0+3*sec, 1002, s0+2*sec))
		// Another session is not starved.
		tr.Handle(execEv(2000, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
		tr.Handle(forkEv(2001, s0+sec, s0+sec, 2000, s0))
		if got := rec.take(); !slices.Equal(got, []string{"untrack 1002", "untrack 1003"}) {
			t.Errorf("calls %v", got)
		}
		if st := tr.Stats(); st.ProcessesDropped != 1 || st.TrackedProcesses != 4 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("max processes", func(t *testing.T) {
		tr, rec := newTestTracker(t, func(c *Config) { c.MaxProcesses = 1 })
		tr.Handle(execEv(1000, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
		tr.Handle(execEv(2000, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
		if got := rec.take(); !slices.Equal(got, []string{"untrack 2000"}) {
			t.Errorf("calls %v", got)
		}
		if st := tr.Stats(); st.ProcessesDropped != 1 || st.ActiveSessions != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("pending records", func(t *testing.T) {
		tr, _ := newTestTracker(t, func(c *Config) { c.MaxPendingRecords = 3 })
		tr.Handle(execEv(1000, s0, s0, kevent.FlagExecMatched, 1, "/x/aw-agent", "/"))
		for i := range 5 {
			tr.Handle(openEv(1000, s0, s0+uint64(i), 0, "/x", 0, 3))
		}
		ld, _ := tr.Flush(wall(s0 + sec))
		// session.start is structure and not counted: exec + 2 opens fit.
		if got := events(flatLogs(t, ld)); !slices.Equal(got, []string{"session.start:1000", "process.exec:1000", "file.open:1000", "file.open:1000"}) {
			t.Errorf("events %v", got)
		}
		tr.Handle(openEv(1000, s0, s0+2*sec, 0, "/y", 0, 3))
		if ld, _ := tr.Flush(wall(s0 + 2*sec)); ld.LogRecordCount() != 1 {
			t.Error("the budget did not reset at Flush")
		}
		if st := tr.Stats(); st.RecordsDropped != 3 {
			t.Errorf("dropped %d", st.RecordsDropped)
		}
	})
}

// The scan and the kernel hooks overlap: an exec the scan already saw does
// not make a second image.
func TestScanThenExecEvent(t *testing.T) {
	proc := t.TempDir()
	const s0 = 60 * sec
	proctreetest.Write(t, proc, proctreetest.Proc{PID: 100, PPID: 1, Comm: "aw-agent", Start: ticks(s0), Exe: "/opt/aw-agent", Cwd: "/w", Cmdline: "aw-agent\x00-v\x00"})
	tr, _ := newTestTracker(t, func(c *Config) { c.ProcRoot = proc })
	if err := tr.ScanProc(proc); err != nil {
		t.Fatal(err)
	}
	tr.Flush(wall(s0))
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent", "-v"))
	ld, td := tr.Flush(wall(s0 + sec))
	if ld.LogRecordCount() != 0 || td.SpanCount() != 0 {
		t.Fatalf("the scanned exec came out again: %v", events(flatLogs(t, ld)))
	}
	after := BootNow() + sec
	tr.Handle(execEv(100, s0, after, 0, 1, "/usr/bin/node", "/w", "node", "x.js"))
	ld, td = tr.Flush(wall(after))
	if got := events(flatLogs(t, ld)); !slices.Equal(got, []string{"process.exec:100"}) || td.SpanCount() != 1 {
		t.Fatalf("a later exec: %v, %d spans", got, td.SpanCount())
	}
	if sp := flatSpans(t, td)[0]; sp.name != "aw-agent" || !slices.Equal(sp.attrs[semconv.ProcessCommandArgs].([]any), []any{"aw-agent", "-v"}) {
		t.Errorf("ended image %s %v", sp.name, sp.attrs)
	}
}

func TestExecAttributes(t *testing.T) {
	const s0 = 90 * sec
	tests := []struct {
		name  string
		ev    *kevent.Exec
		check func(t *testing.T, attrs map[string]any)
	}{
		{"argv is redacted", execEv(1, s0, s0, kevent.FlagExecMatched, 0, "/x/aw-agent", "/",
			"aw-agent", "--api-key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789", "-H", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345"),
			func(t *testing.T, a map[string]any) {
				args := a[semconv.ProcessCommandArgs].([]any)
				joined := strings.Join(strs(args), " ")
				if len(args) != 5 || strings.Contains(joined, "abcdefghijklmnop") {
					t.Errorf("not redacted: %q", joined)
				}
			}},
		{"non-UTF-8 bytes stay distinct", invoked(execEv(1, s0, s0, kevent.FlagExecMatched|kevent.FlagPathTruncated, 0, "/tmp/\xff\xfe/aw-agent", "/home/caf\xe9", "aw-agent", "\xc3"), "/tmp/\xff\xfe/aw-agent"),
			func(t *testing.T, a map[string]any) {
				if a[semconv.ProcessExecutablePath] != `/tmp/\xff\xfe/aw-agent` || a[semconv.ProcessWorkingDirectory] != `/home/caf\xe9` {
					t.Errorf("paths %q %q", a[semconv.ProcessExecutablePath], a[semconv.ProcessWorkingDirectory])
				}
				if args := strs(a[semconv.ProcessCommandArgs].([]any)); args[1] != `\xc3` {
					t.Errorf("args %q", args)
				}
				if a[semconv.PathTruncated] != true {
					t.Error("path_truncated missing")
				}
			}},
		{"relative filename against cwd; no exe", &kevent.Exec{Header: hdr(kevent.KindExec, kevent.FlagExecCandidate, 1, s0, s0), Filename: "./bin/aw-agent", Cwd: "/w", Args: []string{"./bin/aw-agent"}, EUID: 0},
			func(t *testing.T, a map[string]any) {
				if a[semconv.ProcessExecutablePath] != "/w/bin/aw-agent" || a[semconv.ProcessExecutableName] != "aw-agent" {
					t.Errorf("exe %v", a[semconv.ProcessExecutablePath])
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, nil)
			tr.Handle(tc.ev)
			ld, _ := tr.Flush(wall(s0))
			logs := flatLogs(t, ld)
			if len(logs) != 2 || logs[1].event != semconv.EventProcessExec {
				t.Fatalf("events %v", events(logs))
			}
			tc.check(t, logs[1].attrs)
			assertUTF8(t, ld)
		})
	}
}

func strs(v []any) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = s.(string)
	}
	return out
}

func assertUTF8(t *testing.T, ld plog.Logs) {
	t.Helper()
	for _, l := range flatLogs(t, ld) {
		for k, v := range l.attrs {
			switch v := v.(type) {
			case string:
				if !utf8.ValidString(v) {
					t.Errorf("%s = %q is not UTF-8", k, v)
				}
			case []any:
				for _, s := range v {
					if !utf8.ValidString(s.(string)) {
						t.Errorf("%s has %q", k, s)
					}
				}
			}
		}
	}
}

func TestIOAttributes(t *testing.T) {
	const s0 = 95 * sec
	tests := []struct {
		name    string
		backend string
		ev      kevent.Event
		want    map[string]any
		absent  []string
	}{
		{"kernel-resolved path kept", BackendTracepoint, openEv(1, s0, s0, 0, "/etc/ssl/../passwd", unix.O_RDONLY, 3),
			map[string]any{semconv.FilePath: "/etc/passwd", semconv.FileFlags: "O_RDONLY", semconv.FileResult: int64(3)}, []string{semconv.PathTruncated}},
		{"raw relative path joined to cwd", BackendTracepoint, openEv(1, s0, s0, kevent.FlagPathRaw|kevent.FlagPathDotDot, "../.aws/credentials", unix.O_RDONLY, -2),
			map[string]any{semconv.FilePath: "/home/.aws/credentials", semconv.FileResult: int64(-2)}, nil},
		{"truncated path flagged", BackendTracepoint, openEv(1, s0, s0, kevent.FlagPathTruncated, "/a/b", unix.O_RDONLY, 3),
			map[string]any{semconv.PathTruncated: true}, nil},
		{"openat2 hook", BackendTracepoint, &kevent.Open{Header: hdr(kevent.KindOpen, 0, 1, s0, s0), Syscall: kevent.SyscallOpenat2, Path: "/x"},
			map[string]any{semconv.Hook: "tracepoint/syscalls/sys_exit_openat2"}, nil},
		{"creat hook", BackendTracepoint, &kevent.Open{Header: hdr(kevent.KindOpen, 0, 1, s0, s0), Syscall: kevent.SyscallCreat, Path: "/x"},
			map[string]any{semconv.Hook: "tracepoint/syscalls/sys_exit_creat"}, nil},
		{"unknown syscall number", BackendTracepoint, &kevent.Open{Header: hdr(kevent.KindOpen, 0, 1, s0, s0), Syscall: 99, Path: "/x"},
			map[string]any{semconv.Hook: "tracepoint/syscalls/sys_exit_openat"}, nil},
		{"lsm open hook", BackendLSM, openEv(1, s0, s0, 0, "/x", unix.O_RDONLY, 0),
			map[string]any{semconv.Hook: "lsm/file_open"}, nil},
		{"non-UTF-8 file path", BackendTracepoint, openEv(1, s0, s0, 0, "/tmp/\xff", unix.O_RDONLY, 3),
			map[string]any{semconv.FilePath: `/tmp/\xff`}, nil},
		{"udp over ipv6", BackendTracepoint, connectEv(1, s0, s0, "2001:db8::1", 53, 2, 0),
			map[string]any{semconv.NetworkPeerAddress: "2001:db8::1", semconv.NetworkPeerPort: int64(53), semconv.NetworkTransport: "udp", semconv.NetworkType: "ipv6"}, nil},
		{"v4-mapped is ipv4", BackendTracepoint, connectEv(1, s0, s0, "::ffff:10.1.2.3", 443, 1, 0),
			map[string]any{semconv.NetworkPeerAddress: "10.1.2.3", semconv.NetworkType: "ipv4"}, nil},
		{"raw socket type: no transport", BackendTracepoint, connectEv(1, s0, s0, "10.1.2.3", 0, 3, -1),
			map[string]any{semconv.ConnectResult: int64(-1)}, []string{semconv.NetworkTransport}},
		{"lsm connect hook", BackendLSM, connectEv(1, s0, s0, "10.1.2.3", 80, 1, 0),
			map[string]any{semconv.Hook: "lsm/socket_connect"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTestTracker(t, func(c *Config) { c.Backend = tc.backend })
			tr.Handle(execEv(1, s0, s0, kevent.FlagExecMatched, 0, "/x/aw-agent", "/home/u"))
			tr.Handle(tc.ev)
			ld, _ := tr.Flush(wall(s0))
			logs := flatLogs(t, ld)
			got := logs[len(logs)-1].attrs
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s present", k)
				}
			}
			assertUTF8(t, ld)
		})
	}
}

func TestFlushEmpty(t *testing.T) {
	tr, _ := newTestTracker(t, nil)
	ld, td := tr.Flush(time.Now())
	if ld.LogRecordCount() != 0 || td.SpanCount() != 0 || ld.ResourceLogs().Len() != 0 {
		t.Fatal("empty tracker flushed something")
	}
	if _, _, ok := tr.Lookup(1, 1); ok {
		t.Fatal("Lookup found a process in an empty tracker")
	}
}

func TestNewErrors(t *testing.T) {
	set := testMatchers(t)
	tests := []struct {
		name string
		cfg  Config
		m    Membership
	}{
		{"no matcher", Config{BootID: "x"}, newRecorder()},
		{"no membership", Config{Matcher: set, BootID: "x"}, nil},
		{"no boot id", Config{Matcher: set, ProcRoot: t.TempDir()}, newRecorder()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.m, nil); err == nil {
				t.Fatal("no error")
			}
		})
	}
	tr, err := New(Config{Matcher: set}, newRecorder(), nil)
	if err != nil {
		t.Fatalf("defaults from the real /proc: %v", err)
	}
	if len(tr.cfg.BootID) != 36 || tr.cfg.HostName == "" || tr.cfg.MaxSessions != DefaultMaxSessions || tr.cfg.MaxSessionProcesses != DefaultMaxProcesses {
		t.Errorf("defaults %+v", tr.cfg)
	}
}

// A kernel cgroup match whose process is gone before userspace reads its
// cgroup: the kernel keeps following it, and the child it left behind is
// judged through /proc (a service whose main process forks and exits).
func TestUnconfirmedKernelMatch(t *testing.T) {
	proc := t.TempDir()
	const s0 = 40 * sec
	proctreetest.Write(t, proc, proctreetest.Proc{PID: 701, PPID: 1, Comm: "worker", Start: ticks(s0 + sec),
		Exe: "/usr/bin/worker", Cwd: "/", Cmdline: "worker\x00", Cgroup: "/agents.slice/a.service"})
	set, err := matcher.New([]matcher.Spec{{Name: "cg-agent", Cgroup: "/agents.slice"}}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, rec := newTestTracker(t, func(c *Config) { c.ProcRoot = proc; c.Matcher = set })
	tr.Handle(execEv(700, s0, s0, kevent.FlagExecMatched, 1, "/bin/sh", "/", "sh", "-c", "worker &"))
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("the kernel was told to drop an unconfirmed match: %v", got)
	}
	tr.Handle(forkEv(701, s0+sec, s0+sec, 700, s0))
	tr.Handle(exitEv(700, s0, s0+2*sec, 0))
	if got := rec.take(); !slices.Equal(got, []string{"track 701 pending=false"}) {
		t.Fatalf("kernel calls %v", got)
	}
	ld, _ := tr.Flush(wall(s0 + 2*sec))
	logs := flatLogs(t, ld)
	if got := events(logs); !slices.Equal(got, []string{"session.start:701", "process.exec:701"}) || logs[0].resource[semconv.ServiceName] != "cg-agent" {
		t.Fatalf("events %v", got)
	}
}
