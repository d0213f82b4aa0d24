package agentconsoleexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/agentwatch/agentwatch/internal/sharedcomponent"
)

const stability = component.StabilityLevelAlpha

var componentType = component.MustNewType("agent_console")

// The logs and traces pipelines of one component id share one instance, so
// that spans find the process tree the logs built and both write to one
// output in one order.
var exporters = sharedcomponent.NewMap[component.ID, *consoleExporter]()

// NewFactory returns the factory of the agent_console exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		componentType,
		func() component.Config { return createDefaultConfig() },
		exporter.WithLogs(createLogs, stability),
		exporter.WithTraces(createTraces, stability),
	)
}

func sharedExporter(set exporter.Settings, cfg component.Config) (*sharedcomponent.Component[*consoleExporter], error) {
	c := cfg.(*Config)
	return exporters.LoadOrStore(set.ID, func() (*consoleExporter, error) {
		return newConsoleExporter(c, set.Logger), nil
	})
}

// No queue and no retry: the console must print in arrival order, and a
// failed write to a terminal is not worth repeating.
func helperOptions(shared *sharedcomponent.Component[*consoleExporter]) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(shared.Start),
		exporterhelper.WithShutdown(shared.Shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	shared, err := sharedExporter(set, cfg)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, shared.Unwrap().consumeLogs, helperOptions(shared)...)
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	shared, err := sharedExporter(set, cfg)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, shared.Unwrap().consumeTraces, helperOptions(shared)...)
}
