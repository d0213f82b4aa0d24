package agentscoreprocessor

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/engine"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

const scopeName = "github.com/agentwatch/agentwatch/processor/agentscoreprocessor"

// Self-telemetry metric names.
const (
	metricEvents   = "otelcol_processor_agent_score_events_scored"
	metricAlerts   = "otelcol_processor_agent_score_alerts"
	metricMatches  = "otelcol_processor_agent_score_rule_matches"
	metricSessions = "otelcol_processor_agent_score_sessions"
	metricEvicted  = "otelcol_processor_agent_score_sessions_evicted"
)

var kindNames = [engine.NumKinds]string{
	engine.KindOther:        "other",
	engine.KindSessionStart: semconv.EventSessionStart,
	engine.KindSessionEnd:   semconv.EventSessionEnd,
	engine.KindExec:         semconv.EventProcessExec,
	engine.KindExit:         semconv.EventProcessExit,
	engine.KindFileOpen:     semconv.EventFileOpen,
	engine.KindConnect:      semconv.EventNetConnect,
	engine.KindDNS:          semconv.EventDNSQuery,
	engine.KindLLMRequest:   semconv.EventLLMRequest,
	engine.KindLLMResponse:  semconv.EventLLMResponse,
	engine.KindEnforce:      semconv.EventEnforce,
	engine.KindFileLink:     semconv.EventFileLink,
	engine.KindFileRename:   semconv.EventFileRename,
	engine.KindFileUnlink:   semconv.EventFileUnlink,
	engine.KindFileChmod:    semconv.EventFileChmod,
	engine.KindFileMount:    semconv.EventFileMount,
	engine.KindNetClose:     semconv.EventNetClose,
}

// telemetry holds the instruments and precomputed attribute sets, so that
// recording a batch allocates nothing per event.
type telemetry struct {
	events  metric.Int64Counter
	alerts  metric.Int64Counter
	matches metric.Int64Counter
	reg     metric.Registration

	kindOpts  [engine.NumKinds]metric.AddOption
	levelOpts [len(engine.Levels)]metric.AddOption
	ruleOpts  []metric.AddOption
}

// batchCounts accumulates one batch before it is recorded.
type batchCounts struct {
	events  [engine.NumKinds]int64
	alerts  [len(engine.Levels)]int64
	matches [policy.MaxRules]int64
	any     bool
}

func (c *batchCounts) add(kind engine.Kind, res *engine.Result) {
	c.any = true
	c.events[kind]++
	if res.Alert {
		c.alerts[engine.LevelIndex(res.Score)]++
	}
	res.Rules.Each(func(i int) { c.matches[i]++ })
}

func newTelemetry(set component.TelemetrySettings, pol *policy.Policy, eng *engine.Engine) (*telemetry, error) {
	m := set.MeterProvider.Meter(scopeName)
	t := &telemetry{}
	var err, errs error
	t.events, err = m.Int64Counter(metricEvents,
		metric.WithDescription("Events scored by agent_score, by event.name [Development]"), metric.WithUnit("{event}"))
	errs = errors.Join(errs, err)
	t.alerts, err = m.Int64Counter(metricAlerts,
		metric.WithDescription("Events that raised an alert, by agent.risk.level [Development]"), metric.WithUnit("{event}"))
	errs = errors.Join(errs, err)
	t.matches, err = m.Int64Counter(metricMatches,
		metric.WithDescription("Rule matches, by security_rule.name [Development]"), metric.WithUnit("{match}"))
	errs = errors.Join(errs, err)
	sessions, err := m.Int64ObservableGauge(metricSessions,
		metric.WithDescription("Sessions whose state agent_score holds [Development]"), metric.WithUnit("{session}"))
	errs = errors.Join(errs, err)
	evicted, err := m.Int64ObservableCounter(metricEvicted,
		metric.WithDescription("Sessions forgotten, by reason (lru: the LRU was full; ttl: idle too long) [Development]"), metric.WithUnit("{session}"))
	errs = errors.Join(errs, err)
	if errs != nil {
		return nil, errs
	}
	lru := metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "lru")))
	ttl := metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "ttl")))
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := eng.Stats()
		o.ObserveInt64(sessions, int64(st.Sessions))
		o.ObserveInt64(evicted, int64(st.EvictedLRU), lru)
		o.ObserveInt64(evicted, int64(st.EvictedTTL), ttl)
		return nil
	}, sessions, evicted)
	if err != nil {
		return nil, err
	}

	for k, name := range kindNames {
		t.kindOpts[k] = metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.EventName, name)))
	}
	for i, l := range engine.Levels {
		t.levelOpts[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.RiskLevel, l)))
	}
	for _, r := range pol.Rules() {
		t.ruleOpts = append(t.ruleOpts, metric.WithAttributeSet(attribute.NewSet(attribute.String(semconv.SecurityRuleName, r.ID))))
	}
	return t, nil
}

func (t *telemetry) record(ctx context.Context, c *batchCounts) {
	if !c.any {
		return
	}
	for k, n := range c.events {
		if n > 0 {
			t.events.Add(ctx, n, t.kindOpts[k])
		}
	}
	for l, n := range c.alerts {
		if n > 0 {
			t.alerts.Add(ctx, n, t.levelOpts[l])
		}
	}
	for i, n := range c.matches[:len(t.ruleOpts)] {
		if n > 0 {
			t.matches.Add(ctx, n, t.ruleOpts[i])
		}
	}
}

func (t *telemetry) shutdown() error {
	if t == nil || t.reg == nil {
		return nil
	}
	return t.reg.Unregister()
}
