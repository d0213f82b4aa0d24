package agentsessionreceiver

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/internal/dns"
	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kernel"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/session"
)

// DNSConfig is the `dns:` section: capture of the DNS queries and answers
// of session processes.
type DNSConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Ports are the resolver ports captured (UDP and TCP); at most 4.
	Ports []uint16 `mapstructure:"ports"`
	// QueryTimeout: a query without an answer by then is reported
	// unanswered.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`
	// MaxPendingQueries bounds the queries awaiting their answer.
	MaxPendingQueries int `mapstructure:"max_pending_queries"`
	// ResolvConf names the system resolvers; a query to any other is
	// flagged agent.dns.resolver_is_system=false.
	ResolvConf string `mapstructure:"resolv_conf"`
}

// TLSConfig is the `tls:` section: plaintext of TLS connections of session
// processes, read at SSL_read/SSL_write.
type TLSConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Capture is off | metadata | full: how much conversation content the
	// LLM records keep. Secrets are redacted in every mode.
	Capture string `mapstructure:"capture"`
	// MaxCaptureBytes caps the plaintext copied per SSL call (1..1 MiB).
	MaxCaptureBytes uint32 `mapstructure:"max_capture_bytes"`
	// MaxConnections bounds the connections reassembled at once.
	MaxConnections int `mapstructure:"max_connections"`
	// MaxBodyBytes caps the HTTP body kept per message.
	MaxBodyBytes int `mapstructure:"max_body_bytes"`
}

const (
	defaultDNSTimeout     = 5 * time.Second
	defaultDNSPending     = 1024
	defaultTLSCapture     = 64 << 10
	defaultTLSConns       = 1024
	defaultTLSBody        = 4 << 20
	maxDNSPendingLimit    = 1 << 20
	maxTLSConnsLimit      = 1 << 16
	maxTLSBodyLimit       = 64 << 20
	defaultResolvConfPath = "/etc/resolv.conf"
)

func defaultDNSConfig() DNSConfig {
	return DNSConfig{
		Enabled: true, Ports: []uint16{53}, QueryTimeout: defaultDNSTimeout,
		MaxPendingQueries: defaultDNSPending, ResolvConf: defaultResolvConfPath,
	}
}

func defaultTLSConfig() TLSConfig {
	return TLSConfig{
		Enabled: true, Capture: "metadata", MaxCaptureBytes: defaultTLSCapture,
		MaxConnections: defaultTLSConns, MaxBodyBytes: defaultTLSBody,
	}
}

func (c *Config) validateIntent() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	d := c.DNS
	if len(d.Ports) > kernel.MaxDNSPorts {
		add("dns.ports: %d ports; at most %d", len(d.Ports), kernel.MaxDNSPorts)
	}
	for i, p := range d.Ports {
		if p == 0 {
			add("dns.ports[%d]: 0 is not a port", i)
		}
	}
	if d.Enabled && len(d.Ports) == 0 {
		add("dns.ports: empty while dns.enabled is true")
	}
	if d.QueryTimeout <= 0 {
		add("dns.query_timeout: %v must be positive", d.QueryTimeout)
	}
	if d.MaxPendingQueries < 1 || d.MaxPendingQueries > maxDNSPendingLimit {
		add("dns.max_pending_queries: %d is outside 1..%d", d.MaxPendingQueries, maxDNSPendingLimit)
	}
	if d.ResolvConf != "" && !strings.HasPrefix(d.ResolvConf, "/") {
		add("dns.resolv_conf: %q is not an absolute path", d.ResolvConf)
	}
	s := c.TLS
	if _, err := llmapi.ParseCaptureMode(s.Capture); err != nil || s.Capture == "" {
		add("tls.capture: %q is not one of off, metadata, full", s.Capture)
	}
	if s.MaxCaptureBytes < 1 || s.MaxCaptureBytes > kernel.MaxTLSCapture {
		add("tls.max_capture_bytes: %d is outside 1..%d", s.MaxCaptureBytes, kernel.MaxTLSCapture)
	}
	if s.MaxConnections < 1 || s.MaxConnections > maxTLSConnsLimit {
		add("tls.max_connections: %d is outside 1..%d", s.MaxConnections, maxTLSConnsLimit)
	}
	if s.MaxBodyBytes < 1 || s.MaxBodyBytes > maxTLSBodyLimit {
		add("tls.max_body_bytes: %d is outside 1..%d", s.MaxBodyBytes, maxTLSBodyLimit)
	}
	return errs
}

func (c *Config) kernelIntent() kernel.IntentOptions {
	return kernel.IntentOptions{
		DNS: c.DNS.Enabled, DNSPorts: c.DNS.Ports,
		TLS: c.TLS.Enabled, TLSMaxCapture: c.TLS.MaxCaptureBytes,
		ProcRoot: c.ProcPath,
	}
}

// sessionIntent is the tracker's part; it reads the system resolvers. An
// unreadable resolv.conf leaves them unknown (the attribute is not set)
// rather than calling every resolver foreign.
func (c *Config) sessionIntent() (session.IntentConfig, error) {
	mode, _ := llmapi.ParseCaptureMode(c.TLS.Capture)
	ic := session.IntentConfig{
		DNS: c.DNS.Enabled, DNSTimeout: c.DNS.QueryTimeout, MaxPendingDNS: c.DNS.MaxPendingQueries,
		TLS: c.TLS.Enabled, Capture: mode, TLSMaxCapture: c.TLS.MaxCaptureBytes,
		MaxTLSConns: c.TLS.MaxConnections,
	}
	ic.Secrets = c.sessionSecrets()
	ic.HTTP.MaxBodyBytes = c.TLS.MaxBodyBytes
	ic.HTTP.MaxDecodedBytes = 2 * c.TLS.MaxBodyBytes
	if c.DNS.Enabled && c.DNS.ResolvConf != "" {
		rs, err := dns.SystemResolvers(c.DNS.ResolvConf)
		if err != nil {
			return ic, fmt.Errorf("dns.resolv_conf: %w", err)
		}
		ic.SystemResolvers = append([]netip.Addr{}, rs...)
	}
	return ic, nil
}
