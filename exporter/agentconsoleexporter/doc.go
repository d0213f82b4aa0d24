// Package agentconsoleexporter implements the agent_console exporter: it
// prints agent sessions in the agentwatch telemetry contract as compact,
// indented process trees, one line per event, as they happen. It is the
// local view of what an agent does; real backends get the same data through
// the OTLP exporters.
package agentconsoleexporter
