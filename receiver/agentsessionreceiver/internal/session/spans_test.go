package session

import (
	"slices"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// A fork gets a span of its own only when it does something before (or
// instead of) an exec: an open, an exit without exec, a child. Its span
// then starts at the fork, and its records carry it.
func TestForkSpans(t *testing.T) {
	for _, w := range []time.Duration{0, 2 * time.Second} {
		t.Run("dedup "+w.String(), func(t *testing.T) { testForkSpans(t, w) })
	}
}

// With folding, the fork's open is held when the exec comes: it still
// gives the fork its span, and carries it.
func testForkSpans(t *testing.T, dedup time.Duration) {
	tr, _ := newTestTracker(t, func(c *Config) { c.DedupWindow = dedup })
	const s0 = 500 * sec
	tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent"))
	// 101: opens before its exec (a shell redirect) → fork span, then git.
	tr.Handle(forkEv(101, s0+10*ms, s0+10*ms, 100, s0))
	tr.Handle(openEv(101, s0+10*ms, s0+11*ms, 0, "/w/out.log", 1, 3))
	tr.Handle(execEv(101, s0+10*ms, s0+12*ms, 0, 100, "/usr/bin/git", "/w", "git", "status"))
	// 102: a worker fork that never execs.
	tr.Handle(forkEv(102, s0+20*ms, s0+20*ms, 100, s0))
	tr.Handle(exitEv(102, s0+20*ms, s0+25*ms, 0))
	// 103: a subshell that forks 104 and then execs: 104 hangs off it.
	tr.Handle(forkEv(103, s0+30*ms, s0+30*ms, 100, s0))
	tr.Handle(forkEv(104, s0+31*ms, s0+31*ms, 103, s0+30*ms))
	tr.Handle(execEv(104, s0+31*ms, s0+32*ms, 0, 103, "/usr/bin/cat", "/w", "cat"))
	tr.Handle(execEv(103, s0+30*ms, s0+33*ms, 0, 100, "/usr/bin/ls", "/w", "ls"))
	// 105: forks and execs at once; exits.
	tr.Handle(forkEv(105, s0+40*ms, s0+40*ms, 100, s0))
	tr.Handle(execEv(105, s0+40*ms, s0+41*ms, 0, 100, "/usr/bin/true", "/w", "true"))
	for _, pid := range []uint32{101, 103, 104, 105} {
		start := map[uint32]uint64{101: s0 + 10*ms, 103: s0 + 30*ms, 104: s0 + 31*ms, 105: s0 + 40*ms}[pid]
		tr.Handle(exitEv(pid, start, s0+50*ms, 0))
	}
	tr.Handle(exitEv(100, s0, s0+60*ms, 0))
	ld, td := tr.Flush(wall(s0 + 10*sec))
	spans, logs := flatSpans(t, td), flatLogs(t, ld)
	want := []string{"aw-agent:100", "aw-agent:101", "aw-agent:102", "aw-agent:103", "cat:104", "git:101",
		"invoke_agent test-agent:100", "ls:103", "true:105"}
	if got := spanNames(spans); !slices.Equal(got, want) {
		t.Fatalf("spans %v\nwant %v", got, want)
	}
	agent := findSpan(t, spans, 100, "aw-agent")
	fork101 := findSpan(t, spans, 101, "aw-agent")
	git := findSpan(t, spans, 101, "git")
	if fork101.parent != agent.id || git.parent != fork101.id || fork101.start != tr.clock.Wall(s0+10*ms) {
		t.Errorf("101: fork %+v git %+v", fork101, git)
	}
	if w := findSpan(t, spans, 102, "aw-agent"); w.parent != agent.id || w.attrs[semconv.ProcessExitCode] != int64(0) {
		t.Errorf("worker %+v", w)
	}
	sub := findSpan(t, spans, 103, "aw-agent")
	if c := findSpan(t, spans, 104, "cat"); c.parent != sub.id {
		t.Error("cat is not under the subshell's fork span")
	}
	if tr5 := findSpan(t, spans, 105, "true"); tr5.parent != agent.id {
		t.Error("an immediate exec is not under the parent's span")
	}
	// Every record's span is exported.
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.id.String()] = true
	}
	for _, l := range logs {
		if !ids[l.span.String()] {
			t.Errorf("%s of %d: span %v is not exported", l.event, l.pid(), l.span)
		}
	}
}
