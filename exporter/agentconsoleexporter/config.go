package agentconsoleexporter

import (
	"errors"
	"fmt"
	"strings"
)

// Colour modes.
const (
	ColorAuto   = "auto"
	ColorAlways = "always"
	ColorNever  = "never"
)

// Span selections for a traces pipeline.
const (
	// SpansGenAI prints only chat and execute_tool spans: the logs already
	// show every process, and these add what the logs lack (LLM latency,
	// tool runs).
	SpansGenAI = "genai"
	// SpansAll prints every span, for a traces-only pipeline.
	SpansAll = "all"
)

// Output names that are streams, not files (the convention of zap's
// output_paths).
const (
	PathStdout = "stdout"
	PathStderr = "stderr"
)

// Config configures the agent_console exporter.
type Config struct {
	// Color: auto (ANSI colour only when the output is a terminal), always
	// or never.
	Color string `mapstructure:"color"`

	// Path is where the lines go: "" or "stdout" (default), "stderr", or a
	// file, which is created if missing and appended to.
	Path string `mapstructure:"path"`

	// Spans chooses which spans of a traces pipeline are printed: genai or
	// all. Logs pipelines ignore it.
	Spans string `mapstructure:"spans"`

	// MaxSessions bounds the per-session state (process tree, counters)
	// for sessions whose end event never arrives; the least recently seen
	// one is dropped first.
	MaxSessions int `mapstructure:"max_sessions"`

	// Prevent unkeyed literal initialisation.
	_ struct{}
}

const defaultMaxSessions = 1024

func createDefaultConfig() *Config {
	return &Config{
		Color:       ColorAuto,
		Path:        PathStdout,
		Spans:       SpansGenAI,
		MaxSessions: defaultMaxSessions,
	}
}

// Validate reports every invalid field, each named as in the YAML.
func (c *Config) Validate() error {
	var errs []error
	switch c.Color {
	case ColorAuto, ColorAlways, ColorNever:
	default:
		errs = append(errs, fmt.Errorf("color: must be one of %s, %s, %s; got %q", ColorAuto, ColorAlways, ColorNever, c.Color))
	}
	switch c.Spans {
	case SpansGenAI, SpansAll:
	default:
		errs = append(errs, fmt.Errorf("spans: must be one of %s, %s; got %q", SpansGenAI, SpansAll, c.Spans))
	}
	if c.MaxSessions <= 0 {
		errs = append(errs, fmt.Errorf("max_sessions: must be greater than 0; got %d", c.MaxSessions))
	}
	if c.Path != "" && strings.TrimSpace(c.Path) == "" {
		errs = append(errs, errors.New("path: must not be blank; leave it out for stdout"))
	}
	return errors.Join(errs...)
}
