package agentscoreprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

func ptr[T any](v T) *T { return &v }

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(componentType, name).String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name string
		want *Config
	}{
		{name: "", want: createDefaultConfig()},
		{name: "inline", want: &Config{
			SensitivePaths:        []string{"~/.aws/*", "~/.ssh/", "**/*.pem"},
			RiskyBinaries:         []string{"curl", "socat", "/opt/tools/*"},
			AllowedDestinations:   []string{"*.github.com", "api.anthropic.com", "10.0.0.0/8", "2001:db8::/32"},
			ModelProviders:        policy.DefaultModelProviders,
			AlertThreshold:        60,
			ChainWindow:           5 * time.Minute,
			MaxUniqueDestinations: 20,
			EgressVolumeBytes:     5_000_000,
			StandardPorts:         []int{80, 443, 8443},
			SystemResolvers:       []string{"127.0.0.53", "10.0.0.2"},
			DNS:                   DNSConfig{MaxLabelLength: 40, EntropyThreshold: 3.8, EntropyMinLength: 20},
			SessionState:          SessionStateConfig{MaxSessions: 64, TTL: 30 * time.Minute},
			Rules: map[string]policy.RuleOverride{
				"net.non_standard_port": {Enabled: ptr(false)},
				"file.dotenv":           {Score: ptr(65)},
			},
			CustomRules: []policy.CustomRule{
				{ID: "custom.tfstate", Category: "credential_access", Score: 70, Description: "Terraform state holds secrets", Paths: []string{"**/*.tfstate"}},
				{ID: "custom.pastebin", Category: "exfiltration", Score: 80, Description: "connect to a paste site", Destinations: []string{"pastebin.com", "*.pastebin.com"}},
			},
		}},
		{name: "seed_file", want: func() *Config {
			c := createDefaultConfig()
			c.PolicyFile = "../../testdata/policy/seed.toml"
			return c
		}()},
		{name: "extended_file", want: func() *Config {
			c := createDefaultConfig()
			c.PolicyFile = "testdata/policy/extended.toml"
			c.Rules = map[string]policy.RuleOverride{"binary.transfer": {Score: ptr(25)}}
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run("valid/"+tt.name, func(t *testing.T) {
			cfg := loadConfig(t, tt.name)
			assert.Equal(t, tt.want, cfg)
			require.NoError(t, confmap.Validate(cfg))
			pol, warnings, err := cfg.compilePolicy()
			require.NoError(t, err)
			assert.Empty(t, warnings)
			assert.NotNil(t, pol)
		})
	}
}

func TestSeedFileEqualsDefaults(t *testing.T) {
	fromFile, _, err := loadConfig(t, "seed_file").compilePolicy()
	require.NoError(t, err)
	defaults, _, err := createDefaultConfig().compilePolicy()
	require.NoError(t, err)
	assert.Equal(t, len(defaults.Rules()), len(fromFile.Rules()))
	for i := range defaults.Rules() {
		assert.Equal(t, defaults.Rules()[i], fromFile.Rules()[i])
	}
}

func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"bad_threshold", []string{"alert_threshold: must be between 0 and 100, got 150"}},
		{"bad_glob", []string{`sensitive_paths[1]: invalid glob "/srv/[secrets/*"`}},
		{"unknown_rule", []string{`rules."file.nope": unknown rule id "file.nope"`}},
		{"bad_rule_score", []string{`rules."enforce.denied".score: must be at least 70`}},
		{"bad_policy_file", []string{`policy_file "testdata/policy/bad_glob.toml": line 5: agent_monitoring.sensitive_paths[2]: invalid glob "/srv/[secrets/*"`}},
		{"missing_policy_file", []string{`policy_file "testdata/policy/does_not_exist.toml": cannot read`}},
		{"broken_policy_file", []string{`policy_file "testdata/policy/syntax_error.toml": line 4`}},
		{"bad_window", []string{"chain_window: must be more than 0"}},
		{"bad_dns", []string{"dns.max_label_length: must be between 1 and 63"}},
		{"bad_sessions", []string{"session_state.max_sessions: must be between 1 and 1000000, got 0", "session_state.ttl: must be more than 0"}},
		{"bad_custom", []string{"custom_rules[0]: set exactly one matcher"}},
		{"bad_egress_volume", []string{"egress_volume_bytes: must be at least 1, got 0"}},
		{"bad_resolver", []string{`system_resolvers[0]: "dns.google" is not an IP address`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadConfig(t, tt.name)
			err := confmap.Validate(cfg)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			// Creating the processor fails the same way, whether or not the
			// collector validated first.
			_, cerr := newScorer(testSettings(t), cfg)
			require.Error(t, cerr)
			assert.Contains(t, cerr.Error(), tt.want[0])
		})
	}
}

func TestConfigStruct(t *testing.T) {
	require.NoError(t, componenttest.CheckConfigStruct(createDefaultConfig()))
}
