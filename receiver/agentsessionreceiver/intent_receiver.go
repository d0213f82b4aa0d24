package agentsessionreceiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kernel"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/session"
)

// rediscoverInterval is how often the maps of session processes are read
// again: a process maps a libssl outside the system directories (a venv, a
// bundled runtime) whenever it likes, with no event to tell.
const rediscoverInterval = 2 * time.Second

// discoverQueue bounds the processes waiting for TLS probes (or for their
// release at exit); when it is full the periodic pass catches up: it
// attaches what was missed and sweeps the probes of processes gone.
const discoverQueue = 4096

// tlsOp is one job of the TLS goroutine, for the process (pid, start).
type tlsOp struct {
	pid   uint32
	start uint64 // CLOCK_BOOTTIME ns, as in event headers
	kind  tlsOpKind
}

type tlsOpKind uint8

const (
	tlsAttach  tlsOpKind = iota // exec, fork, periodic pass
	tlsRelease                  // exit
	tlsSweep                    // periodic: release the probes of the processes gone
)

// sessionConfig is the tracker's config, intent part included.
func (r *sessionReceiver) sessionConfig(m *matcher.Set, backend string) session.Config {
	sc := r.cfg.sessionConfig(m, backend)
	ic, err := r.cfg.sessionIntent()
	if err != nil {
		r.set.Logger.Warn("system resolvers unknown: agent.dns.resolver_is_system is not set", zap.Error(err))
	}
	sc.Intent = ic
	return sc
}

// intentRunner puts the TLS probes into session processes and takes them
// out at exit, off the ring-buffer goroutine (discovery of a large binary
// takes a while, closing a uprobe waits for the kernel), and reports the
// intent layer's self-telemetry. The probes are per process: one queue,
// in event order, so that a process's exit is handled after its exec.
type intentRunner struct {
	tracer   *kernel.Tracer
	enabled  bool
	queue    chan tlsOp
	wg       sync.WaitGroup
	stop     chan struct{}
	lastScan time.Time
	// connScan: when a process was last rediscovered for a connect (the
	// ring-buffer goroutine's alone).
	connScan map[proctree.Key]time.Time
	reg      metric.Registration
	procReg  metric.Registration

	mu    sync.Mutex
	stats session.IntentStats // copied from the tracker at each tick
}

func newIntentRunner(ts component.TelemetrySettings, tracer *kernel.Tracer, tls bool) (*intentRunner, error) {
	ir := &intentRunner{tracer: tracer, enabled: tls, queue: make(chan tlsOp, discoverQueue), stop: make(chan struct{}),
		connScan: map[proctree.Key]time.Time{}}
	if tls {
		ir.wg.Add(1)
		go ir.loop()
	}
	m := ts.MeterProvider.Meter("github.com/agentwatch/agentwatch/receiver/agentsessionreceiver")
	targets, err := m.Int64ObservableGauge("agentwatch.receiver.tls_targets",
		metric.WithDescription("Binaries with TLS functions found in session processes: 1 probes attached, 0 refused."), metric.WithUnit("{target}"))
	if err != nil {
		return nil, err
	}
	fires, err := m.Int64ObservableCounter("agentwatch.receiver.tls_target_fires",
		metric.WithDescription("SSL_* calls seen by the probes of each target; the probes are in session processes only."), metric.WithUnit("{call}"))
	if err != nil {
		return nil, err
	}
	kc, err := m.Int64ObservableCounter("agentwatch.receiver.intent_kernel",
		metric.WithDescription("Intent-layer kernel counters: dns_sent, dns_received, tls_calls, tls_truncated, tls_args_full."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	uc, err := m.Int64ObservableCounter("agentwatch.receiver.intent",
		metric.WithDescription("Intent-layer userspace counters (DNS messages, LLM calls, bytes lost, ...), by counter."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	ir.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, tg := range tracer.TLSTargets() {
			v := int64(0)
			if tg.Attached {
				v = 1
			}
			at := metric.WithAttributes(attribute.String("target", tg.Path))
			o.ObserveInt64(targets, v, metric.WithAttributes(attribute.String("target", tg.Path), attribute.String("found_by", tg.Discovery)))
			o.ObserveInt64(fires, int64(tg.Fires), at)
		}
		if c, err := tracer.IntentCounters(); err == nil {
			for name, v := range map[string]uint64{
				"dns_sent": c.DNSSent, "dns_received": c.DNSReceived, "tls_calls": c.TLSCalls,
				"tls_truncated": c.TLSTruncated, "tls_args_full": c.TLSArgsFull,
			} {
				o.ObserveInt64(kc, int64(v), metric.WithAttributes(attribute.String("counter", name)))
			}
		}
		ir.mu.Lock()
		s := ir.stats
		ir.mu.Unlock()
		for name, v := range map[string]uint64{
			"dns_messages": s.DNSMessages, "dns_malformed": s.DNSMalformed, "dns_unanswered": s.DNSUnanswered,
			"dns_evicted": s.DNSEvicted, "dns_names_dropped": s.NamesDropped,
			"dns_resolver_connects": s.ResolverConnects, "tls_chunks": s.TLSChunks,
			"tls_bytes_lost": s.TLSBytesLost, "tls_conns_evicted": s.TLSConnsEvicted, "http_messages": s.HTTPMessages,
			"llm_calls": s.LLMCalls, "llm_parse_errors": s.LLMParseErrors, "tool_spans": s.ToolSpans,
			"tool_processes": s.ToolProcesses, "tool_held": s.ToolHeld, "tool_unresolved": s.ToolUnresolved, "tool_held_overflow": s.ToolHeldOverflow,
		} {
			o.ObserveInt64(uc, int64(v), metric.WithAttributes(attribute.String("counter", name)))
		}
		return nil
	}, targets, fires, kc, uc)
	if err != nil {
		ir.close()
		return nil, err
	}
	if err := ir.registerProcs(m); err != nil {
		ir.close()
		return nil, err
	}
	return ir, nil
}

// registerProcs reports the per-process TLS probes.
func (ir *intentRunner) registerProcs(m metric.Meter) error {
	live, err := m.Int64ObservableGauge("agentwatch.receiver.tls_processes",
		metric.WithDescription("Session processes with TLS probes attached now."), metric.WithUnit("{process}"))
	if err != nil {
		return err
	}
	ops, err := m.Int64ObservableCounter("agentwatch.receiver.tls_process_probes",
		metric.WithDescription("Per-process TLS probes: processes attached, released, over_limit (left unprobed at the bound), errors."), metric.WithUnit("{process}"))
	if err != nil {
		return err
	}
	held, err := m.Int64ObservableGauge("agentwatch.receiver.tls_probes",
		metric.WithDescription("Per-process TLS probes held now: live (in session processes), closing (of processes gone, ~100 ms each to close)."), metric.WithUnit("{probe}"))
	if err != nil {
		return err
	}
	ir.procReg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := ir.tracer.TLSProcs()
		o.ObserveInt64(live, int64(s.Live))
		o.ObserveInt64(held, int64(s.Probes), metric.WithAttributes(attribute.String("state", "live")))
		o.ObserveInt64(held, int64(s.ClosingProbes), metric.WithAttributes(attribute.String("state", "closing")))
		for name, v := range map[string]uint64{
			"attached": s.Attached, "released": s.Released, "over_limit": s.OverLimit, "errors": s.Errors,
		} {
			o.ObserveInt64(ops, int64(v), metric.WithAttributes(attribute.String("result", name)))
		}
		return nil
	}, live, ops, held)
	return err
}

func (ir *intentRunner) loop() {
	defer ir.wg.Done()
	for {
		select {
		case <-ir.stop:
			return
		case op := <-ir.queue:
			switch op.kind {
			case tlsAttach:
				ir.tracer.DiscoverTLS(op.pid, op.start)
			case tlsRelease:
				ir.tracer.ReleaseTLS(op.pid, op.start)
			case tlsSweep:
				ir.tracer.SweepTLS()
			}
		}
	}
}

func (ir *intentRunner) enqueue(op tlsOp) {
	select {
	case ir.queue <- op:
	default: // full: the periodic pass will attach and sweep
	}
}

func (ir *intentRunner) attach(pid uint32, startNS uint64) {
	ir.enqueue(tlsOp{pid: pid, start: startNS, kind: tlsAttach})
}

// event queues what a kernel event means for the probes, after the
// tracker has handled it: a session process's new image is probed, so is
// a new child (pid-filtered probes are not inherited across fork), and an
// exit releases them.
func (ir *intentRunner) event(t *session.Tracker, ev kevent.Event) {
	if !ir.enabled {
		return
	}
	switch e := ev.(type) {
	case *kevent.Exec:
		if _, _, ok := t.Lookup(e.PID, e.Start); ok {
			ir.attach(e.PID, e.Start)
		}
	case *kevent.Fork:
		// At the fork, most often before the child's exec: the probes
		// are on the task and carry over into the image it execs, which
		// then has them from its start.
		if _, _, ok := t.Lookup(e.PID, e.Start); ok {
			ir.attach(e.PID, e.Start)
		}
	case *kevent.Connect:
		// A library loaded after the exec (python's `import ssl`) is
		// mapped by the time the process connects: its TLS starts after
		// the handshake, which the attach usually beats. Once per
		// connectRescan per process, for processes that connect a lot.
		key := proctree.KeyOf(e.PID, e.Start)
		if now := time.Now(); now.Sub(ir.connScan[key]) >= connectRescan {
			if _, _, ok := t.Lookup(e.PID, e.Start); ok {
				ir.connScan[key] = now
				ir.attach(e.PID, e.Start)
			}
		}
	case *kevent.Exit:
		delete(ir.connScan, proctree.KeyOf(e.PID, e.Start))
		ir.enqueue(tlsOp{pid: e.PID, start: e.Start, kind: tlsRelease})
	}
}

// connectRescan bounds the rediscoveries connects cause, per process.
const connectRescan = 500 * time.Millisecond

func (ir *intentRunner) discoverAll(t *session.Tracker) {
	if ir.enabled {
		t.ForEachProcess(ir.attach)
	}
}

// tick runs on the ring-buffer goroutine at every flush.
func (ir *intentRunner) tick(now time.Time, t *session.Tracker) {
	ir.mu.Lock()
	ir.stats = t.IntentStats()
	ir.mu.Unlock()
	if now.Sub(ir.lastScan) >= rediscoverInterval {
		ir.lastScan = now
		ir.discoverAll(t)
		if ir.enabled {
			ir.enqueue(tlsOp{kind: tlsSweep})
		}
	}
}

func (ir *intentRunner) close() {
	select {
	case <-ir.stop:
	default:
		close(ir.stop)
	}
	ir.wg.Wait()
	if ir.reg != nil {
		_ = ir.reg.Unregister()
	}
	if ir.procReg != nil {
		_ = ir.procReg.Unregister()
	}
}
