package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/internal/testenv"
)

// Every shipped config must pass `otelcol-agentwatch validate`. The configs
// for the Datadog build (config/datadog-build) need the contrib datadog
// components, which only `make build-datadog` links in.
func TestConfigsValidate(t *testing.T) {
	bin := testenv.BuildCollector(t)
	configs, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, configs)
	for _, c := range configs {
		t.Run(filepath.Base(c), func(t *testing.T) {
			cmd := exec.Command(bin, "validate", "--config", c)
			// What the backend configs read from the environment.
			cmd.Env = append(os.Environ(),
				"GRAFANA_CLOUD_OTLP_ENDPOINT=https://otlp-gateway.example.net/otlp",
				"GRAFANA_CLOUD_AUTH=dGVzdDp0ZXN0",
			)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
		})
	}
}

// Without the privileges to load BPF programs the collector must say what is
// missing and how to fix it, not dump a stack trace.
func TestUnprivilegedStartIsExplained(t *testing.T) {
	testenv.RequireRoot(t) // to drop to nobody
	bin := testenv.BuildCollector(t)
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	b, err := os.ReadFile(bin)
	require.NoError(t, err)
	exe := filepath.Join(dir, "otelcol-agentwatch")
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	cfg, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "agentwatch.yaml"))
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "agentwatch.yaml")
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o644))

	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "--config", cfgPath)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "an unprivileged collector cannot load BPF programs")
	text := string(out)
	require.Contains(t, text, "not allowed to load BPF programs")
	require.Contains(t, text, "run as root")
	require.Contains(t, text, "CAP_BPF")
	require.False(t, strings.Contains(text, "goroutine ") || strings.Contains(text, "panic:"), "no stack trace:\n%s", text)
}
