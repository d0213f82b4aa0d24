package session

import (
	"net/netip"
	"testing"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func closeEv(pid uint32, start, at, connectAt uint64, dest string, old, new uint8, errno int32) *kevent.ConnClose {
	return &kevent.ConnClose{Header: hdr(kevent.KindConnClose, 0, pid, start, at), ConnectTime: connectAt,
		Dest: netip.MustParseAddrPort(dest), OldState: old, NewState: new, Err: errno}
}

func closes(t *testing.T, ls []logRec) []logRec {
	t.Helper()
	var out []logRec
	for _, l := range ls {
		if l.event == semconv.EventNetClose {
			out = append(out, l)
		}
	}
	return out
}

// A closed connection is one record with its destination, outcome, bytes
// and duration, on the process's span; the outcomes follow the state it
// left and the error that ended it.
func TestConnCloseRecord(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) {
		c.Intent = IntentConfig{DNS: true, SystemResolvers: []netip.Addr{netip.MustParseAddr("10.0.0.53")}}
	})
	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	// a TCP query to the system resolver: its connect is no record, nor its close
	tr.Handle(closeEv(100, s0, s0+2*ms, s0+ms, "10.0.0.53:53", kevent.TCPEstablished, kevent.TCPFinWait1, 0))
	c := closeEv(100, s0, s0+1500*ms, s0+500*ms, "198.51.100.7:8443", kevent.TCPEstablished, kevent.TCPFinWait1, 0)
	c.BytesAcked, c.BytesReceived, c.SndUna, c.WriteSeq = 1+1000, 20, 5000, 5000+24
	tr.Handle(c)
	for _, tc := range []struct {
		old   uint8
		errno int32
	}{
		{kevent.TCPSynSent, 111}, {kevent.TCPSynSent, 110}, {kevent.TCPSynSent, 0}, {kevent.TCPSynSent, 113},
		{kevent.TCPEstablished, 104}, {kevent.TCPCloseWait, 32}, {kevent.TCPEstablished, 110},
	} {
		tr.Handle(closeEv(100, s0, s0+2*sec, s0+sec, "[2001:db8::1]:443", tc.old, kevent.TCPClose, tc.errno))
	}
	ld, _ := tr.Flush(wall(s0 + 3*sec))
	cs := closes(t, flatLogs(t, ld))
	if len(cs) != 8 {
		t.Fatalf("%d close records, want 8", len(cs))
	}
	a := cs[0].attrs
	want := map[string]any{
		semconv.NetworkPeerAddress: "198.51.100.7", semconv.NetworkPeerPort: int64(8443),
		semconv.NetworkTransport: "tcp", semconv.NetworkType: "ipv4",
		semconv.NetOutcome: semconv.NetOutcomeClosed, semconv.NetEstablished: true,
		semconv.NetSentBytes: int64(1024), semconv.NetAckedBytes: int64(1000), semconv.NetReceivedBytes: int64(20),
		semconv.NetDuration: 1.0, semconv.Hook: "tp_btf/inet_sock_set_state",
		semconv.PeerResolved: false, // DNS capture on, and no answer named it
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %v, want %v", k, a[k], v)
		}
	}
	if _, ok := a[semconv.ErrorType]; ok {
		t.Errorf("error.type on a clean close: %v", a)
	}
	if cs[0].span != spanID(SessionID(testBootID, key(100, s0)), 100, key(100, s0).Start, 0) {
		t.Errorf("span %v: not the process's", cs[0].span)
	}
	for i, w := range []struct{ outcome, errType string }{
		{semconv.NetOutcomeRefused, "ECONNREFUSED"}, {semconv.NetOutcomeTimeout, "ETIMEDOUT"},
		{semconv.NetOutcomeAborted, ""}, {semconv.NetOutcomeError, "EHOSTUNREACH"},
		{semconv.NetOutcomeReset, "ECONNRESET"}, {semconv.NetOutcomeReset, "EPIPE"}, {semconv.NetOutcomeTimeout, "ETIMEDOUT"},
	} {
		a := cs[i+1].attrs
		if a[semconv.NetOutcome] != w.outcome || w.errType != "" && a[semconv.ErrorType] != w.errType || w.errType == "" && a[semconv.ErrorType] != nil {
			t.Errorf("close %d: outcome %v error.type %v, want %s %s", i+1, a[semconv.NetOutcome], a[semconv.ErrorType], w.outcome, w.errType)
		}
		if a[semconv.NetworkType] != "ipv6" || a[semconv.NetworkPeerAddress] != "2001:db8::1" {
			t.Errorf("close %d: destination %v", i+1, a)
		}
	}
	if est := cs[1].attrs[semconv.NetEstablished]; est != false {
		t.Errorf("a refused connect established = %v", est)
	}
}

// sched_process_exit fires before the kernel closes the exiting process's
// files: the record of a connection its exit closed comes after its exit
// record. It still goes to the process's session and span, also when the
// process was the session's last; a process outside every session, or
// one forgotten long ago, gives nothing.
func TestConnCloseAfterExit(t *testing.T) {
	tr, _ := newTestTracker(t, nil)
	const s0 = 1000 * sec
	s1 := s0 + 100*ms
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	tr.Handle(forkEv(101, s1, s1, 100, s0))
	tr.Handle(execEv(101, s1, s1+ms, 0, 100, "/usr/bin/curl", "/w", "curl", "https://x"))
	tr.Handle(exitEv(101, s1, s0+sec, 0))
	tr.Handle(closeEv(101, s1, s0+sec+10, s1+2*ms, "10.0.0.1:443", kevent.TCPEstablished, kevent.TCPFinWait1, 0))
	// a fork that never exec'd: the span its exit record gave it
	s2 := s0 + 200*ms
	tr.Handle(forkEv(102, s2, s2, 100, s0))
	tr.Handle(exitEv(102, s2, s0+sec+20, 0))
	tr.Handle(closeEv(102, s2, s0+sec+30, s2+ms, "10.0.0.2:443", kevent.TCPCloseWait, kevent.TCPLastAck, 0))
	// the last process: its session waits for late records
	tr.Handle(exitEv(100, s0, s0+2*sec, 0))
	tr.Handle(closeEv(100, s0, s0+2*sec+10, s0+2*ms, "10.0.0.3:443", kevent.TCPEstablished, kevent.TCPClose, 104))
	tr.Handle(closeEv(555, s0, s0+2*sec+20, s0, "10.0.0.4:443", kevent.TCPEstablished, kevent.TCPFinWait1, 0))

	ld, td := tr.Flush(wall(s0 + 2*sec + 100*ms))
	cs := closes(t, flatLogs(t, ld))
	if len(cs) != 3 {
		t.Fatalf("%d close records, want 3: %v", len(cs), events(flatLogs(t, ld)))
	}
	id := SessionID(testBootID, key(100, s0))
	spans := flatSpans(t, td)
	curl := findSpan(t, spans, 101, "curl")
	fork := findSpan(t, spans, 102, "aw-agent")
	for i, w := range []struct {
		pid  int64
		span [8]byte
	}{{101, curl.id}, {102, fork.id}, {100, spanID(id, 100, key(100, s0).Start, 0)}} {
		if cs[i].trace != id || cs[i].pid() != w.pid || cs[i].span != w.span {
			t.Errorf("close %d: trace %v pid %d span %v, want %v %d %v", i, cs[i].trace, cs[i].pid(), cs[i].span, id, w.pid, w.span)
		}
	}
	if got := tr.Stats().ConnClosesLate; got != 3 {
		t.Errorf("late closes %d, want 3", got)
	}
	if ld, _ = tr.Flush(wall(s0 + 5*sec)); !hasEvent(t, ld, semconv.EventSessionEnd) {
		t.Fatal("session did not end")
	}
	// after the session's last flush, a late record has nowhere to go
	dropped := tr.Stats().EventsDropped
	tr.Handle(closeEv(100, s0, s0+5*sec, s0, "10.0.0.5:443", kevent.TCPEstablished, kevent.TCPClose, 0))
	if ld, _ = tr.Flush(wall(s0 + 6*sec)); ld.LogRecordCount() != 0 || tr.Stats().EventsDropped != dropped+1 {
		t.Errorf("record after the session ended: %d records, %d dropped", ld.LogRecordCount(), tr.Stats().EventsDropped-dropped)
	}
	// and the memory forgets
	tr.Flush(wall(s0 + 60*sec))
	if len(tr.exited.m) != 0 || len(tr.exited.q) != 0 {
		t.Errorf("exited memory kept %d (queue %d)", len(tr.exited.m), len(tr.exited.q))
	}
}

// The memory of exited processes is bounded: beyond maxExited the oldest
// are forgotten first.
func TestExitedMemoryBounded(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) { c.MaxProcesses = 2 * maxExited })
	const s0 = 1000 * sec
	tr.Handle(execEv(1, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	n := uint32(maxExited + 10)
	for i := uint32(0); i < n; i++ {
		pid, st := 1000+i, s0+uint64(i+1)*ms
		tr.Handle(forkEv(pid, st, st, 1, s0))
		tr.Handle(exitEv(pid, st, st+1, 0))
	}
	if len(tr.exited.m) != maxExited {
		t.Fatalf("remembered %d, want %d", len(tr.exited.m), maxExited)
	}
	if _, ok := tr.exited.m[key(1000, s0+ms)]; ok {
		t.Error("the oldest exit is still remembered")
	}
	if _, ok := tr.exited.m[key(1000+n-1, s0+uint64(n)*ms)]; !ok {
		t.Error("the newest exit is forgotten")
	}
	if len(tr.exited.q)-tr.exited.head != maxExited || len(tr.exited.q) > 2*maxExited {
		t.Errorf("queue %d from %d", len(tr.exited.q), tr.exited.head)
	}
}

// A fork that did nothing of its own and whose clean exit left no record
// has no span: a late record goes to its parent's.
func TestConnCloseAfterExitNoSpan(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) { c.DropCleanExits = true })
	const s0 = 1000 * sec
	s1 := s0 + 100*ms
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	tr.Handle(forkEv(101, s1, s1, 100, s0))
	tr.Handle(exitEv(101, s1, s0+sec, 0))
	tr.Handle(closeEv(101, s1, s0+sec+10, s1+ms, "10.0.0.1:443", kevent.TCPEstablished, kevent.TCPFinWait1, 0))
	ld, td := tr.Flush(wall(s0 + 2*sec))
	cs := closes(t, flatLogs(t, ld))
	if len(cs) != 1 {
		t.Fatalf("%d close records", len(cs))
	}
	for _, sp := range flatSpans(t, td) {
		if sp.pid() == 101 {
			t.Fatalf("the fork has a span: %v", sp)
		}
	}
	if want := spanID(SessionID(testBootID, key(100, s0)), 100, key(100, s0).Start, 0); cs[0].span != want || cs[0].pid() != 101 {
		t.Errorf("pid %d span %v, want 101 on its parent's %v", cs[0].pid(), cs[0].span, want)
	}
}
