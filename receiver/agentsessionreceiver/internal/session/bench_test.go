package session

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent/keventtest"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

const (
	benchSessions = 256
	benchPerSess  = 4
	benchFlushN   = 4096 // the receiver flushes at most this many events late
)

// benchTracker holds benchSessions sessions of benchPerSess processes.
func benchTracker(b *testing.B) (*Tracker, []proctree.Key) {
	b.Helper()
	tr, _ := newTestTracker(b, func(c *Config) { c.MaxPendingRecords = 1 << 20 })
	var keys []proctree.Key
	at := uint64(100 * sec)
	for s := range benchSessions {
		root := uint32(10000 + s*10)
		start := at + uint64(s)*10*ms
		tr.Handle(execEv(root, start, start, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/home/u/proj", "aw-agent", "--task", "fix the tests"))
		keys = append(keys, proctree.KeyOf(root, start))
		for c := 1; c < benchPerSess; c++ {
			tr.Handle(forkEv(root+uint32(c), start, start, root, start))
			keys = append(keys, proctree.KeyOf(root+uint32(c), start))
		}
	}
	tr.Flush(wall(at))
	return tr, keys
}

// BenchmarkLookup is the per-event session lookup: (pid, start) → process.
func BenchmarkLookup(b *testing.B) {
	tr, keys := benchTracker(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		if tr.member(k, 0) == nil {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkHandleOpen is decode-free event → LogRecord shaping, with the
// Flush that hands the records over amortised in.
func BenchmarkHandleOpen(b *testing.B) {
	tr, keys := benchTracker(b)
	evs := make([]*kevent.Open, len(keys))
	for i, k := range keys {
		evs[i] = openEv(k.PID, k.StartNS(), 200*sec, 0, "/home/u/proj/src/main.go", unix.O_RDONLY|unix.O_CLOEXEC, 3)
	}
	benchEvents(b, tr, func(i int) kevent.Event { return evs[i%len(evs)] })
}

// BenchmarkHandleOpenDedup is the open path with folding on: the same
// opens again and again (an agent's state files), counted on held records.
func BenchmarkHandleOpenDedup(b *testing.B) {
	tr, keys := benchTracker(b)
	tr.cfg.DedupWindow = 2 * time.Second
	evs := make([]*kevent.Open, 0, 4*len(keys))
	for _, k := range keys {
		for _, f := range []string{"/home/u/.claude.json", "/home/u/proj/src/main.go", "/home/u/proj/go.mod", "/etc/hosts"} {
			evs = append(evs, openEv(k.PID, k.StartNS(), 200*sec, 0, f, unix.O_RDONLY|unix.O_CLOEXEC, 3))
		}
	}
	benchEvents(b, tr, func(i int) kevent.Event {
		e := evs[i%len(evs)]
		e.Time = 200*sec + uint64(i)*uint64(time.Microsecond) // windows end as time goes
		return e
	})
}

// BenchmarkHandleOpenDedupUnique is folding's worst case: no open repeats,
// each is held for its window and then recorded.
func BenchmarkHandleOpenDedupUnique(b *testing.B) {
	tr, keys := benchTracker(b)
	tr.cfg.DedupWindow = 2 * time.Second
	evs := make([]*kevent.Open, 0, 4096)
	for i := range cap(evs) {
		k := keys[i%len(keys)]
		evs = append(evs, openEv(k.PID, k.StartNS(), 0, 0, "/home/u/proj/src/f"+strconv.Itoa(i)+".go", unix.O_RDONLY|unix.O_CLOEXEC, 3))
	}
	benchEvents(b, tr, func(i int) kevent.Event {
		e := evs[i%len(evs)]
		e.Time = 200*sec + uint64(i)*uint64(time.Millisecond)
		return e
	})
}

func BenchmarkHandleConnect(b *testing.B) {
	tr, keys := benchTracker(b)
	evs := make([]*kevent.Connect, len(keys))
	for i, k := range keys {
		evs[i] = connectEv(k.PID, k.StartNS(), 200*sec, "192.0.2.10", 443, 1, -115)
	}
	benchEvents(b, tr, func(i int) kevent.Event { return evs[i%len(evs)] })
}

// BenchmarkHandleExec is an exec inside a session: one span ends, one log.
func BenchmarkHandleExec(b *testing.B) {
	tr, keys := benchTracker(b)
	evs := make([]*kevent.Exec, len(keys))
	for i, k := range keys {
		evs[i] = execEv(k.PID, k.StartNS(), 200*sec, 0, 1, "/usr/bin/git", "/home/u/proj", "git", "status", "--porcelain")
	}
	benchEvents(b, tr, func(i int) kevent.Event { return evs[i%len(evs)] })
}

func benchEvents(b *testing.B, tr *Tracker, ev func(int) kevent.Event) {
	now := wall(200 * sec)
	b.ReportAllocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		tr.Handle(ev(i))
		i++
		if i%benchFlushN == 0 {
			tr.Flush(now)
		}
	}
	tr.Flush(now)
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkDecodeToPdata is the receiver's whole userspace hot path: a raw
// ring-buffer record is decoded and shaped into a LogRecord. The mix is what
// a coding agent does most: file opens, some connects, the odd exec.
func BenchmarkDecodeToPdata(b *testing.B) {
	tr, keys := benchTracker(b)
	var raw [][]byte
	for i, k := range keys {
		raw = append(raw, keventtest.Encode(openEv(k.PID, k.StartNS(), 200*sec, 0, "/home/u/proj/src/main.go", unix.O_RDONLY|unix.O_CLOEXEC, 3)))
		raw = append(raw, keventtest.Encode(openEv(k.PID, k.StartNS(), 200*sec, 0, "/home/u/proj/.env", unix.O_RDONLY, 4)))
		if i%4 == 0 {
			raw = append(raw, keventtest.Encode(connectEv(k.PID, k.StartNS(), 200*sec, "192.0.2.10", 443, 1, -115)))
		}
		if i%16 == 0 {
			raw = append(raw, keventtest.Encode(execEv(k.PID, k.StartNS(), 200*sec, 0, 1, "/usr/bin/git", "/home/u/proj", "git", "status")))
		}
	}
	benchEvents(b, tr, func(i int) kevent.Event {
		ev, err := kevent.Decode(raw[i%len(raw)])
		if err != nil {
			b.Fatal(err)
		}
		return ev
	})
}
