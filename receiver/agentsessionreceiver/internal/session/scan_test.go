package session

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// A real agent already running when the receiver starts: a shell copied
// under a test name, running two sleeps. The scan must find it, its
// children, and put them in one session with the right tree.
func TestScanProcReal(t *testing.T) {
	dir := t.TempDir()
	agent := testenv.AgentExecutable(t, "sh", "aw-test-agent")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(agent, "-c", sleep+" 30 & "+sleep+" 31; wait")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	root := uint32(cmd.Process.Pid)

	// Wait until both children run sleep (not the shell's fork image).
	var kids []*proctree.Proc
	deadline := time.Now().Add(10 * time.Second)
	for len(kids) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("children of %d never ran sleep", root)
		}
		time.Sleep(20 * time.Millisecond)
		snap, _ := proctree.Scan("/proc")
		kids = kids[:0]
		for _, p := range snap.Procs {
			if p.PPID == root && len(p.Args) == 2 && p.Args[0] == sleep {
				kids = append(kids, p)
			}
		}
	}
	slices.SortFunc(kids, func(a, b *proctree.Proc) int { return int(a.PID) - int(b.PID) })

	set, err := matcher.New([]matcher.Spec{{Name: "scan-test", Executables: []string{"aw-test-agent"}}}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	tr, err := New(Config{Matcher: set, Backend: BackendTracepoint, ReapInterval: -1}, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.ScanProc("/proc"); err != nil {
		t.Logf("scan: %v", err) // partial errors are fine; the tree must be complete
	}
	rootStat, err := proctree.ReadStat("/proc", root)
	if err != nil {
		t.Fatal(err)
	}
	rootKey := proctree.Key{PID: root, Start: rootStat.Start}
	bootID, err := ReadBootID("/proc")
	if err != nil {
		t.Fatal(err)
	}
	wantID := SessionID(bootID, rootKey)
	id, rootImgSpan, ok := tr.Lookup(root, rootKey.StartNS())
	if !ok || id != wantID {
		t.Fatalf("root session %v %v, want %v", id, ok, wantID)
	}
	for _, k := range kids {
		kid, _, ok := tr.Lookup(k.PID, k.StartNS())
		if !ok || kid != id {
			t.Errorf("child %d: session %v %v", k.PID, kid, ok)
		}
	}
	calls := rec.take()
	for _, pid := range []uint32{root, kids[0].PID, kids[1].PID} {
		if !slices.Contains(calls, "track "+itoa(pid)+" pending=false") {
			t.Errorf("pid %d not tracked in the kernel: %v", pid, calls)
		}
	}

	ld, _ := tr.Flush(time.Now())
	var mine []logRec
	for _, l := range flatLogs(t, ld) {
		if l.trace == id {
			mine = append(mine, l)
		}
	}
	want := []string{"session.start:" + itoa(root), "process.exec:" + itoa(root),
		"process.exec:" + itoa(kids[0].PID), "process.exec:" + itoa(kids[1].PID)}
	got := events(mine)
	slices.Sort(got[2:])
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if mine[0].resource[semconv.ServiceName] != "scan-test" || mine[0].attrs[semconv.GenAIAgentName] != "scan-test" {
		t.Errorf("session start %v %v", mine[0].resource, mine[0].attrs)
	}
	rootExec := mine[1].attrs
	if rootExec[semconv.ProcessExecutablePath] != agent || rootExec[semconv.ProcessWorkingDirectory] != dir ||
		rootExec[semconv.ProcessParentPID] != int64(os.Getpid()) ||
		!slices.Equal(strs(rootExec[semconv.ProcessCommandArgs].([]any)), []string{agent, "-c", sleep + " 30 & " + sleep + " 31; wait"}) {
		t.Errorf("root exec %v", rootExec)
	}
	for _, l := range mine[2:] {
		if l.attrs[semconv.ProcessParentPID] != int64(root) || l.span == rootImgSpan {
			t.Errorf("child exec %v", l.attrs)
		}
	}

	// End them: the spans must follow the tree, under the session's root.
	now := BootNow()
	for _, k := range kids {
		tr.Handle(&kevent.Exit{Header: kevent.Header{Kind: kevent.KindExit, PID: k.PID, Time: now, Start: k.StartNS()}, Status: uint32(unix.SIGTERM)})
	}
	tr.Handle(&kevent.Exit{Header: kevent.Header{Kind: kevent.KindExit, PID: root, Time: now, Start: rootKey.StartNS()}})
	_, td := tr.Flush(time.Now().Add(3 * time.Second))
	var spans []spanRec
	for _, s := range flatSpans(t, td) {
		if s.trace == id {
			spans = append(spans, s)
		}
	}
	agentSpan := findSpan(t, spans, int64(root), "aw-test-agent")
	if agentSpan.parent != rootSpanID(id) || agentSpan.id != rootImgSpan {
		t.Errorf("agent span parent %v", agentSpan.parent)
	}
	for _, k := range kids {
		s := findSpan(t, spans, int64(k.PID), "sleep")
		if s.parent != agentSpan.id || s.attrs[semconv.ErrorType] != "SIGTERM" {
			t.Errorf("sleep %d: parent %v attrs %v", k.PID, s.parent, s.attrs)
		}
	}
	if findSpan(t, spans, int64(root), "invoke_agent scan-test").parent.IsEmpty() != true {
		t.Error("root span has a parent")
	}
}

func itoa(pid uint32) string { return strconv.FormatUint(uint64(pid), 10) }
