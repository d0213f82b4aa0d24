package agentsessionreceiver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/internal/llmapi"
)

func TestIntentConfigDefaults(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if !cfg.DNS.Enabled || !cfg.TLS.Enabled || cfg.TLS.Capture != "metadata" || cfg.TLS.MaxCaptureBytes != 64<<10 ||
		len(cfg.DNS.Ports) != 1 || cfg.DNS.Ports[0] != 53 || cfg.DNS.QueryTimeout != 5*time.Second {
		t.Errorf("intent defaults %+v %+v", cfg.DNS, cfg.TLS)
	}
	cfg.DNS.Ports[0] = 1
	if createDefaultConfig().(*Config).DNS.Ports[0] != 53 {
		t.Error("default ports are shared")
	}
}

func TestValidateIntent(t *testing.T) {
	tests := []validateCase{
		{"capture off", func(c *Config) { c.TLS.Capture = "off" }, ""},
		{"capture full", func(c *Config) { c.TLS.Capture = "full" }, ""},
		{"capture empty", func(c *Config) { c.TLS.Capture = "" }, "tls.capture"},
		{"capture bogus", func(c *Config) { c.TLS.Capture = "all" }, `tls.capture: "all"`},
		{"cap 1", func(c *Config) { c.TLS.MaxCaptureBytes = 1 }, ""},
		{"cap 1 MiB", func(c *Config) { c.TLS.MaxCaptureBytes = 1 << 20 }, ""},
		{"cap 0", func(c *Config) { c.TLS.MaxCaptureBytes = 0 }, "tls.max_capture_bytes: 0"},
		{"cap too big", func(c *Config) { c.TLS.MaxCaptureBytes = 1<<20 + 1 }, "tls.max_capture_bytes"},
		{"conns 0", func(c *Config) { c.TLS.MaxConnections = 0 }, "tls.max_connections: 0"},
		{"body 0", func(c *Config) { c.TLS.MaxBodyBytes = 0 }, "tls.max_body_bytes: 0"},
		{"five ports", func(c *Config) { c.DNS.Ports = []uint16{53, 54, 55, 56, 57} }, "dns.ports: 5 ports"},
		{"port 0", func(c *Config) { c.DNS.Ports = []uint16{0} }, "dns.ports[0]"},
		{"no ports", func(c *Config) { c.DNS.Ports = nil }, "dns.ports: empty"},
		{"no ports, dns off", func(c *Config) { c.DNS.Ports, c.DNS.Enabled = nil, false }, ""},
		{"timeout 0", func(c *Config) { c.DNS.QueryTimeout = 0 }, "dns.query_timeout"},
		{"pending 0", func(c *Config) { c.DNS.MaxPendingQueries = 0 }, "dns.max_pending_queries: 0"},
		{"relative resolv.conf", func(c *Config) { c.DNS.ResolvConf = "resolv.conf" }, "dns.resolv_conf"},
		{"no resolv.conf", func(c *Config) { c.DNS.ResolvConf = "" }, ""},
	}
	runValidateCases(t, tests)
}

func TestIntentWiring(t *testing.T) {
	dir := t.TempDir()
	rc := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(rc, []byte("nameserver 10.1.2.3\nnameserver 10.1.2.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.DNS.ResolvConf = rc
	cfg.TLS.Capture = "full"
	ic, err := cfg.sessionIntent()
	if err != nil {
		t.Fatal(err)
	}
	if len(ic.SystemResolvers) != 2 || ic.SystemResolvers[0].String() != "10.1.2.3" || ic.Capture != llmapi.CaptureFull ||
		ic.TLSMaxCapture != 64<<10 || ic.HTTP.MaxBodyBytes != 4<<20 {
		t.Errorf("session intent %+v", ic)
	}
	ko := cfg.kernelIntent()
	if !ko.DNS || !ko.TLS || ko.TLSMaxCapture != 64<<10 || ko.DNSPorts[0] != 53 {
		t.Errorf("kernel intent %+v", ko)
	}
	cfg.DNS.ResolvConf = filepath.Join(dir, "missing")
	if _, err := cfg.sessionIntent(); err == nil || !strings.Contains(err.Error(), "dns.resolv_conf") {
		t.Errorf("missing resolv.conf: %v", err)
	}
}
