// Package agentscoreprocessor implements agent_score: it applies the
// agentwatch security policy to the events agent_session emits, scores each
// one (agent.risk.*, security_rule.*, severity), finds cross-event patterns
// within a session (exfiltration chains, many destinations, fresh downloads
// made executable) and rolls the scores up onto process and session spans.
package agentscoreprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/agentwatch/agentwatch/internal/sharedcomponent"
)

const typeStr = "agent_score"

var (
	componentType = component.MustNewType(typeStr)
	stability     = component.StabilityLevelDevelopment
)

// scorers lets the logs and traces pipelines of one processor id share one
// instance, so a trace's spans see the scores of its logs.
var scorers = sharedcomponent.NewMap[component.ID, *scorer]()

// NewFactory returns the agent_score processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		componentType,
		func() component.Config { return createDefaultConfig() },
		processor.WithLogs(createLogs, stability),
		processor.WithTraces(createTraces, stability),
	)
}

var capabilities = consumer.Capabilities{MutatesData: true}

func loadScorer(set processor.Settings, cfg component.Config) (*sharedcomponent.Component[*scorer], error) {
	return scorers.LoadOrStore(set.ID, func() (*scorer, error) {
		return newScorer(set, cfg.(*Config))
	})
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	sc, err := loadScorer(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, sc.Unwrap().processLogs,
		processorhelper.WithCapabilities(capabilities),
		processorhelper.WithStart(sc.Start),
		processorhelper.WithShutdown(sc.Shutdown))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	sc, err := loadScorer(set, cfg)
	if err != nil {
		return nil, err
	}
	sc.Unwrap().eng.SetTrackSpans(true)
	return processorhelper.NewTraces(ctx, set, cfg, next, sc.Unwrap().processTraces,
		processorhelper.WithCapabilities(capabilities),
		processorhelper.WithStart(sc.Start),
		processorhelper.WithShutdown(sc.Shutdown))
}
