package kernel

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// tlsClientScript makes three TLS round trips through python's ssl module
// (the system libssl) to 127.0.0.1:argv[1], each line carrying argv[2],
// then says whether SSL_write in the libssl it maps holds a breakpoint
// (int3, which is what a uprobe writes there). With a third argument it
// waits for a line on stdin first (the test attaching the probes).
const tlsClientScript = `
import ctypes, socket, ssl, sys
def libssl():
    for line in open("/proc/self/maps"):
        f = line.split()
        if len(f) >= 6 and "/libssl.so" in f[5]:
            return f[5]
fn = ctypes.cast(ctypes.CDLL(libssl()).SSL_write, ctypes.c_void_p).value
if len(sys.argv) > 3:
    print("ready", flush=True)
    sys.stdin.readline()
ctx = ssl._create_unverified_context()
for i in range(3):
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])))) as s:
        s.sendall(b"%s %d\n" % (sys.argv[2].encode(), i))
        assert s.recv(100) == b"ok\n"
print("trapped" if ctypes.string_at(fn, 1) == b"\xcc" else "clean", flush=True)
`

// startTLSEcho serves TLS on a loopback port: each connection gets "ok\n"
// for its first line.
func startTLSEcho(t *testing.T) int {
	t.Helper()
	ca := testenv.NewTestCA(t, "127.0.0.1")
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", ca.Server)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					io.WriteString(c, "ok\n")
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// perfEvents counts this process's perf event descriptors: one per uprobe.
func perfEvents(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[perf_event]" {
			n++
		}
	}
	return n
}

func systemLibssl(t *testing.T, tr *Tracer) TLSTarget {
	t.Helper()
	for _, tg := range tr.TLSTargets() {
		if strings.Contains(tg.Path, "libssl.so") && tg.Attached {
			return tg
		}
	}
	t.Fatalf("no system libssl target: %+v", tr.TLSTargets())
	return TLSTarget{}
}

func targetNamed(t *testing.T, tr *Tracer, path string) TLSTarget {
	t.Helper()
	for _, tg := range tr.TLSTargets() {
		if tg.Path == path {
			return tg
		}
	}
	t.Fatalf("no target %s", path)
	return TLSTarget{}
}

// The TLS probes are per session process. A process outside every session
// making real TLS calls through the system libssl has no breakpoint in
// it and adds nothing to the library's fire counter; a session process
// gets its probes from DiscoverTLS (not for a pid whose start time names
// another process), traps, and its plaintext is captured; at its exit
// ReleaseTLS closes every perf event it held.
func TestKernelTLSProbesPerProcess(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-tlsproc"
	tr, err := Open(intentOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	port := strconv.Itoa(startTLSEcho(t))
	lib := systemLibssl(t, tr)
	require.Zero(t, lib.Procs, "probed in no process before a session process is seen")
	basePerf := perfEvents(t)

	// Outside every session.
	out, err := exec.Command("/usr/bin/python3", "-c", tlsClientScript, port, "outside").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "clean", strings.TrimSpace(string(out)), "no breakpoint in a process outside every session")
	require.Equal(t, lib.Fires, systemLibssl(t, tr).Fires, "no probe hit from a process outside every session")
	require.Equal(t, basePerf, perfEvents(t))

	// A session process: a copy of python under the agent's name.
	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	cmd := exec.Command(py, "-c", tlsClientScript, port, "inside", "wait")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan())
	require.Equal(t, "ready", lines.Text())
	pid := uint32(cmd.Process.Pid)
	var start uint64
	collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		if e, ok := ev.(*kevent.Exec); ok && e.PID == pid {
			start = e.Start
		}
		return start != 0
	})

	tr.DiscoverTLS(pid, start+uint64(time.Second))
	require.Zero(t, tr.TLSProcs().Live, "a start time of another process: nothing attached")

	// The executable is examined (python has no SSL of its own) the first
	// time: discovery is per file, attaching per process.
	tr.examine(py, py, "executable")
	began := time.Now()
	tr.DiscoverTLS(pid, start)
	took := time.Since(began)
	st := tr.TLSProcs()
	require.Equal(t, 1, st.Live)
	require.Equal(t, uint64(1), st.Attached)
	lib = systemLibssl(t, tr)
	require.Equal(t, 1, lib.Procs)
	var want int
	for _, tg := range tr.TLSTargets() {
		want += tg.Procs * 2 * len(tg.Symbols) // entry and return per function
	}
	require.Equal(t, want, perfEvents(t)-basePerf, "one perf event per probe, no more")
	t.Logf("DiscoverTLS of a python process: %v for %d probes", took, want)
	tr.DiscoverTLS(pid, start)
	require.Equal(t, want, perfEvents(t)-basePerf, "a second pass adds nothing")

	_, err = io.WriteString(stdin, "go\n")
	require.NoError(t, err)
	require.True(t, lines.Scan())
	require.Equal(t, "trapped", lines.Text(), "the session process has the breakpoint")
	var writes int
	var exited bool
	collect(t, tr, 15*time.Second, func(ev kevent.Event) bool {
		switch e := ev.(type) {
		case *kevent.TLS:
			if e.PID == pid && e.Dir == kevent.TLSWrite && strings.HasPrefix(string(e.Data), "inside ") {
				writes++
			}
			require.NotContains(t, string(e.Data), "outside", "nothing of the outside process")
		case *kevent.Exit:
			exited = exited || e.PID == pid
		}
		return exited
	})
	require.NoError(t, cmd.Wait())
	require.Equal(t, 3, writes, "every SSL write of the session process captured")
	fires := systemLibssl(t, tr).Fires
	require.GreaterOrEqual(t, fires-lib.Fires, uint64(6), "three writes and three reads at least")

	began = time.Now()
	tr.ReleaseTLS(pid, start)
	st = tr.TLSProcs()
	require.Zero(t, st.Live)
	require.Equal(t, uint64(1), st.Released)
	require.Zero(t, systemLibssl(t, tr).Procs)
	require.Eventually(t, func() bool { return tr.TLSProcs().Closing == 0 }, 10*time.Second, 10*time.Millisecond)
	t.Logf("ReleaseTLS: %d probes closed in %v", want, time.Since(began))
	require.Equal(t, basePerf, perfEvents(t), "every perf event of the process closed")

	// And again from outside, after the session process had the library
	// probed: still nothing.
	out, err = exec.Command("/usr/bin/python3", "-c", tlsClientScript, port, "outside").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "clean", strings.TrimSpace(string(out)))
	require.Equal(t, fires, systemLibssl(t, tr).Fires)
}

// A session process whose exit was never handled (the queue was full) has
// its probes closed by the sweep once it is gone; the executable's own
// target (node exports SSL_*) is attached beside the system libssl, and
// dropped when the process execs something else.
func TestKernelTLSSweepAndExec(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-tlssweep"
	tr, err := Open(intentOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	basePerf := perfEvents(t)
	node, err := exec.LookPath("node")
	require.NoError(t, err)
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	// bash, then (once the test has attached) node in its place.
	cmd := exec.Command(bin, "-c", `read; exec "$0" -e 'setTimeout(() => {}, 1e6); require("fs").readSync(0, Buffer.alloc(1))'`, node)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	pid := uint32(cmd.Process.Pid)
	var start uint64
	collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		if e, ok := ev.(*kevent.Exec); ok && e.PID == pid {
			start = e.Start
		}
		return start != 0
	})
	tr.DiscoverTLS(pid, start)
	require.Equal(t, 1, tr.TLSProcs().Live)
	require.Equal(t, 1, systemLibssl(t, tr).Procs, "bash has no SSL of its own, the system libssl is probed for a later load")

	_, err = io.WriteString(stdin, "\n")
	require.NoError(t, err)
	collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		e, ok := ev.(*kevent.Exec)
		return ok && e.PID == pid && strings.HasSuffix(e.Exe, "/node")
	})
	tr.DiscoverTLS(pid, start)
	require.Equal(t, 1, targetNamed(t, tr, node).Procs, "node's executable probed in it")
	require.Equal(t, 1, systemLibssl(t, tr).Procs)
	require.Equal(t, 1, tr.TLSProcs().Live)

	require.Zero(t, tr.SweepTLS(), "a live process keeps its probes")
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	require.Equal(t, 1, tr.SweepTLS())
	require.Zero(t, tr.TLSProcs().Live)
	require.Zero(t, targetNamed(t, tr, node).Procs)
	waitPerfEvents(t, basePerf, "the swept process's perf events closed")
}

// waitPerfEvents waits for the closer: closing a uprobe takes the kernel
// about 100 ms.
func waitPerfEvents(t *testing.T, want int, msg string) {
	t.Helper()
	require.Eventually(t, func() bool { return perfEvents(t) == want }, 10*time.Second, 20*time.Millisecond, msg)
}
