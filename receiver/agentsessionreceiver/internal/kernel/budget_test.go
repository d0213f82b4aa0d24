package kernel

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func TestKeepSet(t *testing.T) {
	p, n := KeepSet([]string{"~/.aws/*", "~/.ssh/*", "**/.env*", "**/credentials*", "/etc/shadow", "*.pem"}, []string{"/root", "/home/u/"})
	require.Equal(t, []string{"/root/.aws", "/home/u/.aws", "/root/.ssh", "/home/u/.ssh", "/etc/shadow"}, p)
	require.Equal(t, []string{".env", "credentials"}, n, "a suffix glob (*.pem) cannot be a prefix key")
}

// The record budget in the kernel: each drop happens, each keep is kept.
func TestKernelOpenBudget(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-budget"
	home := filepath.Join(t.TempDir(), "h")
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	o := testOptions(agent)
	noiseFile := filepath.Join("/tmp", fmt.Sprintf("aw-kt-noise-%d", os.Getpid()))
	t.Cleanup(func() { os.Remove(noiseFile) })
	o.NoiseFiles = []string{"/etc/ld.so.cache", "/etc/nsswitch.conf", noiseFile}
	o.DropFailedOpens, o.DropPathOpens = true, true
	o.KeepPrefixes, o.KeepNames = KeepSet([]string{"~/.ssh/*", "**/.env*", "**/credentials*"}, []string{home})
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	before, err := tr.Counters()
	require.NoError(t, err)

	// python3 opens exactly what it is told, with the flags it is told.
	script := `
import os, sys
def op(p, fl):
    try: os.close(os.open(p, fl))
    except OSError: pass
h = sys.argv[1]
op("/etc/nsswitch.conf", os.O_RDONLY)          # noise file: dropped
op(sys.argv[2], os.O_WRONLY|os.O_CREAT|os.O_APPEND)  # a noise file's write: kept
op(sys.argv[2], os.O_RDONLY)                   # its read: dropped
op(h + "/.ssh/id_rsa", os.O_RDONLY)            # failed, sensitive: kept
op("/tmp/aw-budget-none/foo", os.O_RDONLY)     # failed, nothing: dropped
op("/tmp/aw-budget-none/.env.local", os.O_RDONLY)   # failed, sensitive name: kept
op("/etc/hosts", os.O_PATH)                    # O_PATH, nothing: dropped
fd = os.open(h + "/.ssh", os.O_PATH)           # O_PATH, sensitive: kept
os.close(fd)
fd = os.open("/etc/hostname", os.O_PATH)       # dropped, but its re-open is real
op("/proc/self/fd/%d" % fd, os.O_RDONLY)
op("/etc/hostname", os.O_RDONLY)               # a read: kept
`
	bin := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	cmd := exec.Command(bin, "-c", script, home, noiseFile)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	pid := uint32(cmd.Process.Pid)
	var paths []string
	var flags = map[string]uint32{}
	collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		switch e := ev.(type) {
		case *kevent.Open:
			if e.PID == pid {
				paths = append(paths, e.Path)
				flags[e.Path] = e.OpenFlags
			}
		case *kevent.Exit:
			return e.PID == pid
		}
		return false
	})
	for _, want := range []string{home + "/.ssh/id_rsa", "/tmp/aw-budget-none/.env.local", home + "/.ssh", "/etc/hostname"} {
		require.Contains(t, paths, want)
	}
	require.NotZero(t, flags[home+"/.ssh"]&unix.O_PATH, "O_PATH is reported as such")
	nf := 0
	for _, p := range paths {
		if p == noiseFile {
			nf++
		}
	}
	require.Equal(t, 1, nf, "a noise file's write is kept, its read dropped: %v", paths)
	require.NotZero(t, flags[noiseFile]&unix.O_WRONLY, "the kept open of the noise file is the write")
	for _, gone := range []string{"/etc/nsswitch.conf", "/etc/ld.so.cache", "/tmp/aw-budget-none/foo", "/etc/hosts"} {
		require.NotContains(t, paths, gone)
	}
	// /proc/self/fd/N of an O_PATH fd opens the real file, reported by its path.
	n := 0
	for _, p := range paths {
		if p == "/etc/hostname" {
			n++
		}
	}
	require.Equal(t, 2, n, "re-open through /proc/self/fd and the plain read: %v", paths)
	require.False(t, slices.ContainsFunc(paths, func(p string) bool { return filepath.Dir(p) == "/proc/self/fd" }))

	after, err := tr.Counters()
	require.NoError(t, err)
	require.Greater(t, after.NoiseFiles, before.NoiseFiles)
	require.Greater(t, after.FailedOpens, before.FailedOpens)
	require.Greater(t, after.PathOpens, before.PathOpens)
}
