package kernel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// opener is a session process that opens path n times as fast as python
// can, each open a record (the path is not noise).
const opener = `
import os, sys
p, n = sys.argv[1], int(sys.argv[2])
for _ in range(n):
    os.close(os.open(p, os.O_RDONLY))
`

// countOpens reads records while cmd runs and after, until want opens of
// path were read or the ring stays quiet for a second after cmd exits.
func countOpens(t *testing.T, tr *Tracer, cmd *exec.Cmd, path string, want int) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var (
		rec    ringbuf.Record
		got    int
		exited bool
		quiet  time.Time
	)
	for got < want {
		err := tr.Read(&rec, time.Now().Add(100*time.Millisecond))
		select {
		case err := <-done:
			require.NoError(t, err)
			exited, quiet = true, time.Now()
		default:
		}
		if errors.Is(err, ErrTimeout) {
			if exited && time.Since(quiet) > time.Second {
				break
			}
			continue
		}
		require.NoError(t, err)
		if exited {
			quiet = time.Now()
		}
		ev, err := kevent.Decode(rec.RawSample)
		require.NoError(t, err)
		if o, ok := ev.(*kevent.Open); ok && o.Path == path {
			got++
		}
	}
	if !exited {
		require.NoError(t, <-done)
	}
	return got
}

// A session opening 300,000 files as fast as it can delivers every record:
// the reader is woken in batches, and the ring has room for the burst.
func TestKernelOpenBurstDeliversAll(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-burst"
	const n = 300_000
	o := testOptions(agent)
	o.RingBufferBytes = 8 << 20 // the receiver's default
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	f := filepath.Join(t.TempDir(), "burst.txt")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	cmd := exec.Command(testenv.AgentExecutable(t, "/usr/bin/python3", agent), "-c", opener, f, strconv.Itoa(n))
	require.NoError(t, cmd.Start())
	start := time.Now()
	got := countOpens(t, tr, cmd, f, n)
	c, err := tr.Counters()
	require.NoError(t, err)
	t.Logf("%d of %d opens delivered in %v; drops per kind %v", got, n, time.Since(start), c.Drops)
	require.Equal(t, n, got, "every open delivered")
	require.Zero(t, c.Drops[kevent.KindOpen], "no open dropped")
}

// Forced with the smallest ring and a reader that waits, drops happen and
// are counted for the kind that lost them: what was read plus what was
// counted is what the session did.
func TestKernelOpenDropsCountedPerKind(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-drops"
	const n = 20_000
	o := testOptions(agent)
	o.RingBufferBytes = uint32(os.Getpagesize())
	tr, err := Open(o, zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	f := filepath.Join(t.TempDir(), "drops.txt")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	// The reader starts after the session is done: the ring overflows.
	out, err := exec.Command(testenv.AgentExecutable(t, "/usr/bin/python3", agent), "-c", opener, f, strconv.Itoa(n)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	idle := exec.Command("true")
	require.NoError(t, idle.Start())
	got := countOpens(t, tr, idle, f, n)
	c, err := tr.Counters()
	require.NoError(t, err)
	t.Logf("%d read, drops per kind %v", got, c.Drops)
	require.Positive(t, c.Drops[kevent.KindOpen], "opens dropped and counted as opens")
	require.Zero(t, c.Drops[kevent.KindConnect], "no other kind charged")
	require.GreaterOrEqual(t, uint64(got)+c.Drops[kevent.KindOpen], uint64(n), "every open read or counted")
}

// Opens in a known noise directory are dropped without a walk; a rename
// anywhere on the host forgets the directories, so a noise directory moved
// to a name that is not noise is reported from the next open on.
func TestKernelNoiseDirForgottenOnRename(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-kt-noisedir"
	tr, err := Open(testOptions(agent), zaptest.NewLogger(t))
	require.NoError(t, err)
	defer tr.Close()
	base := t.TempDir()
	pkg := filepath.Join(base, "node_modules", "pkg")
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "index.js"), []byte("x"), 0o644))
	py := testenv.AgentExecutable(t, "/usr/bin/python3", agent)
	before, err := tr.Counters()
	require.NoError(t, err)
	out, err := exec.Command(py, "-c", opener, filepath.Join(pkg, "index.js"), "50").CombinedOutput()
	require.NoError(t, err, "%s", out)
	after, err := tr.Counters()
	require.NoError(t, err)
	require.GreaterOrEqual(t, after.NoiseDirHits-before.NoiseDirHits, uint64(49), "all but the first open are cache hits")

	// Moved by a process outside every session (the test itself).
	moved := filepath.Join(base, "stolen")
	require.NoError(t, os.Rename(filepath.Join(base, "node_modules"), moved))
	path := filepath.Join(moved, "pkg", "index.js")
	cmd := exec.Command(py, "-c", opener, path, "3")
	require.NoError(t, cmd.Start())
	require.Equal(t, 3, countOpens(t, tr, cmd, path, 3), "the moved directory is no longer noise")
}
