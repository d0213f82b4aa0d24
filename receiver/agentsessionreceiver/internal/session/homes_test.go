package session

import (
	"os"
	"os/exec"
	"path/filepath"

	"strings"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func TestReadPasswd(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	data := "root:x:0:0:root:/root:/bin/bash\n" +
		"bad line\n" +
		"u:x:1000:1000::/home/u/:/bin/sh\n" +
		"dup:x:1000:1000::/elsewhere:/bin/sh\n" +
		"rel:x:1001:1001::relative:/bin/sh\n" +
		"big:x:99999999999:1::/x:/bin/sh\n"
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got := readPasswd(f)
	if got[0] != "/root" || got[1000] != "/home/u" || len(got) != 2 {
		t.Fatalf("homes = %v", got)
	}
}

// A process in another mount namespace with its own /etc/passwd has the
// home that file gives its uid; the host's passwd says otherwise.
func TestPasswdHomeOtherMountNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pw, []byte("root:x:0:0:root:/sandbox/root-home:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ready")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		"mount --bind "+pw+" /etc/passwd && touch "+ready+" && exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// wait for the exec of sleep (same pid as sh, as unshare execs sh)
	pid := uint32(cmd.Process.Pid)
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile("/proc/" + itoa(pid) + "/comm")
		if strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := newPasswdHomes("/proc")
	if got := h.home(pid, 0); got != "/sandbox/root-home" {
		t.Fatalf("home in the other namespace = %q", got)
	}
	if got := h.home(uint32(os.Getpid()), 0); got != "/root" {
		t.Fatalf("host home = %q", got)
	}
}

// HOME from the exec record is on the exec record, every later record of
// the image and its process span.
func TestEnvHomeOnRecordsAndSpans(t *testing.T) {
	tr, _ := newTestTracker(t, nil)
	const s0 = 1000 * sec
	e := execEv(100, s0, s0+1*ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/p", "aw-agent")
	e.Home = "/sandbox/h"
	tr.Handle(e)
	tr.Handle(openEv(100, s0, s0+2*ms, 0, "/sandbox/h/.aws/credentials", 0, 3))
	tr.Handle(exitEv(100, s0, s0+3*ms, 0))
	ld, td := tr.Flush(wall(s0 + 10*sec))
	n := 0
	for _, l := range flatLogs(t, ld) {
		if l.attrs[semconv.ProcessEnvHome] != "/sandbox/h" {
			t.Errorf("%s: %v", l.event, l.attrs)
		}
		n++
	}
	for _, s := range flatSpans(t, td) {
		if s.attrs[semconv.ProcessEnvHome] != "/sandbox/h" {
			t.Errorf("span %s: %v", s.name, s.attrs)
		}
	}
	if n < 3 {
		t.Fatalf("%d records", n)
	}
}
