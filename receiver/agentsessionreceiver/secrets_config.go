package agentsessionreceiver

import (
	"fmt"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/session"
)

// SecretsConfig is the `secrets:` section: secrets in what a session sends
// to a model provider (needs tls.enabled).
type SecretsConfig struct {
	// Enabled scans every LLM request for key- and token-shaped strings,
	// private keys and fingerprinted file content, plain or encoded.
	Enabled bool `mapstructure:"enabled"`
	// Files are the sensitive path globs whose content is fingerprinted
	// when a session process opens one for reading ("~": the process's
	// home). Default: the seed policy's sensitive paths.
	Files []string `mapstructure:"files"`
	// FingerprintFiles reads those files (≤ max_file_bytes, through the
	// process's root) to recognise their content later.
	FingerprintFiles bool `mapstructure:"fingerprint_files"`
	// MaxFileBytes is read of each sensitive file (1..1 MiB).
	MaxFileBytes int `mapstructure:"max_file_bytes"`
}

const maxSecretFileBytes = 1 << 20

func defaultSecretsConfig() SecretsConfig {
	return SecretsConfig{
		Enabled: true, FingerprintFiles: true, MaxFileBytes: 64 << 10,
		Files: append([]string(nil), session.DefaultSecretFiles...),
	}
}

func (c *Config) validateSecrets() []error {
	var errs []error
	s := c.Secrets
	for i, f := range s.Files {
		if _, err := pathglob.Compile(f); err != nil {
			errs = append(errs, fmt.Errorf("secrets.files[%d]: %w", i, err))
		}
	}
	if s.MaxFileBytes < 1 || s.MaxFileBytes > maxSecretFileBytes {
		errs = append(errs, fmt.Errorf("secrets.max_file_bytes: %d is outside 1..%d", s.MaxFileBytes, maxSecretFileBytes))
	}
	return errs
}

func (c *Config) sessionSecrets() session.SecretsConfig {
	files := c.Secrets.Files
	if files == nil {
		files = []string{} // configured empty: no file is fingerprinted
	}
	return session.SecretsConfig{
		Enabled: c.Secrets.Enabled, Files: files,
		FingerprintFiles: c.Secrets.FingerprintFiles, MaxFileBytes: c.Secrets.MaxFileBytes,
	}
}
