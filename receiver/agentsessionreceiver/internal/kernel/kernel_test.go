package kernel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func testOptions(agent string) Options {
	return Options{
		Hooks:           BackendAuto,
		RingBufferBytes: 1 << 20,
		MaxProcesses:    1024,
		MaxArgsBytes:    4096,
		ExecNames:       map[string]Action{agent: ActionStart},
		NoisePrefixes:   []string{"/usr/lib"},
		NoiseDirNames:   []string{"node_modules"},
	}
}

// collect reads records until stop returns true or the timeout passes.
func collect(t *testing.T, tr *Tracer, timeout time.Duration, stop func(kevent.Event) bool) (evs []kevent.Event, raw int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var rec ringbuf.Record
	for time.Now().Before(deadline) {
		err := tr.Read(&rec, time.Now().Add(200*time.Millisecond))
		if errors.Is(err, ErrTimeout) {
			continue
		}
		require.NoError(t, err)
		raw++
		ev, err := kevent.Decode(rec.RawSample)
		require.NoError(t, err, "kernel record must decode")
		evs = append(evs, ev)
		if stop(ev) {
			return evs, raw
		}
	}
	t.Fatalf("timed out after %d records", raw)
	return nil, 0
}

func TestKernelPipeline(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-agent"
	tr, err := Open(testOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	backend, reason := tr.Backend()
	require.Equal(t, BackendTracepoint, backend, "LSM does not load on this host; auto must fall back")
	require.NotEmpty(t, reason)

	port := testenv.TCPSink(t)

	work := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(work, "sub", "node_modules", "pkg"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "sub", "secret.txt"), []byte("x"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(work, "sub", "node_modules", "pkg", "index.js"), []byte("x"), 0o600))

	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	script := strings.Join([]string{
		"cat sub/secret.txt >/dev/null",
		"cat /usr/lib/os-release >/dev/null 2>&1",
		"cat sub/node_modules/pkg/index.js >/dev/null",
		"cat sub/node_modules/missing.js >/dev/null 2>&1",
		"cat /usr/lib/../lib/missing-dotdot >/dev/null 2>&1",
		"exec 3<>/dev/tcp/127.0.0.1/" + strconv.Itoa(port),
		"exit 7",
	}, "; ")
	cmd := exec.Command(bin, "-c", script, "arg with space")
	cmd.Dir = work
	outsider := exec.Command("cat", filepath.Join(work, "sub", "secret.txt"))
	require.NoError(t, outsider.Run(), "a process outside every session")
	require.NoError(t, cmd.Start())
	root := uint32(cmd.Process.Pid)
	_ = cmd.Wait()

	evs, _ := collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		x, ok := ev.(*kevent.Exit)
		return ok && x.PID == root
	})

	var (
		sawExec, sawSecret, sawConnect, sawDotDot bool
		children                                  = map[uint32]bool{root: true}
	)
	for _, ev := range evs {
		h := ev.Hdr()
		require.True(t, children[h.PID] || ev.(interface{ Hdr() *kevent.Header }).Hdr().Kind == kevent.KindFork,
			"event from pid %d outside the session: %#v", h.PID, ev)
		switch e := ev.(type) {
		case *kevent.Exec:
			if e.PID == root {
				sawExec = true
				require.NotZero(t, e.Flags&kevent.FlagExecMatched)
				require.Equal(t, []string{bin, "-c", script, "arg with space"}, e.Args)
				require.Equal(t, bin, e.Exe)
				require.Equal(t, work, e.Cwd)
			}
		case *kevent.Fork:
			require.True(t, children[e.PPID], "fork from outside")
			children[e.PID] = true
		case *kevent.Open:
			require.NotContains(t, e.Path, "node_modules", "noise dir must be dropped in the kernel")
			if strings.HasPrefix(e.Path, "/usr/lib/") {
				// ".." could hide /etc/shadow behind a noise prefix: the
				// kernel passes such raw paths on for userspace to clean.
				require.NotZero(t, e.Flags&kevent.FlagPathDotDot, "noise prefix reached userspace: %s flags=%#x ret=%d", e.Path, e.Flags, e.Ret)
				require.NotZero(t, e.Flags&kevent.FlagPathRaw)
				sawDotDot = true
			}
			if e.Path == filepath.Join(work, "sub", "secret.txt") {
				sawSecret = true
				require.GreaterOrEqual(t, e.Ret, int32(0))
				require.Zero(t, e.Flags&kevent.FlagPathRaw, "a successful open is resolved by the kernel")
			}
		case *kevent.Connect:
			if e.Port == uint16(port) {
				sawConnect = true
				require.Equal(t, "127.0.0.1", e.Addr.String())
				require.Equal(t, uint16(1), e.SockType)
				require.Zero(t, e.Ret)
			}
		case *kevent.Exit:
			if e.PID == root {
				code, sig := e.Code()
				require.Equal(t, 7, code)
				require.Zero(t, sig)
			}
		}
	}
	require.True(t, sawExec, "exec of the agent")
	require.True(t, sawSecret, "relative open resolved to an absolute path")
	require.True(t, sawConnect, "connect to the listener")
	require.True(t, sawDotDot, "a raw path with .. is not trusted to the noise filter")

	c, err := tr.Counters()
	require.NoError(t, err)
	require.NotZero(t, c.NoiseDropped, "noise opens are counted in the kernel")
	for k, d := range c.Drops {
		require.Zero(t, d, "ring buffer drops for kind %d", k)
	}
}

// Paths a decoder must survive: deeper than the kernel walks, not UTF-8,
// and a file deleted while open.
func TestKernelOddPaths(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-odd"
	tr, err := Open(testOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	work := t.TempDir()
	deep := work
	for i := 0; i < 110; i++ {
		deep = filepath.Join(deep, "d")
	}
	require.NoError(t, os.MkdirAll(deep, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(deep, "f"), []byte("x"), 0o600))
	odd := filepath.Join(work, "bad-\xff\xfe-name")
	require.NoError(t, os.WriteFile(odd, []byte("x"), 0o600))

	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	script := `cat "$1" >/dev/null; cat "$2" >/dev/null; exec 4<"$2"; rm -f "$2"; cat /proc/self/fd/4 >/dev/null 2>&1; exit 0`
	cmd := exec.Command(bin, "-c", script, agent, filepath.Join(deep, "f"), odd)
	require.NoError(t, cmd.Start())
	root := uint32(cmd.Process.Pid)
	require.NoError(t, cmd.Wait())

	evs, _ := collect(t, tr, 10*time.Second, func(ev kevent.Event) bool {
		x, ok := ev.(*kevent.Exit)
		return ok && x.PID == root
	})
	var sawDeep, sawOdd bool
	for _, ev := range evs {
		o, ok := ev.(*kevent.Open)
		if !ok {
			continue
		}
		if strings.HasSuffix(o.Path, "/d/d/d/f") && o.Ret >= 0 {
			sawDeep = true
			require.NotZero(t, o.Flags&kevent.FlagPathTruncated, "a walk cut short must say so")
		}
		if o.Path == odd {
			sawOdd = true
		}
	}
	require.True(t, sawDeep, "deep path open")
	require.True(t, sawOdd, "non-UTF-8 path kept byte for byte")
}

// A full ring buffer loses events, but never silently: the kernel counts
// every failed output per kind.
func TestKernelRingBufferFullIsCounted(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-flood"
	opts := testOptions(agent)
	opts.RingBufferBytes = uint32(os.Getpagesize())
	tr, err := Open(opts, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()

	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "f"), []byte("x"), 0o600))
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	// Nobody reads the ring buffer meanwhile: 500 opens cannot fit in a page.
	cmd := exec.Command(bin, "-c", `for i in $(seq 500); do exec 3<f; exec 3<&-; done`)
	cmd.Dir = work
	require.NoError(t, cmd.Run())

	c, err := tr.Counters()
	require.NoError(t, err)
	require.Greater(t, c.Drops[kevent.KindOpen], uint64(100), "open events lost to a full ring buffer must be counted")

	// What did fit is still readable and intact.
	var rec ringbuf.Record
	require.NoError(t, tr.Read(&rec, time.Now().Add(time.Second)))
	_, err = kevent.Decode(rec.RawSample)
	require.NoError(t, err)
}

// A process started in the root directory reports "/" as its cwd (the
// dentry walk yields an empty string for the root on its own).
func TestKernelExecCwdRoot(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-cwdroot"
	tr, err := Open(testOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	require.NoError(t, exec.Command(bin, "-c", "cd / && /bin/true; cd /tmp && /bin/true").Run())
	var cwds []string
	collect(t, tr, 5*time.Second, func(ev kevent.Event) bool {
		if e, ok := ev.(*kevent.Exec); ok && e.Exe == "/usr/bin/true" {
			cwds = append(cwds, e.Cwd)
		}
		return len(cwds) == 2
	})
	require.Equal(t, []string{"/", "/tmp"}, cwds)
}
