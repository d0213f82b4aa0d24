package session

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// The agent's own reads of its state are dropped; the same file opened by a
// tool the agent runs, or another file, is reported; with the option off
// every open is reported.
func TestAgentStateOpens(t *testing.T) {
	for _, on := range []bool{true, false} {
		tr, _ := newTestTracker(t, func(c *Config) {
			if on {
				c.AgentState = map[string][]string{"test-agent": {"~/.agent/**", "~/.agent.json"}}
			}
		})
		const s0 = 500 * sec
		ex := execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent")
		ex.Home = "/sandbox/home" // HOME, not the passwd home, is "~"
		tr.Handle(ex)
		tr.Handle(openEv(100, s0, s0+1*ms, 0, "/sandbox/home/.agent.json", 0, 3))
		tr.Handle(openEv(100, s0, s0+2*ms, 0, "/sandbox/home/.agent/cache/x", 0, 3))
		// A worker fork of the agent is the agent too.
		tr.Handle(forkEv(101, s0+3*ms, s0+3*ms, 100, s0))
		tr.Handle(openEv(101, s0+3*ms, s0+4*ms, 0, "/sandbox/home/.agent/log", 1, 4))
		// A tool: cat of the agent's state is reported.
		tr.Handle(forkEv(102, s0+5*ms, s0+5*ms, 100, s0))
		tr.Handle(execEv(102, s0+5*ms, s0+6*ms, 0, 100, "/usr/bin/cat", "/w", "cat", "/sandbox/home/.agent.json"))
		tr.Handle(openEv(102, s0+5*ms, s0+7*ms, 0, "/sandbox/home/.agent.json", 0, 3))
		tr.Handle(openEv(100, s0, s0+8*ms, 0, "/sandbox/home/.ssh/id_rsa", 0, 3))
		for _, pid := range []uint32{101, 102} {
			tr.Handle(exitEv(pid, map[uint32]uint64{101: s0 + 3*ms, 102: s0 + 5*ms}[pid], s0+9*ms, 0))
		}
		tr.Handle(exitEv(100, s0, s0+10*ms, 0))
		ld, _ := tr.Flush(wall(s0 + 10*sec))
		var opens []string
		for _, l := range flatLogs(t, ld) {
			if l.attrs[semconv.EventName] == semconv.EventFileOpen {
				opens = append(opens, l.attrs[semconv.FilePath].(string))
			}
		}
		want := 2
		if !on {
			want = 5
		}
		if len(opens) != want {
			t.Fatalf("agent_state %v: opens %v, want %d", on, opens, want)
		}
		if on && (opens[0] != "/sandbox/home/.agent.json" || opens[1] != "/sandbox/home/.ssh/id_rsa") {
			t.Fatalf("kept %v", opens)
		}
		if got := tr.Stats().AgentStateDropped; on && got != 3 {
			t.Fatalf("dropped %d, want 3", got)
		}
	}
}

// A program the agent starts outside every tool call (OpenCode's snapshot
// git) is the agent's own once the session's LLM calls are seen; a tool
// call's process, and any process before the calls are seen, are not.
func TestAgentStateByAgentChild(t *testing.T) {
	for _, c := range []struct {
		name          string
		llmSeen, tool bool
		wantDropped   bool
	}{
		{"housekeeping", true, false, true},
		{"llm calls not seen", false, false, false},
		{"tool call", true, true, false},
	} {
		tr, _ := newTestTracker(t, func(c *Config) {
			c.AgentState = map[string][]string{"test-agent": {"~/.agent/**"}}
		})
		const s0 = 500 * sec
		ex := execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent")
		ex.Home = "/h"
		tr.Handle(ex)
		tr.Handle(forkEv(101, s0+ms, s0+ms, 100, s0))
		gx := execEv(101, s0+ms, s0+2*ms, 0, 100, "/usr/bin/git", "/w", "git", "add", ".")
		gx.Home = "/h"
		tr.Handle(gx)
		p := tr.procs[key(101, s0+ms)]
		p.sess.llmSeen = c.llmSeen
		if c.tool {
			p.tool = &openTool{callID: "call_1", name: "bash"}
		}
		tr.Handle(openEv(101, s0+ms, s0+3*ms, 0, "/h/.agent/snapshot/HEAD", 0, 3))
		if got := tr.Stats().AgentStateDropped == 1; got != c.wantDropped {
			t.Errorf("%s: dropped %v, want %v", c.name, got, c.wantDropped)
		}
	}
}

// The agent's own directory listings are no records; a tool's, and a
// listing of a directory that holds sensitive files, are.
func TestAgentOwnListings(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) {
		c.AgentState = map[string][]string{"test-agent": {"~/.agent/**"}}
	})
	tr.m = &identityRecorder{recorder: newRecorder(), ids: map[kevent.FileID]string{}}
	const s0 = 500 * sec
	ex := execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent")
	ex.Home = "/home/u"
	tr.Handle(ex)
	dir := uint32(unix.O_RDONLY | unix.O_DIRECTORY)
	tr.Handle(openEv(100, s0, s0+1*ms, 0, "/w/.git/objects/ab", dir, 3))
	tr.Handle(openEv(100, s0, s0+2*ms, 0, "/home/u/.ssh", dir, 3))
	tr.Handle(openEv(100, s0, s0+3*ms, 0, "/w/.git/HEAD", unix.O_RDONLY, 3))
	tr.Handle(forkEv(102, s0+5*ms, s0+5*ms, 100, s0))
	tr.Handle(execEv(102, s0+5*ms, s0+6*ms, 0, 100, "/usr/bin/ls", "/w", "ls", "/w"))
	tr.Handle(openEv(102, s0+5*ms, s0+7*ms, 0, "/w", dir, 3))
	ld, _ := tr.Flush(wall(s0 + 10*sec))
	var opens []string
	for _, l := range flatLogs(t, ld) {
		if l.attrs[semconv.EventName] == semconv.EventFileOpen {
			opens = append(opens, l.attrs[semconv.FilePath].(string))
		}
	}
	if !slices.Equal(opens, []string{"/home/u/.ssh", "/w/.git/HEAD", "/w"}) {
		t.Fatalf("opens %v", opens)
	}
}
