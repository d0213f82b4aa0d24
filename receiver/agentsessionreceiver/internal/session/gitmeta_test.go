package session

import (
	"slices"
	"syscall"
	"testing"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Git's reads of its repository, of a --git-dir it was given and of its
// config are dropped; its writes, the work tree it reads, another
// program's read of .git/config and a "git" outside the packaged paths
// are reported; with the option off everything is.
func TestGitMetadataOpens(t *testing.T) {
	for _, on := range []bool{true, false} {
		tr, _ := newTestTracker(t, func(c *Config) { c.GitMetadata = on })
		const s0 = 500 * sec
		tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent"))
		tr.Handle(forkEv(101, s0+ms, s0+ms, 100, s0))
		ex := execEv(101, s0+ms, s0+2*ms, 0, 100, "/usr/bin/git", "/w", "git", "--git-dir", "../snap", "add", ".")
		ex.Home = "/home/u"
		tr.Handle(ex)
		for i, p := range []struct {
			path  string
			flags uint32
		}{
			{"/w/.git/HEAD", syscall.O_RDONLY},                               // dropped
			{"/w/.git", syscall.O_RDONLY | syscall.O_DIRECTORY},              // dropped
			{"/snap/index", syscall.O_RDONLY},                                // dropped: --git-dir
			{"/etc/gitconfig", syscall.O_RDONLY},                             // dropped
			{"/home/u/.gitconfig", syscall.O_RDONLY},                         // dropped
			{"/w/.git/hooks/pre-commit", syscall.O_WRONLY | syscall.O_CREAT}, // kept: a write
			{"/snap/config.lock", syscall.O_RDWR | syscall.O_CREAT},          // kept: a write
			{"/w/README.md", syscall.O_RDONLY},                               // kept: the work tree
			{"/w/.github/workflows/ci.yml", syscall.O_RDONLY},                // kept: not .git
		} {
			tr.Handle(openEv(101, s0+ms, s0+3*ms+uint64(i)*ms, 0, p.path, p.flags, 3))
		}
		tr.Handle(forkEv(102, s0+20*ms, s0+20*ms, 100, s0))
		tr.Handle(execEv(102, s0+20*ms, s0+21*ms, 0, 100, "/usr/bin/cat", "/w", "cat", ".git/config"))
		tr.Handle(openEv(102, s0+20*ms, s0+22*ms, 0, "/w/.git/config", syscall.O_RDONLY, 3))
		tr.Handle(forkEv(103, s0+30*ms, s0+30*ms, 100, s0))
		tr.Handle(execEv(103, s0+30*ms, s0+31*ms, 0, 100, "/tmp/x/git", "/w", "git", "status"))
		tr.Handle(openEv(103, s0+30*ms, s0+32*ms, 0, "/w/.git/HEAD", syscall.O_RDONLY, 3))
		ld, _ := tr.Flush(wall(s0 + sec))
		var opens []string
		for _, l := range flatLogs(t, ld) {
			if l.attrs[semconv.EventName] == semconv.EventFileOpen {
				opens = append(opens, l.attrs[semconv.FilePath].(string))
			}
		}
		want := []string{"/w/.git/hooks/pre-commit", "/snap/config.lock", "/w/README.md", "/w/.github/workflows/ci.yml",
			"/w/.git/config", "/w/.git/HEAD"}
		if !on {
			want = []string{"/w/.git/HEAD", "/w/.git", "/snap/index", "/etc/gitconfig", "/home/u/.gitconfig",
				"/w/.git/hooks/pre-commit", "/snap/config.lock", "/w/README.md", "/w/.github/workflows/ci.yml",
				"/w/.git/config", "/w/.git/HEAD"}
		}
		if !slices.Equal(opens, want) {
			t.Errorf("git_metadata %v: opens\n %v\nwant\n %v", on, opens, want)
		}
		if got := tr.Stats().GitMetadataDropped; on && got != 5 {
			t.Errorf("dropped %d, want 5", got)
		}
	}
}

// A clean exit is no record (the span says it); a failure and a signal are.
func TestDropCleanExits(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) { c.DropCleanExits = true })
	const s0 = 500 * sec
	tr.Handle(execEv(100, s0, s0, kevent.FlagExecMatched, 1, "/opt/aw-agent", "/w", "aw-agent"))
	for i, status := range []uint32{0, 1 << 8, uint32(syscall.SIGKILL)} {
		pid := uint32(101 + i)
		at := s0 + uint64(i+1)*10*ms
		tr.Handle(forkEv(pid, at, at, 100, s0))
		tr.Handle(execEv(pid, at, at+ms, 0, 100, "/usr/bin/true", "/w", "true"))
		tr.Handle(exitEv(pid, at, at+2*ms, status))
	}
	ld, td := tr.Flush(wall(s0 + sec))
	var exits []int64
	for _, l := range flatLogs(t, ld) {
		if l.attrs[semconv.EventName] == semconv.EventProcessExit {
			exits = append(exits, l.pid())
		}
	}
	if !slices.Equal(exits, []int64{102, 103}) {
		t.Errorf("exit records of %v, want 102 and 103", exits)
	}
	if sp := findSpan(t, flatSpans(t, td), 101, "true"); sp.attrs[semconv.ProcessExitCode] != int64(0) {
		t.Errorf("the clean exit's span: %v", sp.attrs)
	}
	if got := tr.Stats().CleanExitsDropped; got != 1 {
		t.Errorf("dropped %d, want 1", got)
	}
}
