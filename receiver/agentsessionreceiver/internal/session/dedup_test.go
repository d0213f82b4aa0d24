package session

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func opensOf(t *testing.T, logs []logRec) []string {
	t.Helper()
	var out []string
	for _, l := range logs {
		if l.event != semconv.EventFileOpen {
			continue
		}
		out = append(out, fmt.Sprintf("%d %s %s %d x%v", l.pid(), l.attrs[semconv.FilePath], l.attrs[semconv.FileFlags], l.attrs[semconv.FileResult], l.attrs[semconv.FileOpenCount]))
	}
	return out
}

// Repeats of one open inside the window are one record with the count;
// another path, other flags or another result class is its own record.
func TestDedupOpens(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) { c.DedupWindow = 2 * time.Second })
	const s0 = 100 * sec
	tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/home/u", "aw-agent"))
	at := s0
	open := func(p string, flags uint32, ret int32) {
		at += 10 * ms
		tr.Handle(openEv(100, s0, at, 0, p, flags, ret))
	}
	for range 19 {
		open("/home/u/.claude.json", unix.O_RDONLY, 5) // the fd varies; success is one class
	}
	open("/home/u/.claude.json", unix.O_RDONLY, 7)
	open("/home/u/.claude.json", unix.O_WRONLY|unix.O_TRUNC, 5)
	open("/home/u/.claude.json", unix.O_RDONLY, -int32(unix.ENOENT))
	open("/home/u/.claude.json", unix.O_RDONLY, -int32(unix.EACCES))
	open("/home/u/.ssh/id_rsa", unix.O_RDONLY, -int32(unix.ENOENT))
	first := at
	// Inside the window nothing of the folded opens is out yet.
	ld, _ := tr.Flush(wall(s0 + sec))
	if got := opensOf(t, flatLogs(t, ld)); len(got) != 0 {
		t.Fatalf("before the window ends: %v", got)
	}
	ld, _ = tr.Flush(wall(first + 2*sec))
	logs := flatLogs(t, ld)
	want := []string{
		"100 /home/u/.claude.json O_RDONLY 5 x20",
		"100 /home/u/.claude.json O_WRONLY|O_TRUNC 5 x<nil>",
		"100 /home/u/.claude.json O_RDONLY -2 x<nil>",
		"100 /home/u/.claude.json O_RDONLY -13 x<nil>",
		"100 /home/u/.ssh/id_rsa O_RDONLY -2 x<nil>",
	}
	if got := opensOf(t, logs); !slices.Equal(got, want) {
		t.Fatalf("opens\n%v\nwant\n%v", got, want)
	}
	if logs[0].ts != tr.clock.Wall(s0+10*ms) {
		t.Errorf("the record is timed at the first open")
	}
	if st := tr.Stats(); st.OpensFolded != 19 {
		t.Errorf("folded %d", st.OpensFolded)
	}
	// A new window after the old one ended.
	at = first + 3*sec
	open("/home/u/.claude.json", unix.O_RDONLY, 5)
	// The process execs: its held opens go out first, with the old span.
	_, span, _ := tr.Lookup(100, s0)
	tr.Handle(execEv(100, s0, at+ms, 0, 1, "/usr/bin/git", "/home/u", "git"))
	ld, _ = tr.Flush(wall(at + 2*ms))
	logs = flatLogs(t, ld)
	if got := opensOf(t, logs); !slices.Equal(got, []string{"100 /home/u/.claude.json O_RDONLY 5 x<nil>"}) {
		t.Fatalf("at exec: %v", got)
	}
	for _, l := range logs {
		if l.event == semconv.EventFileOpen && l.span != span {
			t.Error("a held open carries the new image's span")
		}
	}
	// Exit and Drain release too.
	open("/a", 0, 3)
	open("/a", 0, 3)
	tr.Handle(exitEv(100, s0, at+5*ms, 0))
	ld, _ = tr.Flush(wall(at + 6*ms))
	if got := events(flatLogs(t, ld)); !slices.Equal(got, []string{"file.open:100", "process.exit:100"}) {
		t.Errorf("at exit: %v", got)
	}
}

func TestDedupDrainAndDisabled(t *testing.T) {
	for _, window := range []time.Duration{0, time.Hour} {
		tr, _ := newTestTracker(t, func(c *Config) { c.DedupWindow = window })
		const s0 = 100 * sec
		tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/", "aw-agent"))
		for i := range 3 {
			tr.Handle(openEv(100, s0, s0+uint64(i)*ms, 0, "/etc/hosts", 0, 3))
		}
		tr.Drain()
		ld, _ := tr.Flush(wall(s0 + sec))
		got := opensOf(t, flatLogs(t, ld))
		want := []string{"100 /etc/hosts O_RDONLY 3 x3"}
		if window == 0 {
			want = []string{"100 /etc/hosts O_RDONLY 3 x<nil>", "100 /etc/hosts O_RDONLY 3 x<nil>", "100 /etc/hosts O_RDONLY 3 x<nil>"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("window %v: %v", window, got)
		}
	}
}

// The fold table is bounded: past it opens are recorded one by one.
func TestDedupBounded(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) { c.DedupWindow = time.Hour })
	const s0 = 100 * sec
	tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/", "aw-agent"))
	for i := range maxFoldsPerProc + 10 {
		tr.Handle(openEv(100, s0, s0+uint64(i), 0, fmt.Sprintf("/f%d", i), 0, 3))
	}
	ld, _ := tr.Flush(wall(s0 + sec))
	if n := len(opensOf(t, flatLogs(t, ld))); n != 10 {
		t.Errorf("%d opens out at once, want the 10 over the bound", n)
	}
	if st := tr.Stats(); st.OpensUnfolded != 10 {
		t.Errorf("unfolded %d", st.OpensUnfolded)
	}
	tr.Drain()
	ld, _ = tr.Flush(wall(s0 + 2*sec))
	if n := len(opensOf(t, flatLogs(t, ld))); n != maxFoldsPerProc {
		t.Errorf("drained %d", n)
	}
}
