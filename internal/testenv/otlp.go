package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the exporter compresses by default
)

// OTLPSink is an OTLP/gRPC backend that keeps everything it is sent, as a
// backend would receive what the built collector exports.
type OTLPSink struct {
	plogotlp.UnimplementedGRPCServer
	// Addr is host:port for the exporter's endpoint.
	Addr   string
	mu     sync.Mutex
	logs   []plog.Logs
	traces []ptrace.Traces
}

type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	s *OTLPSink
}

// StartOTLPSink serves OTLP/gRPC logs and traces on a loopback port until
// the test ends.
func StartOTLPSink(tb testing.TB) *OTLPSink {
	tb.Helper()
	s := &OTLPSink{}
	gs := grpc.NewServer()
	plogotlp.RegisterGRPCServer(gs, s)
	ptraceotlp.RegisterGRPCServer(gs, &traceSink{s: s})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = lis.Addr().String()
	go gs.Serve(lis)
	tb.Cleanup(gs.Stop)
	return s
}

func (s *OTLPSink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	l := plog.NewLogs()
	req.Logs().CopyTo(l)
	s.mu.Lock()
	s.logs = append(s.logs, l)
	s.mu.Unlock()
	return plogotlp.NewExportResponse(), nil
}

func (t *traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	tr := ptrace.NewTraces()
	req.Traces().CopyTo(tr)
	t.s.mu.Lock()
	t.s.traces = append(t.s.traces, tr)
	t.s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

// Record is one exported LogRecord with its resource's attributes.
type Record struct {
	Res   pcommon.Map
	Attrs pcommon.Map
	LR    plog.LogRecord
}

// Span is one exported span with its resource's attributes.
type Span struct {
	Res pcommon.Map
	ptrace.Span
}

// Records returns every LogRecord received so far.
func (s *OTLPSink) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, l := range s.logs {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			rl := l.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, Record{rl.Resource().Attributes(), lrs.At(k).Attributes(), lrs.At(k)})
				}
			}
		}
	}
	return out
}

// Spans returns every span received so far.
func (s *OTLPSink) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Span
	for _, t := range s.traces {
		for i := 0; i < t.ResourceSpans().Len(); i++ {
			rs := t.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					out = append(out, Span{rs.Resource().Attributes(), ss.At(k)})
				}
			}
		}
	}
	return out
}

// Dump serialises everything received (logs and traces, OTLP JSON), for a
// search of what must never be exported.
func (s *OTLPSink) Dump() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []byte
	lm, tm := &plog.JSONMarshaler{}, &ptrace.JSONMarshaler{}
	for _, l := range s.logs {
		b, _ := lm.MarshalLogs(l)
		out = append(out, b...)
	}
	for _, t := range s.traces {
		b, _ := tm.MarshalTraces(t)
		out = append(out, b...)
	}
	return out
}

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// BuildCollector builds bin/otelcol-agentwatch the way `make build` does,
// once per test binary.
func BuildCollector(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		root := RepoRoot()
		buildOnce.bin = filepath.Join(root, "bin", "otelcol-agentwatch")
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildOnce.bin, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildOnce.err != nil {
		tb.Fatal(buildOnce.err)
	}
	return buildOnce.bin
}

// Collector is a running otelcol-agentwatch.
type Collector struct {
	cmd *exec.Cmd
	out *LockedBuffer
}

// Output is what the collector printed so far.
func (c *Collector) Output() string { return c.out.String() }

// Stop interrupts the collector and waits for it (once; also at cleanup).
func (c *Collector) Stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// PipelineConfig is a collector config whose logs and traces pipelines run
// agent_session (configured by receiverYAML, the lines under it, indented
// four spaces) through agent_score to the OTLP sink at endpoint.
func PipelineConfig(receiverYAML, endpoint string) string {
	return `
receivers:
  agent_session:
` + receiverYAML + `
processors:
  agent_score:
exporters:
  otlp_grpc:
    endpoint: ` + endpoint + `
    tls:
      insecure: true
    sending_queue:
      enabled: false
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [agent_session]
      processors: [agent_score]
      exporters: [otlp_grpc]
    traces:
      receivers: [agent_session]
      processors: [agent_score]
      exporters: [otlp_grpc]
`
}

// StartCollector runs bin with the config text until the test ends, and
// waits until it is ready. On failure its output is logged.
func StartCollector(tb testing.TB, bin, config string) *Collector {
	tb.Helper()
	cfg := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	c := &Collector{cmd: exec.Command(bin, "--config", cfg), out: &LockedBuffer{}}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c.Stop()
		if tb.Failed() {
			out := c.Output()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			tb.Logf("collector output:\n%s", out)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(c.Output(), "Everything is ready") {
		if time.Now().After(deadline) {
			tb.Fatalf("collector did not start in 60s:\n%s", c.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// LockedBuffer is an io.Writer safe for a process's stdout and stderr
// written while a test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
