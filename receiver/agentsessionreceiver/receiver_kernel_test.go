package agentsessionreceiver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/sharedcomponent"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// harness runs one receiver id with a logs and a traces pipeline, the way a
// collector does, around real processes.
type harness struct {
	logs   *consumertest.LogsSink
	traces *consumertest.TracesSink
	r      *sessionReceiver // the one instance both pipelines share
}

func startReceiver(t *testing.T, agents ...string) *harness {
	t.Helper()
	return startReceiverWith(t, func(*Config) {}, agents...)
}

// startReceiverWith starts the logs and traces receivers of one config
// (built-in matchers off, a matcher per agent name, then mod) into sinks,
// shut down when the test ends.
func startReceiverWith(t *testing.T, mod func(*Config), agents ...string) *harness {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.BuiltinAgents = false
	cfg.SessionEndGrace = 300 * time.Millisecond
	for _, a := range agents {
		cfg.Agents = append(cfg.Agents, AgentConfig{Name: a, Executables: []string{a}})
	}
	mod(cfg)
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(componentType)
	set.ID = component.NewIDWithName(componentType, t.Name())
	h := &harness{logs: &consumertest.LogsSink{}, traces: &consumertest.TracesSink{}}
	lr, err := f.CreateLogs(context.Background(), set, cfg, h.logs)
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, h.traces)
	require.NoError(t, err)
	h.r = lr.(*sharedcomponent.Component[*sessionReceiver]).Unwrap()
	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, tr.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, lr.Shutdown(context.Background()))
		require.NoError(t, tr.Shutdown(context.Background()))
	})
	return h
}

type logRec struct {
	attrs pcommon.Map
	lr    plog.LogRecord
	res   pcommon.Map
}

func (h *harness) records() []logRec {
	var out []logRec
	for _, l := range h.logs.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			rl := l.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, logRec{lrs.At(k).Attributes(), lrs.At(k), rl.Resource().Attributes()})
				}
			}
		}
	}
	return out
}

// exported is everything the receiver exported so far, as OTLP JSON: what
// a leak check searches.
func (h *harness) exported(t *testing.T) []byte {
	var all []byte
	for _, l := range h.logs.AllLogs() {
		b, err := (&plog.JSONMarshaler{}).MarshalLogs(l)
		require.NoError(t, err)
		all = append(all, b...)
	}
	for _, tr := range h.traces.AllTraces() {
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(tr)
		require.NoError(t, err)
		all = append(all, b...)
	}
	return all
}

func (h *harness) spans() []ptrace.Span {
	var out []ptrace.Span
	for _, td := range h.traces.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			ss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					out = append(out, ss.At(j).Spans().At(k))
				}
			}
		}
	}
	return out
}

func (h *harness) waitRoot(t *testing.T, agent string) ptrace.Span {
	t.Helper()
	var root ptrace.Span
	require.Eventually(t, func() bool {
		for _, sp := range h.spans() {
			if sp.Name() == "invoke_agent "+agent {
				root = sp
				return true
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond, "session of %s did not end", agent)
	return root
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func TestKernelSession(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-agent"
	h := startReceiver(t, agent)
	port := testenv.TCPSink(t)

	work := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(work, "notes"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "notes", "plan.md"), []byte("x"), 0o600))
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	// A child shell that runs cat: agent → bash (fork) → cat (exec).
	script := "cat notes/plan.md >/dev/null; exec 3<>/dev/tcp/127.0.0.1/" + strconv.Itoa(port) +
		"; ( cat /usr/lib/os-release >/dev/null; sh -c 'exit 4' ); exit 5"
	argv := []string{bin, "-c", script, "two words", "--token=s3cr3t-value"}

	outsider := exec.Command("cat", filepath.Join(work, "notes", "plan.md"))
	outsider.Stdout = nil
	require.NoError(t, outsider.Start())
	outsiderPID := outsider.Process.Pid
	require.NoError(t, outsider.Wait())

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = work
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 5, ee.ExitCode())
	rootPID := int64(cmd.Process.Pid)

	root := h.waitRoot(t, agent)
	recs := h.records()

	var exec0, plan, conn, start, end *logRec
	for i := range recs {
		r := &recs[i]
		require.NotEqual(t, int64(outsiderPID), mustInt(r.attrs, semconv.ProcessPID), "a process outside the session yields nothing")
		require.Equal(t, root.TraceID(), r.lr.TraceID(), "every record is in the session's trace")
		require.False(t, strings.HasPrefix(str(r.attrs, semconv.FilePath), "/usr/lib/"), "noise reached the pipeline")
		switch str(r.attrs, semconv.EventName) {
		case semconv.EventProcessExec:
			if mustInt(r.attrs, semconv.ProcessPID) == rootPID && exec0 == nil {
				exec0 = r
			}
		case semconv.EventFileOpen:
			if str(r.attrs, semconv.FilePath) == filepath.Join(work, "notes", "plan.md") {
				plan = r
			}
		case semconv.EventNetConnect:
			if mustInt(r.attrs, semconv.NetworkPeerPort) == int64(port) {
				conn = r
			}
		case semconv.EventSessionStart:
			start = r
		case semconv.EventSessionEnd:
			end = r
		}
	}
	require.NotNil(t, start, "session start")
	require.NotNil(t, end, "session end")
	require.Equal(t, agent, str(start.res, semconv.ServiceName))
	require.NotNil(t, exec0, "exec of the agent")
	args, _ := exec0.attrs.Get(semconv.ProcessCommandArgs)
	want := append(append([]string{}, argv[:4]...), "--token=[REDACTED]")
	require.Equal(t, want, toStrings(args.Slice().AsRaw()), "exact argv, with the secret redacted")
	require.Equal(t, work, str(exec0.attrs, semconv.ProcessWorkingDirectory))
	require.NotNil(t, plan, "a relative open is reported with its absolute path")
	require.NotNil(t, conn, "connect to the listener")
	require.Equal(t, "127.0.0.1", str(conn.attrs, semconv.NetworkPeerAddress))
	require.Equal(t, "tcp", str(conn.attrs, semconv.NetworkTransport))
	require.Equal(t, "ipv4", str(conn.attrs, semconv.NetworkType))

	// Spans: root → agent → subshell → {cat, sh}; exit codes on the spans.
	spans := map[pcommon.SpanID]ptrace.Span{}
	for _, sp := range h.spans() {
		if sp.TraceID() == root.TraceID() {
			spans[sp.SpanID()] = sp
		}
	}
	var agentSpan, catSpan, shSpan ptrace.Span
	for _, sp := range spans {
		pid, _ := sp.Attributes().Get(semconv.ProcessPID)
		switch {
		case sp.Name() == agent && pid.Int() == rootPID:
			agentSpan = sp
		case sp.Name() == "cat":
			catSpan = sp
		case sp.Name() == "sh":
			shSpan = sp
		}
	}
	require.Equal(t, root.SpanID(), agentSpan.ParentSpanID(), "agent span hangs off the session root")
	code, _ := agentSpan.Attributes().Get(semconv.ProcessExitCode)
	require.Equal(t, int64(5), code.Int())
	require.Equal(t, ptrace.StatusCodeError, agentSpan.Status().Code())
	for name, sp := range map[string]ptrace.Span{"cat": catSpan, "sh": shSpan} {
		require.False(t, sp.SpanID().IsEmpty(), "%s span", name)
		chain := []string{}
		for p := sp; !p.ParentSpanID().IsEmpty(); {
			parent, ok := spans[p.ParentSpanID()]
			require.True(t, ok, "parent of %s is in the trace", p.Name())
			chain = append(chain, parent.Name())
			p = parent
		}
		require.Equal(t, "invoke_agent "+agent, chain[len(chain)-1], "%s descends from the session root: %v", name, chain)
		require.Contains(t, chain, agent)
	}
	shCode, _ := shSpan.Attributes().Get(semconv.ProcessExitCode)
	require.Equal(t, int64(4), shCode.Int())
}

// An agent that was already running when the receiver started is found by
// the /proc scan, with its children, and its session ends normally.
func TestKernelAdoptRunningAgent(t *testing.T) {
	testenv.RequireRoot(t)
	const agent = "aw-rt-running"
	bin := testenv.AgentExecutable(t, "/bin/bash", agent)
	release := filepath.Join(t.TempDir(), "go")
	cmd := exec.Command(bin, "-c", `sleep 60 & child=$!; while [ ! -e "$1" ]; do sleep 0.05; done; kill $child; wait; exit 3`, agent, release)
	require.NoError(t, cmd.Start())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); cmd.Wait() }()
	defer func() { os.WriteFile(release, nil, 0o600); wg.Wait() }()
	time.Sleep(300 * time.Millisecond) // the sleep child exists before the scan

	h := startReceiver(t, agent)
	require.NoError(t, os.WriteFile(release, nil, 0o600))
	wg.Wait()
	root := h.waitRoot(t, agent)
	pid, _ := root.Attributes().Get(semconv.ProcessPID)
	require.Equal(t, int64(cmd.Process.Pid), pid.Int())

	var agentSpan, sleepSpan ptrace.Span
	for _, sp := range h.spans() {
		if sp.TraceID() != root.TraceID() {
			continue
		}
		switch sp.Name() {
		case agent:
			if p, _ := sp.Attributes().Get(semconv.ProcessPID); p.Int() == int64(cmd.Process.Pid) {
				agentSpan = sp
			}
		case "sleep":
			sleepSpan = sp
		}
	}
	require.False(t, agentSpan.SpanID().IsEmpty(), "the running agent has a span")
	require.Equal(t, root.SpanID(), agentSpan.ParentSpanID())
	require.False(t, sleepSpan.SpanID().IsEmpty(), "its child found by the scan has a span")
	require.Equal(t, agentSpan.SpanID(), sleepSpan.ParentSpanID(), "the child is parented to the agent")
	code, _ := agentSpan.Attributes().Get(semconv.ProcessExitCode)
	require.Equal(t, int64(3), code.Int())
}

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	set := receivertest.NewNopSettings(componentType)
	cfg := f.CreateDefaultConfig()
	r, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()), "Shutdown without Start")

	testenv.RequireRoot(t)
	set.ID = component.NewIDWithName(componentType, "lifecycle")
	r, err = f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()), "a second Shutdown is harmless")
}

func TestSharedInstance(t *testing.T) {
	f := NewFactory()
	set := receivertest.NewNopSettings(componentType)
	cfg := f.CreateDefaultConfig()
	l, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.Same(t, l, tr, "one BPF instance serves both pipelines of one receiver id")
	require.NoError(t, l.Shutdown(context.Background()))
}

var _ receiver.Factory = NewFactory()

func mustInt(m pcommon.Map, k string) int64 {
	v, ok := m.Get(k)
	if !ok {
		return -1
	}
	return v.Int()
}

func toStrings(in []any) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i], _ = v.(string)
	}
	return out
}
