// Package agentsessionreceiver implements the agent_session receiver: it
// recognises AI coding agent processes, follows their process tree as a
// session from the kernel with eBPF, and emits what the session does as OTel
// logs (one per event) and traces (session → processes).
package agentsessionreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/agentwatch/agentwatch/internal/sharedcomponent"
)

// TypeStr is the component type in collector configs.
const TypeStr = "agent_session"

var componentType = component.MustNewType(TypeStr)

// NewFactory returns the agent_session receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		componentType,
		createDefaultConfig,
		receiver.WithLogs(createLogs, component.StabilityLevelDevelopment),
		receiver.WithTraces(createTraces, component.StabilityLevelDevelopment),
	)
}

// One BPF instance serves the logs and the traces pipeline of one receiver id.
var receivers = sharedcomponent.NewMap[component.ID, *sessionReceiver]()

func shared(set receiver.Settings, cfg component.Config) (*sharedcomponent.Component[*sessionReceiver], error) {
	return receivers.LoadOrStore(set.ID, func() (*sessionReceiver, error) {
		return newSessionReceiver(set, cfg.(*Config))
	})
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := shared(set, cfg)
	if err != nil {
		return nil, err
	}
	r.Unwrap().setLogs(next)
	return r, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := shared(set, cfg)
	if err != nil {
		return nil, err
	}
	r.Unwrap().setTraces(next)
	return r, nil
}
