package session

import (
	"strconv"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// connCloseHook is the kernel hook of agent.net.close records.
const connCloseHook = "tp_btf/inet_sock_set_state"

// The memory of processes that exited: the kernel reports a connection a
// process's exit closes after the exit itself (sched_process_exit fires
// before the exiting task's files are closed), when the process is no
// longer followed. Such a record is still the process's: it goes to its
// session and its last span. The memory is bounded by count and age; what
// falls out of it is dropped like any event of an unknown process.
const (
	maxExited = 4096
	exitedTTL = uint64(30 * time.Second)
)

type exitedProc struct {
	p *proc
	// span is where its records went: its last image's span, or, for a
	// fork that never did anything of its own (no span exported), its
	// parent's.
	span pcommon.SpanID
	at   uint64 // boottime ns of the exit
}

type exitedProcs struct {
	m    map[proctree.Key]exitedProc
	q    []proctree.Key // in exit order, from head
	head int
}

// rememberExited keeps p for the records its exit leaves behind.
func (t *Tracker) rememberExited(p *proc, at uint64) {
	x := &t.exited
	if x.m == nil {
		x.m = map[proctree.Key]exitedProc{}
	}
	span := p.span
	if p.forkOnly {
		span = p.parentSpan
	}
	if _, ok := x.m[p.key]; !ok {
		x.q = append(x.q, p.key)
	}
	x.m[p.key] = exitedProc{p: p, span: span, at: at}
	t.expireExited(at)
}

// expireExited forgets the processes that exited more than exitedTTL
// before now, and the oldest beyond maxExited.
func (t *Tracker) expireExited(now uint64) {
	x := &t.exited
	for x.head < len(x.q) {
		k := x.q[x.head]
		e, ok := x.m[k]
		if ok && len(x.m) <= maxExited && now < e.at+exitedTTL {
			break
		}
		delete(x.m, k)
		x.q[x.head] = proctree.Key{}
		x.head++
	}
	if x.head > 0 && x.head >= len(x.q)/2 {
		n := copy(x.q, x.q[x.head:])
		clear(x.q[n:])
		x.q, x.head = x.q[:n], 0
	}
}

// connClose records how a TCP connection of a session process ended.
func (t *Tracker) connClose(e *kevent.ConnClose) {
	key := proctree.KeyOf(e.PID, e.Start)
	p := t.procs[key]
	var lateSpan pcommon.SpanID
	late := false
	if p == nil {
		if x, ok := t.exited.m[key]; ok {
			if x.p.sess.ended {
				t.st.eventsDropped.Add(1) // flushed for the last time already
				return
			}
			p, lateSpan, late = x.p, x.span, true
		} else if p = t.member(key, e.Time); p == nil {
			return
		}
	}
	addr := e.Dest.Addr()
	if t.in != nil && t.in.cfg.DNS && e.Dest.Port() == 53 && t.resolverIsSystem(p, addr.WithZone("").Unmap()) {
		return // the resolver library's TCP query: its connect is no record either (lookupConnect)
	}
	lr, ok := t.eventLog(p, semconv.EventNetClose, e.Time, 14)
	if !ok {
		return
	}
	if late {
		lr.SetSpanID(lateSpan)
		t.st.connClosesLate.Add(1)
	}
	a := lr.Attributes()
	a.PutStr(semconv.NetworkPeerAddress, addr.String())
	a.PutInt(semconv.NetworkPeerPort, int64(e.Dest.Port()))
	a.PutStr(semconv.NetworkTransport, "tcp")
	if addr.Is4() {
		a.PutStr(semconv.NetworkType, "ipv4")
	} else {
		a.PutStr(semconv.NetworkType, "ipv6")
	}
	a.PutStr(semconv.NetOutcome, connOutcome(e))
	a.PutBool(semconv.NetEstablished, e.Established())
	sent, acked, received := e.Bytes()
	a.PutInt(semconv.NetSentBytes, clampInt64(sent))
	a.PutInt(semconv.NetAckedBytes, clampInt64(acked))
	a.PutInt(semconv.NetReceivedBytes, clampInt64(received))
	if e.Time > e.ConnectTime && e.ConnectTime != 0 {
		a.PutDouble(semconv.NetDuration, float64(e.Time-e.ConnectTime)/1e9)
	} else {
		a.PutDouble(semconv.NetDuration, 0)
	}
	if e.Err != 0 {
		a.PutStr(semconv.ErrorType, errnoName(e.Err))
	}
	a.PutStr(semconv.Hook, connCloseHook)
	t.putPeerName(p, a, addr, e.Dest.Port())
}

// connOutcome names how the connection ended (semconv.NetOutcome*).
func connOutcome(e *kevent.ConnClose) string {
	err := syscall.Errno(e.Err)
	switch {
	case err == syscall.ETIMEDOUT:
		return semconv.NetOutcomeTimeout
	case !e.Established():
		switch err {
		case syscall.ECONNREFUSED:
			return semconv.NetOutcomeRefused
		case 0:
			return semconv.NetOutcomeAborted
		}
		return semconv.NetOutcomeError
	case err == 0:
		return semconv.NetOutcomeClosed
	case err == syscall.ECONNRESET || err == syscall.EPIPE:
		return semconv.NetOutcomeReset
	}
	return semconv.NetOutcomeError
}

// errnoName is "ECONNREFUSED" for 111; the number for an unknown one.
func errnoName(n int32) string {
	if s := unix.ErrnoName(syscall.Errno(n)); s != "" {
		return s
	}
	return "errno " + strconv.Itoa(int(n))
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}
