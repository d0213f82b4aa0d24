package agentsessionreceiver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kernel"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/session"
)

// flushInterval bounds how long an event waits in the receiver before it is
// handed to the pipeline; maxPending bounds how many wait.
const (
	flushInterval = 200 * time.Millisecond
	maxPending    = 4096
)

type sessionReceiver struct {
	set receiver.Settings
	cfg *Config

	mu     sync.Mutex
	logs   consumer.Logs
	traces consumer.Traces

	tracer  *kernel.Tracer
	tracker *session.Tracker
	tel     *telemetry

	cancel context.CancelFunc
	done   chan struct{}
	intent *intentRunner // TLS target discovery (intent_receiver.go)
}

func newSessionReceiver(set receiver.Settings, cfg *Config) (*sessionReceiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &sessionReceiver{set: set, cfg: cfg}, nil
}

func (r *sessionReceiver) setLogs(c consumer.Logs) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = c
}

func (r *sessionReceiver) setTraces(c consumer.Traces) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.traces = c
}

// Start loads the BPF programs, adopts agents already running, and starts
// reading the ring buffer.
func (r *sessionReceiver) Start(_ context.Context, _ component.Host) error {
	logger := r.set.Logger
	matchers, err := r.cfg.matchers()
	if err != nil {
		return err
	}
	keys := matchers.KernelKeys()
	opts := kernel.Options{
		Hooks:           r.cfg.Hooks,
		RingBufferBytes: r.cfg.RingBufferSize,
		MaxProcesses:    r.cfg.MaxProcesses,
		MaxArgsBytes:    r.cfg.MaxArgsBytes,
		ExecNames:       map[string]kernel.Action{},
		CgroupPrefixes:  map[string]kernel.Action{},
		MatchAllExecs:   keys.MatchAllExecs,
		NoisePrefixes:   r.cfg.Noise.PathPrefixes,
		NoiseDirNames:   r.cfg.Noise.DirNames,
		Intent:          r.cfg.kernelIntent(),
	}
	opts.NoiseFiles = r.cfg.Noise.Files
	opts.DropFailedOpens, opts.DropPathOpens = r.cfg.Noise.DropFailedOpens, r.cfg.Noise.DropPathOpens
	homes := kernel.Homes("/etc/passwd")
	opts.KeepPrefixes, opts.KeepNames = kernel.KeepSet(r.cfg.Noise.Keep, homes)
	opts.SensitiveGlobs, opts.Homes = r.cfg.Noise.Keep, homes
	if opts.Enforce, err = r.cfg.Enforce.kernel(homes); err != nil {
		return fmt.Errorf("agent_session: %w", err)
	}
	for name, act := range keys.Names {
		opts.ExecNames[name] = kernelAction(act)
	}
	for prefix, act := range keys.Cgroups {
		opts.CgroupPrefixes[prefix] = kernelAction(act)
	}
	opts.ExecDirs = make(map[[2]string]kernel.Action, len(keys.Dirs))
	for d, act := range keys.Dirs {
		opts.ExecDirs[[2]string{d.Grandparent, d.Parent}] = kernelAction(act)
	}
	tracer, err := kernel.Open(opts, logger)
	if err != nil {
		return fmt.Errorf("agent_session: %w", err)
	}
	r.tracer = tracer
	backend, reason := tracer.Backend()
	logHooks(logger, backend, reason, tracer.Hooks())

	scfg := r.sessionConfig(matchers, backend)
	scfg.FileOpTracepoints = backend == kernel.BackendLSM && !tracer.LSMFileOps()
	scfg.EnforceRules = opts.Enforce.Rules
	r.tracker, err = session.New(scfg, tracer, logger)
	if err != nil {
		tracer.Close()
		return err
	}
	r.tel, err = newTelemetry(r.set.TelemetrySettings, tracer, r.tracker, backend)
	if err != nil {
		tracer.Close()
		return err
	}
	if r.intent, err = newIntentRunner(r.set.TelemetrySettings, tracer, r.cfg.TLS.Enabled); err != nil {
		r.tel.close()
		tracer.Close()
		return err
	}
	// The hooks are attached before the scan, so a process forked while
	// the scan runs is either seen by the scan or by the fork hook.
	if err := r.tracker.ScanProc(r.cfg.ProcPath); err != nil {
		logger.Warn("scan of running processes incomplete", zap.Error(err))
	}
	r.intent.discoverAll(r.tracker)

	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.run(ctx)
	return nil
}

func kernelAction(a session.Action) kernel.Action {
	if a == session.ActionStart {
		return kernel.ActionStart
	}
	return kernel.ActionCandidate
}

var userspaceNoiseAttrs = [...]metric.MeasurementOption{
	metric.WithAttributes(attribute.String("reason", "agent_state")),
	metric.WithAttributes(attribute.String("reason", "git_metadata")),
	metric.WithAttributes(attribute.String("reason", "clean_exit")),
	metric.WithAttributes(attribute.String("reason", "route_probe")),
	metric.WithAttributes(attribute.String("reason", "procps_environ")),
}

func logHooks(logger *zap.Logger, backend, reason string, hooks []kernel.HookStatus) {
	var attached, failed []string
	for _, h := range hooks {
		if h.Attached {
			attached = append(attached, h.Name)
		} else {
			failed = append(failed, fmt.Sprintf("%s (%v)", h.Name, h.Err))
		}
	}
	fields := []zap.Field{
		zap.String("backend", backend),
		zap.String("reason", reason),
		zap.Strings("attached", attached),
		zap.Strings("failed", failed),
	}
	if backend == kernel.BackendTracepoint {
		fields = append(fields, zap.String("enforcement", "unavailable with tracepoints: detection only"))
	}
	logger.Info("agent_session hooks", fields...)
}

func (r *sessionReceiver) run(ctx context.Context) {
	defer close(r.done)
	var (
		rec       ringbuf.Record
		pending   int
		nextFlush = time.Now().Add(flushInterval)
	)
	for {
		err := r.tracer.Read(&rec, nextFlush)
		switch {
		case err == nil:
			r.handle(rec.RawSample)
			pending++
		case errors.Is(err, kernel.ErrTimeout):
		case errors.Is(err, kernel.ErrClosed):
			r.tracker.ReleaseHeld() // the last flush: nothing waits for a TLS name
			r.tracker.Drain()       // what waits for a window goes out now
			r.flush(context.Background())
			return
		default:
			r.set.Logger.Error("ring buffer read failed", zap.Error(err))
		}
		if ctx.Err() != nil {
			r.tracker.ReleaseHeld()
			r.tracker.Drain()
			r.flush(context.Background())
			return
		}
		if now := time.Now(); pending >= maxPending || !now.Before(nextFlush) {
			r.intent.tick(now, r.tracker)
			r.flush(ctx)
			pending = 0
			nextFlush = now.Add(flushInterval)
		}
	}
}

func (r *sessionReceiver) handle(raw []byte) {
	ev, err := kevent.Decode(raw)
	if err != nil {
		r.tel.decodeError(err)
		return
	}
	r.tel.event(ev.Hdr().Kind)
	r.tracker.Handle(ev)
	r.intent.event(r.tracker, ev)
}

func (r *sessionReceiver) flush(ctx context.Context) {
	logs, traces := r.tracker.Flush(time.Now())
	r.mu.Lock()
	lc, tc := r.logs, r.traces
	r.mu.Unlock()
	if lc != nil && logs.LogRecordCount() > 0 {
		if err := lc.ConsumeLogs(ctx, logs); err != nil {
			r.set.Logger.Warn("logs refused downstream", zap.Error(err), zap.Int("records", logs.LogRecordCount()))
		}
	}
	if tc != nil && traces.SpanCount() > 0 {
		if err := tc.ConsumeTraces(ctx, traces); err != nil {
			r.set.Logger.Warn("spans refused downstream", zap.Error(err), zap.Int("spans", traces.SpanCount()))
		}
	}
}

// Shutdown stops reading and detaches the programs. Safe without Start.
func (r *sessionReceiver) Shutdown(context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	var err error
	if r.tracer != nil {
		err = r.tracer.Close() // unblocks Read
	}
	if r.done != nil {
		<-r.done
	}
	if r.tel != nil {
		r.tel.close()
	}
	if r.intent != nil {
		r.intent.close()
	}
	return err
}

// telemetry is the receiver's self-telemetry.
type telemetry struct {
	events       metric.Int64Counter
	decodeErrors metric.Int64Counter
	reg          metric.Registration
	kindAttrs    [kevent.KindMax]metric.MeasurementOption // made once: Add and Observe share them
}

func newTelemetry(ts component.TelemetrySettings, tracer *kernel.Tracer, tracker *session.Tracker, backend string) (*telemetry, error) {
	m := ts.MeterProvider.Meter("github.com/agentwatch/agentwatch/receiver/agentsessionreceiver")
	t := &telemetry{}
	var err error
	if t.events, err = m.Int64Counter("agentwatch.receiver.events",
		metric.WithDescription("Kernel events received, by kind."), metric.WithUnit("{event}")); err != nil {
		return nil, err
	}
	if t.decodeErrors, err = m.Int64Counter("agentwatch.receiver.decode_errors",
		metric.WithDescription("Ring-buffer records that failed to decode."), metric.WithUnit("{record}")); err != nil {
		return nil, err
	}
	for k := range t.kindAttrs {
		t.kindAttrs[k] = metric.WithAttributes(attribute.String("kind", kevent.Kind(k).String()))
	}
	drops, err := m.Int64ObservableCounter("agentwatch.receiver.ringbuf_drops",
		metric.WithDescription("Events lost because the ring buffer was full, counted in the kernel, by kind."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	noise, err := m.Int64ObservableCounter("agentwatch.receiver.noise_dropped",
		metric.WithDescription("File opens dropped as noise, by reason: path (noise prefix or directory), file (noise.files), failed_open, path_open (O_PATH), file_op (unlinks and failed file changes noise.keep does not name) in the kernel; agent_state (the agent's own state files, noise.agent_state) in userspace."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	idsFull, err := m.Int64ObservableCounter("agentwatch.receiver.sensitive_ids_full",
		metric.WithDescription("Sensitive files that could not be marked by identity: the sensitive_ids map was full."), metric.WithUnit("{file}"))
	if err != nil {
		return nil, err
	}
	sessions, err := m.Int64ObservableGauge("agentwatch.receiver.sessions_active",
		metric.WithDescription("Agent sessions in progress."), metric.WithUnit("{session}"))
	if err != nil {
		return nil, err
	}
	procs, err := m.Int64ObservableGauge("agentwatch.receiver.processes_tracked",
		metric.WithDescription("Processes tracked in sessions."), metric.WithUnit("{process}"))
	if err != nil {
		return nil, err
	}
	folded, err := m.Int64ObservableCounter("agentwatch.receiver.opens_folded",
		metric.WithDescription("Repeated file opens counted on an earlier record (result=folded), or recorded alone because the fold table was full (result=unfolded)."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	foldedAttrs := [2]metric.ObserveOption{
		metric.WithAttributes(attribute.String("result", "folded")),
		metric.WithAttributes(attribute.String("result", "unfolded")),
	}
	hooks, err := m.Int64ObservableGauge("agentwatch.receiver.hooks",
		metric.WithDescription("Kernel hooks: 1 attached, 0 failed."), metric.WithUnit("{hook}"))
	if err != nil {
		return nil, err
	}
	hookList := tracer.Hooks()
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if c, err := tracer.Counters(); err == nil {
			for k, d := range c.Drops {
				if kevent.Kind(k).Known() {
					o.ObserveInt64(drops, int64(d), t.kindAttrs[k])
				}
			}
			for _, r := range [...]struct {
				v      uint64
				reason string
			}{{c.NoiseDropped - c.NoiseDirHits, "path"}, {c.NoiseDirHits, "noise_dir"}, {c.NoiseFiles, "file"}, {c.FailedOpens, "failed_open"}, {c.PathOpens, "path_open"}, {c.FileOps, "file_op"}} {
				o.ObserveInt64(noise, int64(r.v), metric.WithAttributes(attribute.String("reason", r.reason)))
			}
		}
		o.ObserveInt64(idsFull, int64(tracer.SensitiveIDsFull()))
		st := tracker.Stats()
		// Dropped in userspace, but the same budget: counted beside the rest.
		for i, v := range [...]uint64{st.AgentStateDropped, st.GitMetadataDropped, st.CleanExitsDropped, st.RouteProbes, st.ProcpsEnviron} {
			o.ObserveInt64(noise, int64(v), userspaceNoiseAttrs[i])
		}
		o.ObserveInt64(sessions, int64(st.ActiveSessions))
		o.ObserveInt64(folded, int64(st.OpensFolded), foldedAttrs[0])
		o.ObserveInt64(folded, int64(st.OpensUnfolded), foldedAttrs[1])
		o.ObserveInt64(procs, int64(st.TrackedProcesses))
		for _, h := range hookList {
			v := int64(0)
			if h.Attached {
				v = 1
			}
			o.ObserveInt64(hooks, v, metric.WithAttributes(
				attribute.String("hook", h.Name), attribute.String("backend", backend)))
		}
		return nil
	}, drops, noise, idsFull, sessions, procs, folded, hooks)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (t *telemetry) event(k kevent.Kind) {
	if int(k) < len(t.kindAttrs) {
		t.events.Add(context.Background(), 1, t.kindAttrs[k])
	}
}

func (t *telemetry) decodeError(err error) {
	reason := "corrupt"
	if errors.Is(err, kevent.ErrShort) {
		reason = "short"
	}
	t.decodeErrors.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", strings.ToLower(reason))))
}

func (t *telemetry) close() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}

var (
	_ plog.Logs
	_ ptrace.Traces
)
