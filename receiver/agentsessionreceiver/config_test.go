package agentsessionreceiver

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(name string) component.ID { return component.NewIDWithName(componentType, name) }
	custom := &Config{
		Hooks: HooksTracepoint,
		Agents: []AgentConfig{
			{Name: "my-agent", Executables: []string{"my-agent", "/opt/agents/*/bin/agent"}, CommandLine: "--serve"},
			{Name: "ci-agent", Cgroup: "/system.slice/ci-agent.service"},
			{Name: "py-agent", CommandLine: `agent\.py`},
		},
		BuiltinAgents: true,
		DisableAgents: []string{"goose", "aider"},
		Noise: NoiseConfig{PathPrefixes: []string{"/usr/lib", "/nix/store"}, DirNames: []string{"node_modules", ".tox"},
			Files: defaultNoiseFiles, Keep: defaultNoiseKeep, DropFailedOpens: true, DropPathOpens: true, AgentState: true,
			DropCleanExits: true},
		MaxArgsBytes:    8192,
		RingBufferSize:  16 << 20,
		MaxProcesses:    4096,
		SessionEndGrace: 5 * time.Second,
		DedupWindow:     500 * time.Millisecond,
		ProcPath:        "/host/proc",
		MaxSessions:     64,
		DNS:             defaultDNSConfig(),
		TLS:             defaultTLSConfig(),
		Secrets:         defaultSecretsConfig(),
		Enforce: EnforceConfig{Mode: "enforce", Action: "kill", DenyOpen: []string{"/etc/shadow", "~/.ssh/**", "/root/.aws/"},
			AllowConnect: []string{"10.0.0.0/8", "::1"}, DenyPorts: []int{22}},
	}
	custom.DNS.Ports, custom.DNS.QueryTimeout = []uint16{53, 5353}, 2*time.Second
	custom.TLS.Enabled, custom.TLS.Capture, custom.TLS.MaxCaptureBytes = false, "full", 1<<20
	onlyMine := createDefaultConfig().(*Config)
	onlyMine.BuiltinAgents = false
	onlyMine.Agents = []AgentConfig{{Name: "aw-test-agent", Executables: []string{"aw-test-agent"}}}

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr []string // substrings of the validation error, each naming a field
	}{
		{id: component.NewID(componentType), want: createDefaultConfig().(*Config)},
		{id: id("custom"), want: custom},
		{id: id("only_mine"), want: onlyMine},
		{id: id("bad_ring"), wantErr: []string{"ring_buffer_size: 5000"}},
		{id: id("bad_agents"), wantErr: []string{`agents[1].name: "dup" is used twice`, "agents[1].command_line", `disable_agents[0]: "clippy"`}},
		{id: id("bad_noise"), wantErr: []string{`noise.path_prefixes[0]: "usr/lib" is not absolute`, `noise.path_prefixes[1]: "/usr/share/" is not clean`, `noise.dir_names[0]: "a/b"`}},
		{id: id("bad_intent"), wantErr: []string{"dns.ports[0]: 0", "dns.query_timeout: 0s", `tls.capture: "everything"`, "tls.max_capture_bytes: 2000000"}},
		{id: id("bad_enforce"), wantErr: []string{`enforce.mode: "block"`, `enforce.action: "stop"`, `enforce.deny_open[1]: "**/*.pem": the kernel only evaluates absolute or ~/ paths`}},
		{id: id("bad_hooks"), wantErr: []string{`hooks: "kprobe"`, "max_args_bytes: 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.id.String(), func(t *testing.T) {
			sub, err := cm.Sub(tc.id.String())
			if err != nil {
				t.Fatal(err)
			}
			cfg := createDefaultConfig().(*Config)
			if err := sub.Unmarshal(cfg); err != nil {
				t.Fatal(err)
			}
			err = confmap.Validate(cfg)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if !reflect.DeepEqual(cfg, tc.want) {
					t.Fatalf("got  %+v\nwant %+v", cfg, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no validation error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Hooks != HooksAuto || !cfg.BuiltinAgents || cfg.MaxArgsBytes != 4096 || cfg.RingBufferSize != 8<<20 ||
		cfg.MaxProcesses != 32768 || cfg.SessionEndGrace != 2*time.Second || cfg.DedupWindow != 2*time.Second || cfg.ProcPath != "/proc" || cfg.MaxSessions != 1024 {
		t.Errorf("defaults %+v", cfg)
	}
	for _, p := range []string{"/usr/lib", "/usr/share", "/proc", "/sys", "/dev", "/root/go/pkg/mod", "/root/.cache/go-build"} {
		if !contains(cfg.Noise.PathPrefixes, p) {
			t.Errorf("default noise prefixes miss %s", p)
		}
	}
	for _, n := range []string{"node_modules", "site-packages", "target", "go-build"} {
		if !contains(cfg.Noise.DirNames, n) {
			t.Errorf("default noise dir names miss %s", n)
		}
	}
	if contains(cfg.Noise.DirNames, ".git") {
		t.Error(".git must not be noise")
	}
	// Defaults are copies: one receiver's config must not change another's.
	cfg.Noise.PathPrefixes[0] = "/changed"
	if createDefaultConfig().(*Config).Noise.PathPrefixes[0] == "/changed" {
		t.Error("default slices are shared")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	long := "/" + strings.Repeat("a", 62) // 63 bytes
	tests := []validateCase{
		{"lsm", func(c *Config) { c.Hooks = HooksLSM }, ""},
		{"empty hooks", func(c *Config) { c.Hooks = "" }, "hooks:"},
		{"args 1", func(c *Config) { c.MaxArgsBytes = 1 }, ""},
		{"args 8192", func(c *Config) { c.MaxArgsBytes = 8192 }, ""},
		{"args 8193", func(c *Config) { c.MaxArgsBytes = 8193 }, "max_args_bytes: 8193"},
		{"ring 4096", func(c *Config) { c.RingBufferSize = 4096 }, ""},
		{"ring 2048", func(c *Config) { c.RingBufferSize = 2048 }, "ring_buffer_size: 2048"},
		{"ring not a power of two", func(c *Config) { c.RingBufferSize = 3 << 20 }, "ring_buffer_size: 3145728 must be a power of two"},
		{"ring too big", func(c *Config) { c.RingBufferSize = 1 << 31 }, "ring_buffer_size"},
		{"max processes 0", func(c *Config) { c.MaxProcesses = 0 }, "max_processes: 0"},
		{"max processes over pid_max", func(c *Config) { c.MaxProcesses = 1 << 23 }, "max_processes"},
		{"grace 0", func(c *Config) { c.SessionEndGrace = 0 }, ""},
		{"grace negative", func(c *Config) { c.SessionEndGrace = -time.Second }, "session_end_grace"},
		{"dedup off", func(c *Config) { c.DedupWindow = 0 }, ""},
		{"dedup negative", func(c *Config) { c.DedupWindow = -time.Second }, "dedup_window"},
		{"dedup too long", func(c *Config) { c.DedupWindow = time.Hour }, "dedup_window: 1h0m0s"},
		{"relative proc", func(c *Config) { c.ProcPath = "proc" }, "proc_path"},
		{"sessions 0", func(c *Config) { c.MaxSessions = 0 }, "max_sessions: 0"},
		{"prefix 63 bytes", func(c *Config) { c.Noise.PathPrefixes = []string{long} }, ""},
		{"prefix 64 bytes", func(c *Config) { c.Noise.PathPrefixes = []string{long + "b"} }, "noise.path_prefixes[0]"},
		{"prefix root", func(c *Config) { c.Noise.PathPrefixes = []string{"/"} }, "every file open"},
		{"prefix dotdot", func(c *Config) { c.Noise.PathPrefixes = []string{"/usr/../etc"} }, `write "/etc"`},
		{"no prefixes", func(c *Config) { c.Noise.PathPrefixes = nil }, ""},
		{"dir name 31 bytes", func(c *Config) { c.Noise.DirNames = []string{strings.Repeat("d", 31)} }, ""},
		{"dir name 32 bytes", func(c *Config) { c.Noise.DirNames = []string{strings.Repeat("d", 32)} }, "noise.dir_names[0]"},
		{"dir name empty", func(c *Config) { c.Noise.DirNames = []string{"ok", ""} }, "noise.dir_names[1]"},
		{"dir name dotdot", func(c *Config) { c.Noise.DirNames = []string{".."} }, "noise.dir_names[0]"},
		{"nothing to match", func(c *Config) { c.BuiltinAgents = false }, "agents: empty while builtin_agents is false"},
		{"agent without criteria", func(c *Config) { c.Agents = []AgentConfig{{Name: "x"}} }, "agents[0]: needs at least one of"},
		{"disable all built-ins, keep one own", func(c *Config) {
			c.DisableAgents = matcher.BuiltinNames()
			c.Agents = []AgentConfig{{Name: "x", Cgroup: "/x.slice"}}
		}, ""},
	}
	runValidateCases(t, tests)
}

// validateCase changes the default config and says what Validate must
// report: "" for no error, else a part of the message (the field's name).
type validateCase struct {
	name string
	mod  func(*Config)
	want string
}

func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tc.mod(cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The receiver wires the config into the matcher and the tracker.
func TestConfigWiring(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Agents = []AgentConfig{{Name: "mine", Executables: []string{"mine"}}}
	cfg.DisableAgents = []string{"goose"}
	m, err := cfg.matchers()
	if err != nil {
		t.Fatal(err)
	}
	names := m.Names()
	if names[0] != "mine" || contains(names, "goose") || !contains(names, "claude-code") {
		t.Errorf("names %v", names)
	}
	sc := cfg.sessionConfig(m, "tracepoint")
	if sc.Matcher != m || sc.Grace != cfg.SessionEndGrace || sc.MaxSessions != cfg.MaxSessions || sc.MaxProcesses != int(cfg.MaxProcesses) || sc.ProcRoot != "/proc" || sc.Backend != "tracepoint" {
		t.Errorf("session config %+v", sc)
	}
}
