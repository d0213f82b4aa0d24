package agentscoreprocessor

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

// Config is the agent_score configuration. README.md is its reference.
type Config struct {
	// PolicyFile is a TOML policy ([agent_monitoring] lists, optional
	// [rules.<id>] overrides and [[custom_rules]]). What it sets is applied
	// on top of the inline policy below.
	PolicyFile string `mapstructure:"policy_file"`

	// The seed policy lists, inline. Defaults are the seed policy.
	SensitivePaths      []string `mapstructure:"sensitive_paths"`
	RiskyBinaries       []string `mapstructure:"risky_binaries"`
	AllowedDestinations []string `mapstructure:"allowed_destinations"`
	// ModelProviders are allowed as destinations besides
	// allowed_destinations: the built-in agents' model APIs by default, so
	// an agent's calls to its provider never score. [] turns that off.
	ModelProviders []string `mapstructure:"model_providers"`

	// AlertThreshold: an event whose score is > 0 and ≥ this is an alert.
	AlertThreshold int `mapstructure:"alert_threshold"`

	// Rules disables or re-scores rules by id.
	Rules map[string]policy.RuleOverride `mapstructure:"rules"`
	// CustomRules adds rules.
	CustomRules []policy.CustomRule `mapstructure:"custom_rules"`

	// ChainWindow is how far apart the steps of an exfiltration chain may be.
	ChainWindow time.Duration `mapstructure:"chain_window"`
	// MaxUniqueDestinations: more unique destinations in one session fire
	// net.many_destinations.
	MaxUniqueDestinations int `mapstructure:"max_unique_destinations"`
	// EgressVolumeBytes: a TCP connection to a destination that is not
	// allowed that carried at least this many bytes out (agent.net.close)
	// fires net.egress_volume.
	EgressVolumeBytes int64 `mapstructure:"egress_volume_bytes"`
	// StandardPorts are the ports net.non_standard_port accepts.
	StandardPorts []int `mapstructure:"standard_ports"`
	// SystemResolvers are the resolvers dns.foreign_resolver accepts; empty
	// means the nameservers of /etc/resolv.conf plus 127.0.0.53.
	SystemResolvers []string `mapstructure:"system_resolvers"`

	DNS          DNSConfig          `mapstructure:"dns"`
	SessionState SessionStateConfig `mapstructure:"session_state"`

	// homes replaces the user database in tests.
	homes *pathglob.Homes
	// resolvConf replaces /etc/resolv.conf in tests.
	resolvConf string
}

// DNSConfig tunes the tunnelling heuristics.
type DNSConfig struct {
	// MaxLabelLength: a longer label fires dns.long_label.
	MaxLabelLength int `mapstructure:"max_label_length"`
	// EntropyThreshold in bits per character: a label of at least
	// EntropyMinLength characters with more entropy fires dns.high_entropy_label.
	EntropyThreshold float64 `mapstructure:"entropy_threshold"`
	EntropyMinLength int     `mapstructure:"entropy_min_length"`
}

// SessionStateConfig bounds the per-session state.
type SessionStateConfig struct {
	// MaxSessions is the size of the session LRU.
	MaxSessions int `mapstructure:"max_sessions"`
	// TTL forgets a session this long after its last event.
	TTL time.Duration `mapstructure:"ttl"`
}

// Defaults.
const (
	defaultAlertThreshold        = 70
	defaultChainWindow           = 10 * time.Minute
	defaultMaxUniqueDestinations = 10
	defaultEgressVolumeBytes     = 1 << 20
	defaultMaxSessions           = 512
	defaultSessionTTL            = time.Hour
)

func createDefaultConfig() *Config {
	return &Config{
		SensitivePaths:        append([]string(nil), policy.SeedSensitivePaths...),
		RiskyBinaries:         append([]string(nil), policy.SeedRiskyBinaries...),
		AllowedDestinations:   append([]string(nil), policy.SeedAllowedDestinations...),
		ModelProviders:        append([]string(nil), policy.DefaultModelProviders...),
		AlertThreshold:        defaultAlertThreshold,
		ChainWindow:           defaultChainWindow,
		MaxUniqueDestinations: defaultMaxUniqueDestinations,
		EgressVolumeBytes:     defaultEgressVolumeBytes,
		StandardPorts:         policy.DefaultStandardPorts(),
		DNS: DNSConfig{
			MaxLabelLength:   policy.DefaultDNSMaxLabelLength,
			EntropyThreshold: policy.DefaultDNSEntropyThreshold,
			EntropyMinLength: policy.DefaultDNSEntropyMinLength,
		},
		SessionState: SessionStateConfig{MaxSessions: defaultMaxSessions, TTL: defaultSessionTTL},
	}
}

// Validate checks the settings and compiles the policy, reading the policy
// file, so that every mistake fails the collector at startup with the field
// (and for the file, the line) named.
func (cfg *Config) Validate() error {
	if err := cfg.validateSettings(); err != nil {
		return err
	}
	_, _, err := cfg.compilePolicy()
	return err
}

func (cfg *Config) validateSettings() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.AlertThreshold < 0 || cfg.AlertThreshold > 100 {
		bad("alert_threshold: must be between 0 and 100, got %d", cfg.AlertThreshold)
	}
	if cfg.ChainWindow <= 0 || cfg.ChainWindow > 24*time.Hour {
		bad("chain_window: must be more than 0 and at most 24h, got %v", cfg.ChainWindow)
	}
	if cfg.MaxUniqueDestinations < 1 || cfg.MaxUniqueDestinations > 10000 {
		bad("max_unique_destinations: must be between 1 and 10000, got %d", cfg.MaxUniqueDestinations)
	}
	if cfg.EgressVolumeBytes < 1 {
		bad("egress_volume_bytes: must be at least 1, got %d", cfg.EgressVolumeBytes)
	}
	if cfg.DNS.MaxLabelLength < 1 || cfg.DNS.MaxLabelLength > 63 {
		bad("dns.max_label_length: must be between 1 and 63 (the DNS limit), got %d", cfg.DNS.MaxLabelLength)
	}
	if math.IsNaN(cfg.DNS.EntropyThreshold) || cfg.DNS.EntropyThreshold <= 0 || cfg.DNS.EntropyThreshold > 8 {
		bad("dns.entropy_threshold: must be more than 0 and at most 8 bits per character, got %v", cfg.DNS.EntropyThreshold)
	}
	if cfg.DNS.EntropyMinLength < 1 || cfg.DNS.EntropyMinLength > 63 {
		bad("dns.entropy_min_length: must be between 1 and 63, got %d", cfg.DNS.EntropyMinLength)
	}
	if cfg.SessionState.MaxSessions < 1 || cfg.SessionState.MaxSessions > 1_000_000 {
		bad("session_state.max_sessions: must be between 1 and 1000000, got %d", cfg.SessionState.MaxSessions)
	}
	if cfg.SessionState.TTL <= 0 {
		bad("session_state.ttl: must be more than 0, got %v", cfg.SessionState.TTL)
	}
	return errors.Join(errs...)
}

// compilePolicy merges the inline policy and the policy file and compiles
// them. The warnings are ignored keys of the file.
func (cfg *Config) compilePolicy() (*policy.Policy, []string, error) {
	layers := []policy.Layer{policy.InlineLayer(cfg.SensitivePaths, cfg.RiskyBinaries, cfg.AllowedDestinations, cfg.Rules, cfg.CustomRules)}
	var warnings []string
	if cfg.PolicyFile != "" {
		l, w, err := policy.LoadFile(cfg.PolicyFile)
		if err != nil {
			return nil, w, err
		}
		warnings = w
		layers = append(layers, l)
	}
	p, err := policy.Compile(layers, policy.Options{
		StandardPorts:       cfg.StandardPorts,
		DNSMaxLabelLength:   cfg.DNS.MaxLabelLength,
		DNSEntropyThreshold: cfg.DNS.EntropyThreshold,
		DNSEntropyMinLength: cfg.DNS.EntropyMinLength,
		SystemResolvers:     cfg.SystemResolvers,
		ResolvConf:          cfg.resolvConf,
		Homes:               cfg.homes,
		ModelProviders:      cfg.ModelProviders,
	})
	return p, warnings, err
}
