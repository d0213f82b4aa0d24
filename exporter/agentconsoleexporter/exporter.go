package agentconsoleexporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// consoleExporter owns the output and the renderer. One mutex covers both:
// pipelines may push concurrently, and a batch must come out as one block
// rendered against one consistent session state.
type consoleExporter struct {
	cfg    *Config
	logger *zap.Logger

	mu   sync.Mutex
	out  io.Writer
	file *os.File // non-nil only when we opened it, so only it is closed
	r    *renderer
}

func newConsoleExporter(cfg *Config, logger *zap.Logger) *consoleExporter {
	return &consoleExporter{cfg: cfg, logger: logger}
}

func (e *consoleExporter) Start(context.Context, component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()

	var f *os.File
	switch e.cfg.Path {
	case "", PathStdout:
		f = os.Stdout
	case PathStderr:
		f = os.Stderr
	default:
		var err error
		f, err = os.OpenFile(e.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("agent_console: open path: %w", err)
		}
		e.file = f
	}
	e.out = f
	e.r = newRenderer(e.useColor(f), e.cfg.Spans, e.cfg.MaxSessions)
	return nil
}

func (e *consoleExporter) useColor(f *os.File) bool {
	switch e.cfg.Color {
	case ColorAlways:
		return true
	case ColorNever:
		return false
	}
	// auto: honour the NO_COLOR convention (no-color.org) as terminals do.
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	return isTerminal(f)
}

func (e *consoleExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.out = nil
	e.r = nil
	if e.file == nil {
		return nil
	}
	err := e.file.Close()
	e.file = nil
	return err
}

var errNotStarted = errors.New("agent_console: exporter not started")

func (e *consoleExporter) consumeLogs(_ context.Context, ld plog.Logs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.r == nil {
		return errNotStarted
	}
	return e.write(e.r.renderLogs(ld))
}

func (e *consoleExporter) consumeTraces(_ context.Context, td ptrace.Traces) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.r == nil {
		return errNotStarted
	}
	return e.write(e.r.renderTraces(td))
}

func (e *consoleExporter) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := e.out.Write(b)
	return err
}
