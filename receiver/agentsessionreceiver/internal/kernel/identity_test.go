package kernel

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// TestKernelIdentityAndWhatRan: a sensitive file reached under another
// name carries the identity flag, other processes' environ is kept from
// the /proc noise, a memfd exec says so, a long argv keeps its tail, a
// pipe joins two processes, and changes of files are records.
func TestKernelIdentityAndWhatRan(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is needed to exec a memfd")
	}
	const agent = "aw-kt-ident"
	home := t.TempDir()
	key := filepath.Join(home, ".ssh", "id_ed25519")
	require.NoError(t, os.MkdirAll(filepath.Dir(key), 0o700))
	require.NoError(t, os.WriteFile(key, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600))
	o := testOptions(agent)
	o.NoisePrefixes = append(o.NoisePrefixes, "/proc")
	o.SensitiveGlobs = []string{"~/.ssh/*"}
	o.Homes = []string{home}
	o.MaxArgsBytes = 512
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(key, &st))
	keyID := kevent.FileIDOfStat(st.Ino, st.Dev)
	canon, ok := tr.Canonical(keyID, "", key)
	require.True(t, ok, "the start scan marks the key")
	require.Equal(t, key, canon)

	scratch := t.TempDir()
	other := exec.Command("sleep", "30")
	other.Env = []string{"AWS_SECRET_ACCESS_KEY=x"}
	require.NoError(t, other.Start())
	defer other.Process.Kill()
	pad := strings.Repeat("x ", 400)
	script := strings.Join([]string{
		"ln " + key + " " + scratch + "/notes.txt",
		"cat " + scratch + "/notes.txt >/dev/null",
		"mv " + scratch + "/notes.txt " + scratch + "/moved",
		"chmod 755 " + scratch + "/moved",
		"rm -f " + scratch + "/moved",
		"cat /proc/" + strconv.Itoa(other.Process.Pid) + "/environ >/dev/null",
		"cat /proc/self/environ >/dev/null",
		"cat " + key + " | base64 >/dev/null",
		"/bin/echo " + pad + " -d @" + key + " http://tail.example >/dev/null",
		`python3 -c 'import os; f=os.memfd_create("awmem"); os.write(f, open("/bin/true","rb").read()); os.execve(f, ["true"], {})'`,
	}, "; ")
	cmd := exec.Command(testenv.AgentExecutable(t, "/bin/bash", agent), "-c", script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	root := uint32(cmd.Process.Pid)

	evs, _ := collect(t, tr, 15*time.Second, func(ev kevent.Event) bool {
		x, ok := ev.(*kevent.Exit)
		return ok && x.PID == root
	})
	var (
		linkRead, procOther, procSelf, memfd, tail bool
		pipes                                      = map[string]uint64{}
		ops                                        = map[uint16]*kevent.FileOp{}
	)
	for _, ev := range evs {
		switch e := ev.(type) {
		case *kevent.Open:
			if e.Path == scratch+"/notes.txt" && e.Ret >= 0 {
				linkRead = true
				require.NotZero(t, e.Flags&kevent.FlagIDSensitive, "the link is the key")
				require.Equal(t, keyID, e.ID)
			}
			if strings.HasSuffix(e.Path, "/environ") {
				if e.Flags&kevent.FlagProcOther != 0 {
					procOther = true
					require.Equal(t, uint32(other.Process.Pid), e.ProcTarget)
				} else {
					procSelf = true
				}
			}
		case *kevent.Exec:
			switch {
			case strings.HasPrefix(e.Exe, "/memfd:awmem"):
				memfd = true
				require.NotZero(t, e.Flags&kevent.FlagExeUnlinked)
			case len(e.Args) > 0 && e.Args[0] == "/bin/echo":
				tail = true
				require.NotZero(t, e.Flags&kevent.FlagArgsTruncated)
				require.Contains(t, e.Args, kevent.ArgsCut)
				require.Equal(t, []string{"-d", "@" + key, "http://tail.example"}, e.Args[len(e.Args)-3:], "the tail is kept")
			case filepath.Base(e.Exe) == "cat" && e.StdoutPipe != 0:
				pipes["cat"] = e.StdoutPipe
			case filepath.Base(e.Exe) == "base64":
				pipes["base64"] = e.StdinPipe
			}
		case *kevent.FileOp:
			t.Logf("fileop %+v", e)
			ops[e.Op] = e
		}
	}
	for _, h := range tr.Hooks() {
		if !h.Attached {
			t.Logf("hook %s: %v", h.Name, h.Err)
		}
	}
	cc, _ := tr.Counters()
	t.Logf("counters %+v", cc)
	require.True(t, linkRead, "the read of the hard link")
	require.True(t, procOther, "another process's environ is kept")
	require.False(t, procSelf, "/proc/self/environ stays noise")
	require.True(t, memfd, "the memfd exec names the memfd")
	require.True(t, tail, "the long argv")
	require.NotZero(t, pipes["cat"])
	require.Equal(t, pipes["cat"], pipes["base64"], "cat | base64 share a pipe")
	require.Contains(t, ops, uint16(kevent.OpLink))
	require.Equal(t, key, ops[kevent.OpLink].Path)
	require.Equal(t, scratch+"/notes.txt", ops[kevent.OpLink].Path2)
	require.Contains(t, ops, uint16(kevent.OpRename))
	require.Contains(t, ops, uint16(kevent.OpChmod))
	require.Equal(t, uint32(0o755), ops[kevent.OpChmod].Mode)
	require.NotContains(t, ops, uint16(kevent.OpUnlink), "an unlink no keep entry names is no record")
}
