package agentconsoleexporter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/agentwatch/agentwatch/internal/semconv"
)

func fileConfig(t *testing.T) (*Config, string) {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "console.log")
	return cfg, cfg.Path
}

func settings(name string) exporter.Settings {
	set := exportertest.NewNopSettings(componentType)
	set.ID = component.NewIDWithName(componentType, name)
	return set
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, "agent_console", f.Type().String())
	assert.Equal(t, stability, f.LogsStability())
	assert.Equal(t, stability, f.TracesStability())
	_, err := f.CreateMetrics(context.Background(), settings("m"), f.CreateDefaultConfig())
	assert.Error(t, err, "metrics are not part of the contract")
}

// TestLogsLifecycle runs the exporter as the collector does and checks that
// what reaches the file is exactly the golden rendering: no colour on a
// file in auto mode, arrival order kept, nothing lost or added by the
// exporterhelper wrapping.
func TestLogsLifecycle(t *testing.T) {
	cfg, path := fileConfig(t)
	ctx := context.Background()
	exp, err := NewFactory().CreateLogs(ctx, settings("lifecycle"), cfg)
	require.NoError(t, err)
	assert.False(t, exp.Capabilities().MutatesData)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	for _, ld := range claudeBatches() {
		require.NoError(t, exp.ConsumeLogs(ctx, ld))
	}
	require.NoError(t, exp.Shutdown(ctx))

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("testdata", "session_never.golden"))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

func TestFileIsAppendedTo(t *testing.T) {
	cfg, path := fileConfig(t)
	require.NoError(t, os.WriteFile(path, []byte("earlier run\n"), 0o600))
	ctx := context.Background()
	exp, err := NewFactory().CreateLogs(ctx, settings("append"), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, exp.ConsumeLogs(ctx, claudeBatches()[0]))
	require.NoError(t, exp.Shutdown(ctx))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(got), "earlier run\nclaude-code:4bf92f35 start"), string(got))
}

// TestLogsAndTracesShareState: the traces pipeline must see the process
// tree the logs pipeline built, and both must write to one output.
func TestLogsAndTracesShareState(t *testing.T) {
	cfg, path := fileConfig(t)
	cfg.Spans = SpansAll
	ctx := context.Background()
	set := settings("shared")
	f := NewFactory()
	logs, err := f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	traces, err := f.CreateTraces(ctx, set, cfg)
	require.NoError(t, err)
	require.NoError(t, logs.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, traces.Start(ctx, componenttest.NewNopHost()))

	batches := claudeBatches()
	for _, ld := range batches[:3] {
		require.NoError(t, logs.ConsumeLogs(ctx, ld))
	}
	early, late := claudeSpans()
	require.NoError(t, traces.ConsumeTraces(ctx, early))
	require.NoError(t, logs.ConsumeLogs(ctx, batches[3]))
	require.NoError(t, traces.ConsumeTraces(ctx, late))

	require.NoError(t, logs.Shutdown(ctx))
	require.NoError(t, traces.Shutdown(ctx))

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("testdata", "spans_all.golden"))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))

	// Shut down, the shared instance is forgotten: a reload starts afresh.
	again, err := f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	require.NoError(t, again.Start(ctx, componenttest.NewNopHost()))
	shared, err := exporters.LoadOrStore(set.ID, func() (*consoleExporter, error) { panic("must exist") })
	require.NoError(t, err)
	assert.Equal(t, 0, shared.Unwrap().r.sessions.len())
	require.NoError(t, again.Shutdown(ctx))
}

func TestShutdownWithoutStart(t *testing.T) {
	ctx := context.Background()
	f := NewFactory()
	cfg, path := fileConfig(t)
	logs, err := f.CreateLogs(ctx, settings("nostart"), cfg)
	require.NoError(t, err)
	traces, err := f.CreateTraces(ctx, settings("nostart"), cfg)
	require.NoError(t, err)
	require.NoError(t, logs.Shutdown(ctx))
	require.NoError(t, traces.Shutdown(ctx))
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "nothing is opened before Start")

	e := newConsoleExporter(createDefaultConfig(), nil)
	require.NoError(t, e.Shutdown(ctx))
	assert.ErrorIs(t, e.consumeLogs(ctx, claudeBatches()[0]), errNotStarted)
}

func TestStartFailsOnUnwritablePath(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "missing-dir", "console.log")
	ctx := context.Background()
	exp, err := NewFactory().CreateLogs(ctx, settings("badpath"), cfg)
	require.NoError(t, err)
	err = exp.Start(ctx, componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "path")
	require.NoError(t, exp.Shutdown(ctx))
}

func TestStreams(t *testing.T) {
	for _, p := range []string{"", PathStdout, PathStderr} {
		cfg := createDefaultConfig()
		cfg.Path = p
		cfg.Color = ColorNever
		e := newConsoleExporter(cfg, nil)
		require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
		want := os.Stdout
		if p == PathStderr {
			want = os.Stderr
		}
		assert.Same(t, want, e.out, "path %q", p)
		require.NoError(t, e.Shutdown(context.Background()))
		// A stream we did not open must stay open after Shutdown.
		_, err := want.Stat()
		assert.NoError(t, err)
	}
}

// TestConcurrentPipelinesKeepLinesWhole pushes many sessions from many
// goroutines (run with -race): every line must come out whole and every
// session must close.
func TestConcurrentPipelinesKeepLinesWhole(t *testing.T) {
	cfg, path := fileConfig(t)
	ctx := context.Background()
	exp, err := NewFactory().CreateLogs(ctx, settings("concurrent"), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))

	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				sid := pcommon.TraceID{byte(w), byte(i), 0xab}
				b := newLogBatch("aider", sid).
					event(0, spanClaude, semconv.EventSessionStart, 10, "/usr/bin/python3", nil).
					event(1, spanBash, semconv.EventProcessExec, 11, "/usr/bin/git", map[string]any{semconv.ProcessParentPID: 10}).
					event(2, spanClaude, semconv.EventSessionEnd, 10, "/usr/bin/python3", nil)
				assert.NoError(t, exp.ConsumeLogs(ctx, b.ld))
			}
		}()
	}
	wg.Wait()
	shared, err := exporters.LoadOrStore(settings("concurrent").ID, func() (*consoleExporter, error) { panic("must exist") })
	require.NoError(t, err)
	assert.Equal(t, 0, shared.Unwrap().r.sessions.len(), "every session ended")
	require.NoError(t, exp.Shutdown(ctx))

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := linesOf(got)
	require.Len(t, lines, workers*perWorker*3)
	for _, l := range lines {
		assert.Regexp(t, `^aider:[0-9a-f]{8}\s+(start|exec|end)\s`, l)
	}
}
