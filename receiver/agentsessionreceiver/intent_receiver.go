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
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/session"
)

// rediscoverInterval is how often the maps of session processes are read
// again: a process maps a libssl outside the system directories (a venv, a
// bundled runtime) whenever it likes, with no event to tell.
const rediscoverInterval = 2 * time.Second

// discoverQueue bounds the pids waiting for TLS discovery; when it is full
// the periodic pass catches up.
const discoverQueue = 1024

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

// intentRunner finds the TLS code of session processes off the ring-buffer
// goroutine (attaching uprobes to a large binary takes a while) and
// reports the intent layer's self-telemetry.
type intentRunner struct {
	tracer   *kernel.Tracer
	enabled  bool
	queue    chan uint32
	wg       sync.WaitGroup
	stop     chan struct{}
	lastScan time.Time
	reg      metric.Registration

	mu    sync.Mutex
	stats session.IntentStats // copied from the tracker at each tick
}

func newIntentRunner(ts component.TelemetrySettings, tracer *kernel.Tracer, tls bool) (*intentRunner, error) {
	ir := &intentRunner{tracer: tracer, enabled: tls, queue: make(chan uint32, discoverQueue), stop: make(chan struct{})}
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
		metric.WithDescription("SSL_* calls seen by the probes of each target, all processes."), metric.WithUnit("{call}"))
	if err != nil {
		return nil, err
	}
	kc, err := m.Int64ObservableCounter("agentwatch.receiver.intent_kernel",
		metric.WithDescription("Intent-layer kernel counters: dns_sent, dns_received, tls_calls, tls_truncated, tls_args_full, dns_args_full."), metric.WithUnit("{event}"))
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
				"tls_truncated": c.TLSTruncated, "tls_args_full": c.TLSArgsFull, "dns_args_full": c.DNSArgsFull,
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
	return ir, nil
}

func (ir *intentRunner) loop() {
	defer ir.wg.Done()
	for {
		select {
		case <-ir.stop:
			return
		case pid := <-ir.queue:
			ir.tracer.DiscoverTLS(pid)
		}
	}
}

func (ir *intentRunner) enqueue(pid uint32) {
	select {
	case ir.queue <- pid:
	default: // full: the periodic pass will look
	}
}

// exec queues a session process's new image for discovery.
func (ir *intentRunner) exec(t *session.Tracker, e *kevent.Exec) {
	if !ir.enabled {
		return
	}
	if _, _, ok := t.Lookup(e.PID, e.Start); ok {
		ir.enqueue(e.PID)
	}
}

func (ir *intentRunner) discoverAll(t *session.Tracker) {
	if ir.enabled {
		t.ForEachProcess(ir.enqueue)
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
}
