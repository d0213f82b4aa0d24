package agentsessionreceiver

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kernel"
)

// trapCheck prints whether SSL_write in the libssl the process maps holds
// a breakpoint: a uprobe is an int3 written into the process's copy of
// the page, so the process can read its own probe.
const trapCheck = `
import ctypes
def ssl_write_trapped():
    for line in open("/proc/self/maps"):
        f = line.split()
        if len(f) >= 6 and "/libssl.so" in f[5]:
            fn = ctypes.cast(ctypes.CDLL(f[5]).SSL_write, ctypes.c_void_p).value
            return ctypes.string_at(fn, 1) == b"\xcc"
    raise SystemExit("no libssl mapped")
print("trapped" if ssl_write_trapped() else "clean", flush=True)
`

// waitTrapped makes a session client wait until its probes are in place
// (up to 5 s) before its call: the call would race the attach otherwise
// (TestKernelTLSAttachLatency measures that window).
const waitTrapped = `
import ctypes, ssl, time
fn = ctypes.cast(ctypes.CDLL("libssl.so.3").SSL_write, ctypes.c_void_p).value
end = time.monotonic() + 5
while ctypes.string_at(fn, 1) != b"\xcc" and time.monotonic() < end:
    time.sleep(0.001)
`

func libsslTarget(t *testing.T, tr *kernel.Tracer) kernel.TLSTarget {
	t.Helper()
	for _, tg := range tr.TLSTargets() {
		if strings.Contains(tg.Path, "libssl.so") && tg.Attached {
			return tg
		}
	}
	t.Fatalf("no system libssl target: %+v", tr.TLSTargets())
	return kernel.TLSTarget{}
}

// A process outside every session making real TLS calls through the
// system libssl has no breakpoint in it and adds nothing to the library's
// fire counter, and nothing of it is exported; a session process running
// the same client, right after, has the breakpoint and its call becomes a
// chat span.
func TestKernelTLSOutsideSessionNotProbed(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-tlsout"
	api := startFakeAnthropic(t)
	h := startReceiverWith(t, func(c *Config) { c.TLS.Capture = "full" }, agent)
	tr := h.r.tracer
	before := libsslTarget(t, tr)
	require.Zero(t, before.Procs, "no session process yet")

	const outsidePrompt = "a prompt from outside every session"
	outsideBody := strings.Replace(requestBody, "list the files here", outsidePrompt, 1)
	cmd := exec.Command("/usr/bin/python3", "-c", pythonClient+trapCheck, strconv.Itoa(api.port))
	cmd.Env = append(os.Environ(), "KEY="+testAPIKey, "BODY="+outsideBody, "CLIENT_DELAY=0")
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "clean", strings.TrimSpace(string(out)), "no uprobe in a process outside every session")
	api.mu.Lock()
	require.Len(t, api.seen, 1, "the outside client really made its call")
	api.mu.Unlock()
	after := libsslTarget(t, tr)
	require.Equal(t, before.Fires, after.Fires, "no probe hit from a process outside every session")
	require.Zero(t, after.Procs)

	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	cmd = exec.Command(bin, "-c", `"$@"`, agent, "/usr/bin/python3", "-c", waitTrapped+pythonClient+trapCheck, strconv.Itoa(api.port))
	cmd.Env = append(os.Environ(), "KEY="+testAPIKey, "BODY="+requestBody, "CLIENT_DELAY=0")
	out, err = cmd.Output()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "trapped", strings.TrimSpace(string(out)), "the session's python has the uprobe")
	root := h.waitRoot(t, agent)
	require.Eventually(t, func() bool {
		for _, sp := range h.spans() {
			if sp.TraceID() == root.TraceID() && sp.Name() == "chat claude-sonnet-4-5" {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "the session's call is captured")
	inside := libsslTarget(t, tr)
	require.Greater(t, inside.Fires, after.Fires, "the session process's calls hit the probes")
	t.Logf("libssl fires: %d before, %d after the outside client, %d after the session's", before.Fires, after.Fires, inside.Fires)
	require.NotContains(t, string(h.exported(t)), outsidePrompt, "nothing of the outside process exported")
}

// Per-process probes are closed when the process exits: after a session
// whose python forks a child that makes the call (the child has probes of
// its own: they are not inherited across fork), no process holds probes
// and every perf event the receiver opened for them is closed.
func TestKernelTLSProbesReleasedAtExit(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-tlsrel"
	api := startFakeAnthropic(t)
	h := startReceiverWith(t, func(c *Config) { c.TLS.Capture = "full" }, agent)
	tr := h.r.tracer
	basePerf := perfEventFDs(t)

	// The child calls without exec: only the fork's attach probes it (the
	// periodic pass comes every 2 s; the call is 300 ms after the fork).
	const forking = `
import os, ssl, sys, time
pid = os.fork()
if pid == 0:
    time.sleep(0.3)
    exec(os.environ["CLIENT"])
    os._exit(0)
print(pid, flush=True)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	cmd := exec.Command(bin, "-c", `"$@"`, agent, "/usr/bin/python3", "-c", forking, strconv.Itoa(api.port))
	cmd.Env = append(os.Environ(), "KEY="+testAPIKey, "BODY="+requestBody, "CLIENT="+pythonClient, "CLIENT_DELAY=0")
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	child, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err, "%s", out)
	h.waitRoot(t, agent)

	var req *logRec
	require.Eventually(t, func() bool {
		for _, r := range h.records() {
			if str(r.attrs, semconv.EventName) == semconv.EventLLMRequest {
				c := r
				req = &c
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "the forked child's call is captured")
	require.Equal(t, int64(child), mustInt(req.attrs, semconv.ProcessPID), "made by the forked child")

	require.Eventually(t, func() bool {
		s := tr.TLSProcs()
		return s.Live == 0 && s.Closing == 0
	}, 20*time.Second, 50*time.Millisecond, "probes of exited processes released: %+v", tr.TLSProcs())
	s := tr.TLSProcs()
	t.Logf("per-process probes: %+v", s)
	require.Equal(t, uint64(2), s.Attached, "the session's process (bash, then python in its place) and the forked child")
	require.Equal(t, s.Attached, s.Released)
	require.Zero(t, s.OverLimit)
	for _, tg := range tr.TLSTargets() {
		require.Zero(t, tg.Procs, "%s still probed in a process", tg.Path)
	}
	require.Equal(t, basePerf, perfEventFDs(t), "every per-process perf event closed")
}

// How long after its exec a session process has its probes: a session's
// first process (nothing probed it before its exec) waits for the exec
// to be reported and the attach; a child forked in a session was probed at
// its fork and keeps the probes across its exec. Calls before the probe is
// in place are missed; the figures are logged.
func TestKernelTLSAttachLatency(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-tlslat"
	startReceiverWith(t, func(c *Config) { c.TLS.Capture = "metadata" }, agent)
	// Prints when it started (CLOCK_BOOTTIME ns), when SSL_write first held
	// the breakpoint, and whether it did at the first look.
	const spin = `
import ctypes, sys, time
now = lambda: time.clock_gettime_ns(time.CLOCK_BOOTTIME)
t0 = now()
fn = ctypes.cast(ctypes.CDLL("libssl.so.3").SSL_write, ctypes.c_void_p).value
trapped = lambda: ctypes.string_at(fn, 1) == b"\xcc"
first = trapped()
while not trapped():
    if now() - t0 > 5e9:
        sys.exit("no probe 5 s after start")
    time.sleep(0.0002)
print(t0, now(), int(first))
`
	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	bash := testenv.AgentExecutable(t, "/bin/bash", agent)
	measure := func(argv ...string) (startup, probed time.Duration, first bool) {
		var ts unix.Timespec
		require.NoError(t, unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts))
		before := ts.Nano()
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		require.NoError(t, err, "%s", out)
		f := strings.Fields(string(out))
		require.Len(t, f, 3, "%s", out)
		t0, _ := strconv.ParseInt(f[0], 10, 64)
		t1, _ := strconv.ParseInt(f[1], 10, 64)
		return time.Duration(t0 - before), time.Duration(t1 - before), f[2] == "1"
	}
	const runs = 5
	var roots []time.Duration
	for range runs {
		startup, probed, first := measure(py, "-c", spin)
		t.Logf("session's first process: python at its first line %v after the exec, probed %v after it (already at the first look: %v)", startup, probed, first)
		roots = append(roots, probed)
	}
	slices.Sort(roots)
	t.Logf("session's first process, exec to probe in place: min %v, median %v, max %v", roots[0], roots[runs/2], roots[runs-1])
	require.Less(t, roots[runs/2], 2*time.Second, "probed well within the periodic pass")

	var atFirst int
	var children []time.Duration
	for range runs {
		startup, probed, first := measure(bash, "-c", `"$@"; true`, agent, "/usr/bin/python3", "-c", spin)
		t.Logf("forked and exec'd child: python at its first line %v after bash started, probed %v (already at the first look: %v)", startup, probed, first)
		if first {
			atFirst++
		}
		children = append(children, probed)
	}
	slices.Sort(children)
	t.Logf("forked child, bash start to probe in place: min %v, median %v, max %v", children[0], children[runs/2], children[runs-1])
	require.Less(t, children[runs/2], 2*time.Second, "probed well within the periodic pass")
	t.Logf("forked children probed before their first line: %d of %d", atFirst, runs)
}

// perfEventFDs counts this process's perf event descriptors (one per
// uprobe, and the receiver's tracepoint hooks).
func perfEventFDs(t *testing.T) int {
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
