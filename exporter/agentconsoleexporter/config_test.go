package agentconsoleexporter

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestConfigStruct(t *testing.T) {
	require.NoError(t, componenttest.CheckConfigStruct(NewFactory().CreateDefaultConfig()))
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, ColorAuto, cfg.Color)
	assert.Equal(t, PathStdout, cfg.Path)
	assert.Equal(t, SpansGenAI, cfg.Spans)
	assert.Equal(t, defaultMaxSessions, cfg.MaxSessions)
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig()
	custom.Color = ColorAlways
	custom.Path = "/var/log/agentwatch/console.log"
	custom.Spans = SpansAll
	custom.MaxSessions = 16

	stderr := createDefaultConfig()
	stderr.Path = PathStderr
	stderr.Color = ColorNever

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string // a substring naming the field
	}{
		{id: component.NewID(componentType), want: createDefaultConfig()},
		{id: component.NewIDWithName(componentType, "file"), want: custom},
		{id: component.NewIDWithName(componentType, "stderr"), want: stderr},
		{id: component.NewIDWithName(componentType, "bad_color"), wantErr: `color: must be one of auto, always, never; got "sometimes"`},
		{id: component.NewIDWithName(componentType, "bad_spans"), wantErr: `spans: must be one of genai, all; got "everything"`},
		{id: component.NewIDWithName(componentType, "bad_max_sessions"), wantErr: "max_sessions: must be greater than 0"},
		{id: component.NewIDWithName(componentType, "unknown_field"), wantErr: "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig()
			err = sub.Unmarshal(cfg)
			if err == nil {
				err = confmap.Validate(cfg)
			}
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateReportsEveryBadField(t *testing.T) {
	cfg := &Config{Color: "red", Spans: "some", MaxSessions: -1, Path: "  "}
	err := cfg.Validate()
	require.Error(t, err)
	for _, field := range []string{"color:", "spans:", "max_sessions:", "path:"} {
		assert.Contains(t, err.Error(), field)
	}
}
