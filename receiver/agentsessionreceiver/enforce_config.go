package agentsessionreceiver

import (
	"fmt"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kernel"
)

// Enforcement modes and actions (config `enforce:`).
const (
	EnforceModeMonitor = "monitor"
	EnforceModeEnforce = "enforce"
	EnforceActionDeny  = "deny"
	EnforceActionKill  = "kill"
)

// EnforceConfig holds deny rules for session processes. Processes outside
// agent sessions are never affected.
type EnforceConfig struct {
	// Mode: monitor (default) reports what the rules would deny as
	// agent.enforce.action "audit" events; enforce denies (LSM backend) or
	// kills (action: kill).
	Mode string `mapstructure:"mode"`
	// Action: deny (default; the LSM hook returns EPERM) or kill (SIGKILL;
	// the only enforcement the tracepoint backend can do, and it does not
	// stop the syscall itself).
	Action string `mapstructure:"action"`
	// DenyOpen are path globs (policy semantics) the kernel can evaluate:
	// literal absolute or ~/ paths, and literal directories followed by /**.
	DenyOpen []string `mapstructure:"deny_open"`
	// AllowConnect: IPs or CIDRs; a connect elsewhere is denied. Empty: no
	// allowlist rule.
	AllowConnect []string `mapstructure:"allow_connect"`
	// DenyPorts: destination ports a connect is denied to.
	DenyPorts []int `mapstructure:"deny_ports"`
}

func defaultEnforceConfig() EnforceConfig {
	return EnforceConfig{Mode: EnforceModeMonitor, Action: EnforceActionDeny}
}

// enabled: there is at least one rule.
func (e *EnforceConfig) enabled() bool {
	return len(e.DenyOpen)+len(e.AllowConnect)+len(e.DenyPorts) > 0
}

func (c *Config) validateEnforce() []error {
	var errs []error
	e := &c.Enforce
	switch e.Mode {
	case EnforceModeMonitor, EnforceModeEnforce:
	default:
		errs = append(errs, fmt.Errorf("enforce.mode: %q is not one of monitor, enforce", e.Mode))
	}
	switch e.Action {
	case EnforceActionDeny, EnforceActionKill:
	default:
		errs = append(errs, fmt.Errorf("enforce.action: %q is not one of deny, kill", e.Action))
	}
	// Homes do not matter for validation: only the patterns are checked.
	if _, err := e.kernel(nil); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// kernel compiles the rules; "~/" patterns expand to homes.
func (e *EnforceConfig) kernel(homes []string) (kernel.EnforceOptions, error) {
	mode := kernel.EnforceOff
	if e.enabled() {
		mode = e.Mode
	}
	return kernel.CompileEnforce(mode, e.Action == EnforceActionKill, e.DenyOpen, e.AllowConnect, e.DenyPorts, homes)
}
