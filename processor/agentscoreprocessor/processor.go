package agentscoreprocessor

import (
	"context"
	"encoding/hex"
	"hash/fnv"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/engine"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

// scorer is the instance the logs and traces pipelines of one processor id
// share: one policy, one session state.
type scorer struct {
	logger *zap.Logger
	pol    *policy.Policy
	eng    *engine.Engine
	tel    *telemetry
}

var _ component.Component = (*scorer)(nil)

func newScorer(set processor.Settings, cfg *Config) (*scorer, error) {
	if err := cfg.validateSettings(); err != nil {
		return nil, err
	}
	pol, warnings, err := cfg.compilePolicy()
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		set.Logger.Warn(w)
	}
	eng := engine.New(engine.Settings{
		Policy:                pol,
		AlertThreshold:        cfg.AlertThreshold,
		ChainWindow:           cfg.ChainWindow,
		MaxUniqueDestinations: cfg.MaxUniqueDestinations,
		EgressVolumeBytes:     cfg.EgressVolumeBytes,
		MaxSessions:           cfg.SessionState.MaxSessions,
		SessionTTL:            cfg.SessionState.TTL,
	})
	tel, err := newTelemetry(set.TelemetrySettings, pol, eng)
	if err != nil {
		return nil, err
	}
	enabled := 0
	for i := range pol.Rules() {
		if pol.Enabled(i) {
			enabled++
		}
	}
	set.Logger.Info("agent_score policy loaded",
		zap.Int("rules", len(pol.Rules())), zap.Int("enabled", enabled),
		zap.String("policy_file", cfg.PolicyFile), zap.Int("alert_threshold", cfg.AlertThreshold))
	return &scorer{logger: set.Logger, pol: pol, eng: eng, tel: tel}, nil
}

// Start does nothing: the policy was compiled at creation, and the state
// needs no background work (expiry happens as events arrive).
func (s *scorer) Start(context.Context, component.Host) error { return nil }

// Shutdown is safe without Start.
func (s *scorer) Shutdown(context.Context) error { return s.tel.shutdown() }

// Severity for a level: none keeps the event's own severity (INFO when it
// has none); the others override it.
var levelSeverity = [len(engine.Levels)]struct {
	num  plog.SeverityNumber
	text string
}{
	{plog.SeverityNumberInfo, "INFO"},
	{plog.SeverityNumberWarn, "WARN"},
	{plog.SeverityNumberWarn2, "WARN2"},
	{plog.SeverityNumberError, "ERROR"},
	{plog.SeverityNumberFatal, "FATAL"},
}

func (s *scorer) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var counts batchCounts
	var ev engine.Event
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		resSession := strAttr(rl.Resource().Attributes(), semconv.SessionID)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				ev.Reset()
				name, sessionAttr := readEvent(lr.Attributes(), &ev)
				if name == "" {
					continue // not an agent_session event
				}
				ev.Kind = engine.KindOf(name)
				ev.Session = engine.SessionKey(lr.TraceID())
				if ev.Session == (engine.SessionKey{}) {
					id := sessionAttr
					if id == "" {
						id = resSession
					}
					ev.Session = sessionKeyOf(id)
				}
				ev.Span = engine.SpanKey(lr.SpanID())
				ev.Time = int64(lr.Timestamp())
				if ev.Time == 0 {
					ev.Time = int64(lr.ObservedTimestamp())
				}
				res := s.eng.Score(&ev)
				s.writeLog(lr, &res)
				counts.add(ev.Kind, &res)
			}
		}
	}
	s.tel.record(ctx, &counts)
	return ld, nil
}

// readEvent copies the attributes the engine reads into ev in one pass and
// returns event.name and session.id.
func readEvent(attrs pcommon.Map, ev *engine.Event) (name, session string) {
	attrs.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case semconv.EventName:
			name = v.Str()
		case semconv.SessionID:
			session = v.Str()
		case semconv.ProcessPID:
			ev.PID, ev.HasPID = intOf(v)
		case semconv.ProcessUserID:
			ev.UID, ev.HasUID = intOf(v)
		case semconv.ProcessWorkingDirectory:
			ev.Cwd = v.Str()
		case semconv.ProcessEnvHome:
			ev.EnvHome = v.Str()
		case semconv.UserHome:
			ev.UserHome = v.Str()
		case semconv.SecretCount:
			ev.SecretCount, _ = intOf(v)
		case semconv.SecretFiles:
			if v.Type() == pcommon.ValueTypeSlice {
				ev.SecretFiles = v.Slice().Len()
			}
		case semconv.ProcessExecutablePath:
			ev.Exe = v.Str()
		case semconv.ProcessCommandArgs:
			ev.Args = appendStrings(ev.Args, v)
		case semconv.ProcessProgram:
			ev.Program = v.Str()
		case semconv.ProcessFileless:
			ev.Fileless = boolOf(v)
		case semconv.ProcessStdinPipe:
			ev.StdinPipe, _ = intOf(v)
		case semconv.ProcessStdoutPipe:
			ev.StdoutPipe, _ = intOf(v)
		case semconv.FilePath:
			ev.Path = v.Str()
		case semconv.FileFlags:
			ev.Flags = v.Str()
		case semconv.FileCanonicalPath:
			ev.CanonicalPath = v.Str()
		case semconv.FileNewPath:
			ev.NewPath = v.Str()
		case semconv.FileMountPoint:
			ev.MountPoint = v.Str()
		case semconv.FileMountFlags:
			ev.MountFlags = v.Str()
		case semconv.FileMode:
			ev.Mode, ev.HasMode = modeOf(v)
		case semconv.FileProcTargetPID:
			ev.ProcTargetPID, ev.HasProcTargetPID = intOf(v)
		case semconv.FileResult:
			ev.Result, ev.HasResult = intOf(v)
		case semconv.NetworkPeerAddress:
			ev.PeerAddr = v.Str()
		case semconv.NetworkPeerPort:
			ev.Port, ev.HasPort = intOf(v)
		case semconv.ServerAddress:
			ev.ServerAddr = v.Str()
		case semconv.NetSentBytes:
			ev.SentBytes, ev.HasSentBytes = intOf(v)
		case semconv.PeerResolved:
			if v.Type() == pcommon.ValueTypeBool {
				ev.PeerResolved = 0
				if v.Bool() {
					ev.PeerResolved = 1
				}
			}
		case semconv.DNSQuestionName:
			ev.DNSName = v.Str()
		case semconv.DNSAnswers:
			ev.DNSAnswers = appendStrings(ev.DNSAnswers, v)
		case semconv.DNSResolverIsSystem:
			if v.Type() == pcommon.ValueTypeBool {
				ev.ResolverIsSystem = 0
				if v.Bool() {
					ev.ResolverIsSystem = 1
				}
			}
		case semconv.DNSResolver:
			ev.Resolver = v.Str()
		case semconv.EnforceAction:
			ev.EnforceAction = v.Str()
		}
		return true
	})
	return name, session
}

// intOf reads an integer attribute, tolerating a double or a decimal string
// from a receiver that typed it loosely.
func intOf(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return 0, false
		}
		return int64(d), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// boolOf reads a boolean attribute, tolerating "true" from a receiver that
// typed it loosely.
func boolOf(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeStr:
		b, err := strconv.ParseBool(v.Str())
		return err == nil && b
	}
	return false
}

// modeOf reads file.mode: an octal string ("0755", as the semantic
// conventions write it), or the mode as a number.
func modeOf(v pcommon.Value) (uint32, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		m, err := strconv.ParseUint(v.Str(), 8, 32)
		return uint32(m), err == nil
	case pcommon.ValueTypeInt:
		if m := v.Int(); m >= 0 && m <= math.MaxUint32 {
			return uint32(m), true
		}
	}
	return 0, false
}

func appendStrings(dst []string, v pcommon.Value) []string {
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		sl := v.Slice()
		for i := 0; i < sl.Len(); i++ {
			e := sl.At(i)
			if e.Type() == pcommon.ValueTypeStr {
				dst = append(dst, e.Str())
			} else {
				dst = append(dst, e.AsString())
			}
		}
	case pcommon.ValueTypeStr:
		dst = append(dst, v.Str())
	}
	return dst
}

// sessionKeyOf turns a session.id into a key when the record has no trace
// id: the id itself when it is 32 hex digits (what the receiver emits),
// else a 128-bit hash of it.
func sessionKeyOf(id string) engine.SessionKey {
	var k engine.SessionKey
	if id == "" {
		return k
	}
	if len(id) == 32 {
		if _, err := hex.Decode(k[:], []byte(id)); err == nil {
			return k
		}
	}
	h := fnv.New128a()
	_, _ = h.Write([]byte(id))
	copy(k[:], h.Sum(nil))
	return k
}

func (s *scorer) writeLog(lr plog.LogRecord, res *engine.Result) {
	attrs := lr.Attributes()
	lvl := engine.LevelIndex(res.Score)
	// One exact allocation instead of the doubling append of the first Put.
	extra := 3
	if res.Score > 0 {
		extra = 6
	}
	attrs.EnsureCapacity(attrs.Len() + extra)
	attrs.PutInt(semconv.RiskScore, int64(res.Score))
	attrs.PutStr(semconv.RiskLevel, engine.Levels[lvl])
	attrs.PutBool(semconv.Alert, res.Alert)
	if res.Score == 0 {
		if lr.SeverityNumber() == plog.SeverityNumberUnspecified {
			lr.SetSeverityNumber(levelSeverity[0].num)
			lr.SetSeverityText(levelSeverity[0].text)
		}
		return
	}
	s.putRules(attrs, &res.Rules)
	top := s.pol.Rule(res.Top)
	attrs.PutStr(semconv.SecurityRuleName, top.ID)
	attrs.PutStr(semconv.SecurityRuleCategory, top.Category)
	lr.SetSeverityNumber(levelSeverity[lvl].num)
	lr.SetSeverityText(levelSeverity[lvl].text)
}

// putRules writes the rule ids, highest score first (ties in catalogue
// order), so the first entry is the top rule.
func (s *scorer) putRules(attrs pcommon.Map, rules *policy.RuleSet) {
	var buf [32]int
	idx := buf[:0]
	rules.Each(func(i int) { idx = append(idx, i) })
	for a := 1; a < len(idx); a++ { // insertion sort: a handful of rules
		for b := a; b > 0 && s.pol.Rule(idx[b]).Score > s.pol.Rule(idx[b-1]).Score; b-- {
			idx[b], idx[b-1] = idx[b-1], idx[b]
		}
	}
	sl := attrs.PutEmptySlice(semconv.RiskRules)
	sl.EnsureCapacity(len(idx))
	for _, i := range idx {
		sl.AppendEmpty().SetStr(s.pol.Rule(i).ID)
	}
}

func (s *scorer) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		resSession := strAttr(rs.Resource().Attributes(), semconv.SessionID)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				key := engine.SessionKey(span.TraceID())
				if key == (engine.SessionKey{}) {
					key = sessionKeyOf(resSession)
				}
				var r engine.Rollup
				switch {
				case span.ParentSpanID().IsEmpty():
					r = s.eng.SessionRollup(key)
				case hasAttr(span.Attributes(), semconv.ProcessPID):
					r = s.eng.SpanRollup(key, engine.SpanKey(span.SpanID()))
				default:
					continue // LLM and tool spans carry no rollup
				}
				s.writeRollup(span.Attributes(), &r)
			}
		}
	}
	return td, nil
}

func strAttr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func hasAttr(m pcommon.Map, k string) bool {
	_, ok := m.Get(k)
	return ok
}

func (s *scorer) writeRollup(attrs pcommon.Map, r *engine.Rollup) {
	attrs.PutInt(semconv.RiskScore, int64(r.Max))
	attrs.PutStr(semconv.RiskLevel, engine.LevelOf(r.Max))
	attrs.PutInt(semconv.RiskAlertCount, int64(r.Alerts))
	attrs.PutBool(semconv.Alert, r.Alerts > 0)
	s.putRules(attrs, &r.Rules)
}
