//go:build vmtest

package vm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
	"github.com/agentwatch/agentwatch/internal/vmtest"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver"
	"github.com/agentwatch/agentwatch/test/overhead/internal/bench"
)

var (
	rounds = flag.Int("overhead.rounds", 4, "rounds of stopped/running pairs")
	strict = flag.Bool("overhead.strict", false, "fail when a loop outside sessions costs more than the target ratio")
	// make bench-overhead-vm builds it on the host (gcc -static) and
	// ships it here with the runner's -file
	loopPath = flag.String("overhead.loop", "/bench/loop", "the static loop program (test/overhead/loop_c.txt)")
	// what the runner gave QEMU's -icount, for the table's heading
	icount = flag.String("overhead.icount", "", "the guest's QEMU -icount (\"\": the guest clock follows the host's)")
)

// GuestIterations are the host's scaled down for TCG: each measurement
// takes 0.1–0.25 s of guest time under -icount shift=0 (about five times
// that in wall-clock time), about a second without -icount.
var GuestIterations = bench.Iterations{Open: 20000, OpenRead: 4000, RW: 40000, ForkExec: 150}

// TargetOutside is the acceptance target for the loops outside sessions
// on the LSM backend: a process outside every session pays nothing that
// can be avoided (DESIGN.md, cost principle).
const TargetOutside = 1.05

// TestVMOverhead is the bench-overhead table in the guest: the loops
// outside every session and inside one (run by a copy of bash the
// receiver's matcher picks out), with the receiver stopped (no BPF
// program loaded) and running (agent_session with hooks: lsm, the
// default config plus the bench's agent matcher, through agent_score into
// a sink, in this process), alternated round by round. There is no
// compiler in the guest: the table has no workload row.
func TestVMOverhead(t *testing.T) {
	vmtest.RequireGuest(t)
	for _, f := range []string{*loopPath, bench.NoiseFile, "/bin/true"} {
		_, err := os.Stat(f)
		require.NoError(t, err, "%s must be in the guest (make bench-overhead-vm ships the loop and the noise file)", f)
	}
	dir := t.TempDir()
	w := &bench.Work{Loop: *loopPath, Agent: testenv.AgentExecutable(t, "bash", bench.AgentName),
		PlainFile: filepath.Join(dir, "data.txt"), NoiseFile: bench.NoiseFile}
	require.NoError(t, os.WriteFile(w.PlainFile, []byte("x"), 0o644))
	loops := bench.Loops(GuestIterations, false)
	sessionLoops := 0
	for _, l := range loops {
		if l.Session {
			sessionLoops++
		}
	}

	baseline, err := loadedPrograms()
	require.NoError(t, err)
	var hooks string
	start := func() (func() error, error) {
		began := time.Now()
		r, err := startReceiver(t)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "receiver started in %s\n", time.Since(began).Round(10*time.Millisecond))
		settle()
		hooks = r.hooks
		return func() error {
			if err := r.stop(); err != nil {
				return err
			}
			// every session loop was a session of the bench's agent
			if n := r.sessions(); n < sessionLoops {
				return fmt.Errorf("the receiver saw %d sessions of %s, want one per loop inside a session (%d)", n, bench.AgentName, sessionLoops)
			}
			// stopped means nothing loaded
			if err := waitPrograms(baseline, 30*time.Second); err != nil {
				return err
			}
			settle()
			return nil
		}, nil
	}
	began := time.Now()
	times, err := bench.Alternate(w, loops, *rounds, start, func(r int, on bool) {
		fmt.Fprintf(os.Stderr, "round %d/%d, receiver running=%v done (%s)\n", r+1, *rounds, on, time.Since(began).Round(time.Second))
	})
	require.NoError(t, err)

	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	clock := "guest clock = host wall clock"
	if *icount != "" {
		clock = "-icount " + *icount + ": guest time counts emulated instructions"
	}
	fmt.Printf("\nagentwatch overhead in the QEMU guest (TCG, %s), hooks lsm, kernel %s, %d rounds, medians (receiver stopped → running):\n",
		clock, strings.TrimSpace(string(kernel)), *rounds)
	fmt.Printf("iterations per measurement: %s; no build row (no compiler in the guest)\n", GuestIterations)
	fmt.Printf("receiver hooks: %s\n\n", hooks)
	bench.PrintTable(os.Stdout, loops, times)
	for i, l := range loops {
		t.Logf("%s, %s: stopped %.0f, running %.0f (%s)", l.Name, l.Where(), times[false][i], times[true][i], l.Unit())
	}
	var over []string
	for i, l := range loops {
		if !l.Session && times.Ratio(i) > TargetOutside {
			over = append(over, fmt.Sprintf("%s %.2f×", l.Name, times.Ratio(i)))
		}
	}
	if len(over) == 0 {
		fmt.Printf("\ntarget outside sessions ≤ %.2f× on each loop: met\n\n", TargetOutside)
		return
	}
	fmt.Printf("\ntarget outside sessions ≤ %.2f× on each loop: NOT met (%s)\n\n", TargetOutside, strings.Join(over, ", "))
	if *strict {
		t.Errorf("loops outside sessions over the %.2f× target: %s", TargetOutside, strings.Join(over, ", "))
	}
}

type running struct {
	logs  *consumertest.LogsSink
	hooks string
	stop  func() error
}

// sessions counts the session start records of the bench's agent.
func (r *running) sessions() int {
	n := 0
	for _, l := range r.logs.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			sls := l.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					a := lrs.At(k).Attributes()
					ev, _ := a.Get(semconv.EventName)
					name, _ := a.Get(semconv.GenAIAgentName)
					if ev.AsString() == semconv.EventSessionStart && name.AsString() == agentMatcher {
						n++
					}
				}
			}
		}
	}
	return n
}

// agentMatcher is the bench's matcher name, as in make bench-overhead's
// config.
const agentMatcher = "bench"

// startReceiver starts what a collector's logs and traces pipelines run:
// agent_score then agent_session (hooks: lsm), into sinks; stop shuts
// them down in the collector's order, receiver first.
func startReceiver(t *testing.T) (*running, error) {
	ctx := context.Background()
	logs, traces := &consumertest.LogsSink{}, &consumertest.TracesSink{}

	pf := agentscoreprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig() // the seed policy
	pset := processortest.NewNopSettings(pf.Type())
	pset.ID = component.NewIDWithName(pf.Type(), "bench")
	plogs, err := pf.CreateLogs(ctx, pset, pcfg, logs)
	if err != nil {
		return nil, err
	}
	ptraces, err := pf.CreateTraces(ctx, pset, pcfg, traces)
	if err != nil {
		return nil, err
	}

	rf := agentsessionreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*agentsessionreceiver.Config)
	rcfg.Hooks = agentsessionreceiver.HooksLSM
	rcfg.Agents = []agentsessionreceiver.AgentConfig{{Name: agentMatcher, Executables: []string{bench.AgentName}}}
	if err := rcfg.Validate(); err != nil {
		return nil, err
	}
	core, observed := observer.New(zap.InfoLevel)
	rset := receivertest.NewNopSettings(rf.Type())
	rset.ID = component.NewIDWithName(rf.Type(), "bench")
	rset.Logger = zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()))
	rlogs, err := rf.CreateLogs(ctx, rset, rcfg, plogs)
	if err != nil {
		return nil, err
	}
	rtraces, err := rf.CreateTraces(ctx, rset, rcfg, ptraces)
	if err != nil {
		return nil, err
	}

	host := componenttest.NewNopHost()
	components := []component.Component{ptraces, plogs, rtraces, rlogs} // start order
	for i, c := range components {
		if err := c.Start(ctx, host); err != nil {
			for _, s := range slices.Backward(components[:i]) {
				err = errors.Join(err, s.Shutdown(ctx))
			}
			return nil, fmt.Errorf("start the pipeline with hooks: lsm: %w", err)
		}
	}
	r := &running{logs: logs, stop: func() error {
		var err error
		for _, c := range slices.Backward(components) {
			err = errors.Join(err, c.Shutdown(context.Background()))
		}
		return err
	}}
	for _, e := range observed.FilterMessage("agent_session hooks").All() {
		m := e.ContextMap()
		if b := fmt.Sprint(m["backend"]); b != agentsessionreceiver.HooksLSM {
			return nil, errors.Join(fmt.Errorf("the receiver runs on %s, not lsm (%v)", b, m["reason"]), r.stop())
		}
		r.hooks = fmt.Sprintf("backend=%v attached=%v failed=%v", m["backend"], m["attached"], m["failed"])
	}
	return r, nil
}

// settle lets what a start or a stop left behind finish before the next
// measurement: the Go runtime's collection of the receiver's heap and the
// kernel's freeing of its programs and maps run on the guest's one CPU.
func settle() {
	runtime.GC()
	time.Sleep(time.Second)
}

// loadedPrograms lists the ids of the BPF programs loaded in the kernel.
func loadedPrograms() ([]ebpf.ProgramID, error) {
	var ids []ebpf.ProgramID
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		ids, id = append(ids, next), next
	}
}

// waitPrograms waits until the loaded programs are the baseline's again:
// a closed program is freed after an RCU grace period, not at once.
func waitPrograms(baseline []ebpf.ProgramID, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ids, err := loadedPrograms()
		if err != nil {
			return err
		}
		if slices.Equal(ids, baseline) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("BPF programs %v still loaded %s after the receiver stopped (before it ran: %v)", ids, timeout, baseline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
