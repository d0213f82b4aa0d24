package session

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

func TestOpenFlags(t *testing.T) {
	tests := []struct {
		flags uint32
		want  string
	}{
		{unix.O_RDONLY, "O_RDONLY"},
		{unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC | unix.O_CLOEXEC, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"},
		{unix.O_RDWR | unix.O_APPEND | unix.O_EXCL, "O_RDWR|O_EXCL|O_APPEND"},
		{unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, "O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC"},
		{unix.O_WRONLY | unix.O_SYNC, "O_WRONLY|O_SYNC"},
		{unix.O_WRONLY | unix.O_DSYNC, "O_WRONLY|O_DSYNC"},
		{unix.O_RDWR | unix.O_TMPFILE, "O_RDWR|O_TMPFILE"},
		{unix.O_PATH | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_NOATIME | unix.O_ASYNC | unix.O_DIRECT, "O_RDONLY|O_NOCTTY|O_NONBLOCK|O_ASYNC|O_DIRECT|O_NOATIME|O_PATH"},
		{kernelOLargefile, "O_RDONLY|O_LARGEFILE"},
		{3, "0x3"},
		{unix.O_WRONLY | 1<<30, "O_WRONLY|0x40000000"},
	}
	for _, tc := range tests {
		if got := OpenFlags(tc.flags); got != tc.want {
			t.Errorf("OpenFlags(%#x) = %q, want %q", tc.flags, got, tc.want)
		}
	}
	c := flagCache{}
	for i := range maxFlagCache + 10 {
		if got := c.get(uint32(i) << 8); got != OpenFlags(uint32(i)<<8) {
			t.Fatalf("cache returned %q", got)
		}
	}
	if len(c) != maxFlagCache {
		t.Errorf("cache grew to %d", len(c))
	}
}

func TestSignalName(t *testing.T) {
	for sig, want := range map[int]string{9: "SIGKILL", 15: "SIGTERM", 11: "SIGSEGV", 1: "SIGHUP", 100: "SIG100"} {
		if got := SignalName(sig); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", sig, got, want)
		}
	}
}

func TestUTF8Safe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"/home/u/café", "/home/u/café"},
		{"/tmp/\xff", `/tmp/\xff`},
		{"\xff\xfe", `\xff\xfe`},
		{"a\xc3", `a\xc3`}, // a cut multi-byte sequence
		{"\xe2\x82", `\xe2\x82`},
		{"ok\x00nul", "ok\x00nul"},
	}
	for _, tc := range tests {
		if got := utf8Safe(tc.in); got != tc.want {
			t.Errorf("utf8Safe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	in := []string{"a", "b"}
	if out := utf8SafeArgs(in); &out[0] != &in[0] {
		t.Error("valid argv was copied")
	}
	bad := []string{"a", "\xff"}
	out := utf8SafeArgs(bad)
	if bad[1] != "\xff" || out[1] != `\xff` {
		t.Errorf("argv changed in place or not sanitized: %q %q", bad, out)
	}
}

func TestIDs(t *testing.T) {
	k := proctree.Key{PID: 100, Start: 5000}
	id := SessionID("boot", k)
	if id != SessionID("boot", k) {
		t.Fatal("SessionID not deterministic")
	}
	distinct := map[pcommon.TraceID]string{id: "base"}
	for name, other := range map[string]pcommon.TraceID{
		"boot":  SessionID("boot2", k),
		"pid":   SessionID("boot", proctree.Key{PID: 101, Start: 5000}),
		"start": SessionID("boot", proctree.Key{PID: 100, Start: 5001}),
	} {
		if prev, dup := distinct[other]; dup {
			t.Errorf("changing the %s gives the id of %s", name, prev)
		}
		distinct[other] = name
	}
	spans := map[pcommon.SpanID]bool{rootSpanID(id): true}
	for pid := uint32(1); pid < 200; pid++ {
		for seq := uint32(0); seq < 5; seq++ {
			s := spanID(id, pid, uint64(pid)*7, seq)
			if s.IsEmpty() || spans[s] {
				t.Fatalf("span id %v (pid %d seq %d) empty or repeated", s, pid, seq)
			}
			spans[s] = true
		}
	}
	if spanID(id, 5, 6, 7) != spanID(id, 5, 6, 7) {
		t.Fatal("spanID not deterministic")
	}
	if spanID(id, 5, 6, 7) == spanID(SessionID("boot2", k), 5, 6, 7) {
		t.Fatal("spanID ignores the session")
	}
}

func TestClock(t *testing.T) {
	c := FixedClock(1000)
	if c.Wall(5) != 1005 || c.Boot(time.Unix(0, 1005)) != 5 || c.Boot(time.Unix(0, 10)) != 0 {
		t.Fatal("fixed clock conversions")
	}
	c.Refresh()
	if c.Wall(5) != 1005 {
		t.Fatal("Refresh moved a fixed clock")
	}
	live := NewClock()
	diff := time.Duration(int64(live.Wall(BootNow())) - time.Now().UnixNano())
	if diff < -50*time.Millisecond || diff > 50*time.Millisecond {
		t.Fatalf("boot→wall off by %v", diff)
	}
}

// FuzzTracker drives a tracker with arbitrary event sequences over a small
// pid space (so forks, exits and reuse collide) and checks its invariants.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 2, 2, 1, 1, 1, 2, 2, 1, 4, 2, 1, 3, 2, 1, 7, 0, 0})
	f.Add([]byte{0, 1, 2, 2, 2, 2, 1, 3, 2, 1, 1, 2, 2, 5, 7, 7, 7})
	f.Add([]byte{0, 3, 1, 1, 3, 1, 3, 2, 1, 7, 3, 3, 0, 3, 1})
	procRoot := f.TempDir()
	f.Fuzz(func(t *testing.T, ops []byte) {
		rec := newRecorder()
		tr, err := New(Config{Matcher: testMatchers(t), BootID: testBootID, HostName: "h", ProcRoot: procRoot,
			ReapInterval: -1, MaxSessions: 3, MaxSessionProcesses: 4, MaxPendingRecords: 50, Clock: FixedClock(testOffset)}, rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := uint64(sec)
		starts := [4]uint64{sec, 2 * sec, 3 * sec, 4 * sec}
		for i := 0; i+2 < len(ops); i += 3 {
			op, a, b := ops[i]%8, ops[i+1], ops[i+2]
			pid, start := uint32(a%6)+1, starts[a/6%4]
			ppid, pstart := uint32(b%6)+1, starts[b/6%4]
			now += 10 * ms
			switch op {
			case 0:
				exe := []string{"/x/aw-agent", "/usr/bin/python3", "/bin/sh", "rel/\xffbin"}[b%4]
				tr.Handle(execEv(pid, start, now, uint16(b>>4)&7, ppid, exe, "/w", exe, "agent.py"))
			case 1:
				tr.Handle(forkEv(pid, start, now, ppid, pstart))
			case 2:
				tr.Handle(exitEv(pid, start, now, uint32(b)<<uint(a%2*8)))
			case 3:
				tr.Handle(openEv(pid, start, now, uint16(b)&0x3f, "rel/../\xffx", uint32(b)<<12, int32(b)-128))
			case 4:
				tr.Handle(connectEv(pid, start, now, "::ffff:10.0.0.1", uint16(b), uint16(b%4), 0))
			case 5:
				tr.Handle(&kevent.Open{Header: hdr(kevent.KindOpen, 0, pid, start, now), Syscall: uint16(b)})
			default:
				now += uint64(b) * 100 * ms
				checkFlush(t, tr, now)
			}
			checkInvariants(t, tr)
		}
		checkFlush(t, tr, now+uint64(time.Hour))
	})
}

func checkInvariants(t *testing.T, tr *Tracker) {
	t.Helper()
	live := map[*session]int{}
	for k, p := range tr.procs {
		if p.key != k || p.sess.ended {
			t.Fatalf("process %v: key %v, session ended %v", k, p.key, p.sess.ended)
		}
		live[p.sess]++
	}
	active := 0
	for _, s := range tr.sessions {
		if s.live != live[s] {
			t.Fatalf("session %s: live %d, has %d", s.idHex, s.live, live[s])
		}
		if s.live > tr.cfg.MaxSessionProcesses {
			t.Fatalf("session over its process bound")
		}
		if !s.ended {
			active++
		}
	}
	if st := tr.Stats(); st.ActiveSessions != active || st.TrackedProcesses != len(tr.procs) || active > tr.cfg.MaxSessions {
		t.Fatalf("stats %+v; %d active, %d procs", st, active, len(tr.procs))
	}
}

func checkFlush(t *testing.T, tr *Tracker, boot uint64) {
	t.Helper()
	ld, td := tr.Flush(wall(boot))
	for _, l := range flatLogs(t, ld) {
		if l.trace.IsEmpty() || l.span.IsEmpty() || l.resource[semconv.SessionID] != l.trace.String() {
			t.Fatalf("record %s: trace %v span %v resource %v", l.event, l.trace, l.span, l.resource)
		}
		if p, ok := l.attrs[semconv.FilePath].(string); ok && strings.Contains(p, "\xff") {
			t.Fatalf("raw byte in %q", p)
		}
	}
	for _, s := range flatSpans(t, td) {
		if s.id.IsEmpty() || s.end < s.start {
			t.Fatalf("span %s: id %v, %v..%v", s.name, s.id, s.start, s.end)
		}
	}
}
