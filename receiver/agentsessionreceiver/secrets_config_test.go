package agentsessionreceiver

import (
	"strings"
	"testing"
)

func TestSecretsConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sc := cfg.sessionSecrets()
	if !sc.Enabled || !sc.FingerprintFiles || sc.MaxFileBytes != 64<<10 || len(sc.Files) != 7 || sc.Files[0] != "~/.aws/*" {
		t.Errorf("defaults %+v", sc)
	}
	ic, err := cfg.sessionIntent()
	if err != nil || !ic.Secrets.Enabled {
		t.Errorf("intent %+v %v", ic.Secrets, err)
	}
	cfg.Secrets.Files = []string{"~/.netrc", "[bad"}
	cfg.Secrets.MaxFileBytes = 0
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "secrets.files[1]") || !strings.Contains(err.Error(), "secrets.max_file_bytes: 0") {
		t.Errorf("validate: %v", err)
	}
	cfg.Secrets.Files = nil
	if f := cfg.sessionSecrets().Files; f == nil || len(f) != 0 {
		t.Errorf("configured empty: %v", f)
	}
}
