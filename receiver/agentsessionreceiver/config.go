package agentsessionreceiver

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/matcher"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/session"
)

// Hook backends (`hooks`).
const (
	HooksAuto       = "auto"
	HooksLSM        = "lsm"
	HooksTracepoint = "tracepoint"
)

// Limits of the kernel side: the BPF programs' buffers and map keys.
const (
	maxArgsBytesLimit = 8192    // MAX_ARGS_BYTES in bpf/agentwatch.bpf.c
	prefixKeyBytes    = 64      // noise prefix key, with its trailing '/'
	nameKeyBytes      = 32      // noise dir name key, with its NUL
	minRingBuffer     = 4096    // one page
	maxRingBuffer     = 1 << 30 // the kernel refuses larger ring buffers on many configs
	pidMaxLimit       = 4194304 // PID_MAX_LIMIT: more processes cannot exist
	maxSessionsLimit  = 1 << 16 // userspace state bound
	defaultRingBuffer = 8 << 20 // 8 MiB
	defaultMaxProcs   = 32768   // kernel map entries
	defaultArgsBytes  = 4096    // argv bytes per exec
	defaultMaxSession = 1024    // sessions in progress
	defaultGrace      = 2 * time.Second
	defaultDedup      = 2 * time.Second
)

// AgentConfig is one `agents:` matcher: name, executables (globs on the
// basename or the full path), command_line (regex over argv joined by
// spaces), cgroup (cgroup v2 path prefix). Criteria given together must all
// match; any one of the executables may.
type AgentConfig = matcher.Spec

// NoiseConfig lists file paths dropped in the kernel, before the ring
// buffer. Setting a list replaces its defaults.
type NoiseConfig struct {
	// PathPrefixes are absolute directory prefixes, matched on whole
	// path segments: /usr/lib drops /usr/lib/x, not /usr/libexec/x.
	PathPrefixes []string `mapstructure:"path_prefixes"`
	// DirNames drop a path when any of its directories has this name.
	DirNames []string `mapstructure:"dir_names"`
	// Files are exact absolute paths dropped on every open: the loader's
	// and libc's fixed reads. Paths of 64 bytes or more are never dropped.
	Files []string `mapstructure:"files"`
	// DropFailedOpens drops failed opens (ENOENT and friends) of paths
	// that Keep does not name.
	DropFailedOpens bool `mapstructure:"drop_failed_opens"`
	// DropPathOpens drops O_PATH opens (no data read) of paths that Keep
	// does not name.
	DropPathOpens bool `mapstructure:"drop_path_opens"`
	// Keep are sensitive globs whose failed and O_PATH opens are always
	// reported: "~/dir/..." (every home), absolute literal prefixes, and
	// "**/<name-prefix>*" basenames. Defaults to the seed policy's
	// sensitive_paths.
	Keep []string `mapstructure:"keep"`
	// AgentState drops the opens of each agent's own state and cache files
	// (its matcher's state_paths; the built-ins have defaults) made by the
	// agent's own processes. A tool the agent runs is still reported.
	AgentState bool `mapstructure:"agent_state"`
	// GitMetadata drops git's own reads of its repository (.git, or the
	// --git-dir it was given) and of its config files. Writes stay, and
	// other programs' opens of the same files.
	GitMetadata bool `mapstructure:"git_metadata"`
	// DropCleanExits leaves out agent.process.exit for a process that
	// exited with code 0 (its span ends with process.exit.code); a non-zero
	// code or a signal is still a record.
	DropCleanExits bool `mapstructure:"drop_clean_exits"`
}

// Config is the agent_session receiver's configuration.
type Config struct {
	// Hooks selects the kernel hooks: auto (LSM when it loads and fires,
	// else tracepoints), lsm, or tracepoint.
	Hooks string `mapstructure:"hooks"`
	// Agents are the user's matchers, tried before the built-ins.
	Agents []AgentConfig `mapstructure:"agents"`
	// BuiltinAgents enables the built-in matchers (claude-code, codex, …).
	BuiltinAgents bool `mapstructure:"builtin_agents"`
	// DisableAgents switches individual built-ins off by name.
	DisableAgents []string    `mapstructure:"disable_agents"`
	Noise         NoiseConfig `mapstructure:"noise"`
	// MaxArgsBytes caps the argv copied per exec (1..8192); longer argv
	// is cut and flagged agent.process.args_truncated.
	MaxArgsBytes uint32 `mapstructure:"max_args_bytes"`
	// RingBufferSize is the kernel→userspace ring buffer in bytes: a power
	// of two, at least one page (4096).
	RingBufferSize uint32 `mapstructure:"ring_buffer_size"`
	// MaxProcesses bounds the processes followed, all sessions together.
	MaxProcesses uint32 `mapstructure:"max_processes"`
	// SessionEndGrace is how long a session whose last process exited
	// waits for late events before it ends.
	SessionEndGrace time.Duration `mapstructure:"session_end_grace"`
	// DedupWindow folds repeated opens of one file by one process (same
	// path, flags and result class) within it into one agent.file.open
	// record with agent.file.open_count; 0 disables.
	DedupWindow time.Duration `mapstructure:"dedup_window"`
	// ProcPath is procfs; /host/proc when the collector runs in a
	// container with the host's /proc mounted there.
	ProcPath string `mapstructure:"proc_path"`
	// MaxSessions bounds the sessions in progress.
	MaxSessions int `mapstructure:"max_sessions"`
	// DNS and TLS are the intent layer (intent_config.go).
	DNS DNSConfig `mapstructure:"dns"`
	TLS TLSConfig `mapstructure:"tls"`
	// Enforce denies or kills on rules (enforce_config.go).
	Enforce EnforceConfig `mapstructure:"enforce"`
	// Secrets: secrets sent to a model provider (secrets_config.go).
	Secrets SecretsConfig `mapstructure:"secrets"`
}

// Default noise. /proc, /sys and /dev hold no user files; the library and
// package directories are read by every interpreter start. Go's caches are
// per user: root's are listed as prefixes, other users' build cache is
// matched by its directory name (go-build), their module cache only if
// they add its prefix (its "mod" segment is too common a name to drop).
// .git is deliberately not noise: .git/config can hold credentials and
// .git/hooks is a persistence vector. "target" (Rust/Maven output) is
// noise as DESIGN.md says, at the cost of hiding any directory of that name.
var (
	defaultNoisePrefixes = []string{
		"/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share", "/usr/local/lib", "/usr/include",
		"/proc", "/sys", "/dev",
		"/root/go/pkg/mod", "/root/.cache/go-build",
	}
	defaultNoiseDirNames = []string{
		"node_modules", "site-packages", "dist-packages", "__pycache__", "target", "go-build",
	}
	// Measured on `bash -c 'ls -la; git --version; curl --version'`, a
	// python start and the real-agent suite: what the loader, libc's
	// resolver, OpenSSL and bash's startup read in every process. Only
	// reads are dropped (a write to /etc/ld.so.preload or /etc/hosts is a
	// record). Not /etc/passwd (a read of it by a tool is recon), nor
	// anything a policy rule names (/etc/shadow, sudoers).
	defaultNoiseFiles = []string{
		"/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/locale.alias", "/etc/nsswitch.conf",
		"/etc/localtime", "/etc/gai.conf", "/etc/host.conf", "/etc/group",
		"/etc/ldap/ldap.conf", "/etc/inputrc", "/etc/mime.types",
		"/etc/hosts", "/etc/resolv.conf", "/etc/ssl/openssl.cnf",
		"/etc/bash.bashrc", "/etc/profile",
	}
	// The seed policy's sensitive_paths (DESIGN.md), plus the private key
	// basenames that ~/.ssh/* already covers in a home but not elsewhere.
	defaultNoiseKeep = []string{
		"~/.aws/*", "~/.ssh/*", "~/.kube/*", "~/.config/gcloud/*", "~/.gnupg/*",
		"~/.azure/*", "~/.docker/config.json", "~/.netrc", "~/.git-credentials",
		"**/.env*", "**/credentials*", "**/id_rsa*", "**/id_ed25519*", "**/id_ecdsa*",
		"/etc/shadow", "/etc/gshadow", "/etc/sudoers",
	}
)

func createDefaultConfig() component.Config {
	return &Config{
		Hooks:         HooksAuto,
		BuiltinAgents: true,
		Noise: NoiseConfig{
			PathPrefixes: append([]string(nil), defaultNoisePrefixes...),
			DirNames:     append([]string(nil), defaultNoiseDirNames...),
			Files:        append([]string(nil), defaultNoiseFiles...),
			Keep:         append([]string(nil), defaultNoiseKeep...),

			DropFailedOpens: true,
			DropPathOpens:   true,
			AgentState:      true,
			GitMetadata:     true,
			DropCleanExits:  true,
		},
		MaxArgsBytes:    defaultArgsBytes,
		RingBufferSize:  defaultRingBuffer,
		MaxProcesses:    defaultMaxProcs,
		SessionEndGrace: defaultGrace,
		DedupWindow:     defaultDedup,
		ProcPath:        "/proc",
		MaxSessions:     defaultMaxSession,
		DNS:             defaultDNSConfig(),
		TLS:             defaultTLSConfig(),
		Secrets:         defaultSecretsConfig(),
		Enforce:         defaultEnforceConfig(),
	}
}

// Validate checks the config; every error names its field.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	switch c.Hooks {
	case HooksAuto, HooksLSM, HooksTracepoint:
	default:
		add("hooks: %q is not one of auto, lsm, tracepoint", c.Hooks)
	}
	if _, err := c.matchers(); err != nil {
		errs = append(errs, err)
	} else if len(c.Agents) == 0 && !c.BuiltinAgents {
		add("agents: empty while builtin_agents is false: nothing could start a session")
	}
	for i, p := range c.Noise.PathPrefixes {
		field := fmt.Sprintf("noise.path_prefixes[%d]", i)
		switch {
		case !strings.HasPrefix(p, "/"):
			add("%s: %q is not absolute", field, p)
		case path.Clean(p) == "/":
			add("%s: %q would drop every file open", field, p)
		case path.Clean(p) != p:
			add("%s: %q is not clean; write %q", field, p, path.Clean(p))
		case len(p)+1 > prefixKeyBytes:
			add("%s: %q is %d bytes; at most %d fit the kernel's key", field, p, len(p), prefixKeyBytes-1)
		case strings.ContainsRune(p, 0):
			add("%s: NUL byte", field)
		}
	}
	for i, f := range c.Noise.Files {
		field := fmt.Sprintf("noise.files[%d]", i)
		switch {
		case !strings.HasPrefix(f, "/") || path.Clean(f) != f || f == "/":
			add("%s: %q must be an absolute, clean file path", field, f)
		case strings.ContainsRune(f, 0):
			add("%s: NUL byte", field)
		}
	}
	for i, g := range c.Noise.Keep {
		if g == "" || strings.ContainsRune(g, 0) {
			add("noise.keep[%d]: %q is not a glob", i, g)
		}
	}
	for i, n := range c.Noise.DirNames {
		field := fmt.Sprintf("noise.dir_names[%d]", i)
		switch {
		case n == "" || n == "." || n == "..":
			add("%s: %q is not a directory name", field, n)
		case strings.ContainsAny(n, "/\x00"):
			add("%s: %q must be one path segment (no '/')", field, n)
		case len(n)+1 > nameKeyBytes:
			add("%s: %q is %d bytes; at most %d fit the kernel's key", field, n, len(n), nameKeyBytes-1)
		}
	}
	if c.MaxArgsBytes < 1 || c.MaxArgsBytes > maxArgsBytesLimit {
		add("max_args_bytes: %d is outside 1..%d", c.MaxArgsBytes, maxArgsBytesLimit)
	}
	if rb := c.RingBufferSize; rb < minRingBuffer || rb > maxRingBuffer || rb&(rb-1) != 0 || int(rb)%os.Getpagesize() != 0 {
		add("ring_buffer_size: %d must be a power of two from %d (one page) to %d bytes", rb, max(minRingBuffer, os.Getpagesize()), maxRingBuffer)
	}
	if c.MaxProcesses < 1 || c.MaxProcesses > pidMaxLimit {
		add("max_processes: %d is outside 1..%d", c.MaxProcesses, pidMaxLimit)
	}
	if c.SessionEndGrace < 0 {
		add("session_end_grace: %v is negative", c.SessionEndGrace)
	}
	if c.DedupWindow < 0 || c.DedupWindow > time.Minute {
		// A record held longer than a minute is too late for anyone.
		add("dedup_window: %v must be 0 (off) to 1m", c.DedupWindow)
	}
	if !strings.HasPrefix(c.ProcPath, "/") {
		add("proc_path: %q is not an absolute path", c.ProcPath)
	}
	if c.MaxSessions < 1 || c.MaxSessions > maxSessionsLimit {
		add("max_sessions: %d is outside 1..%d", c.MaxSessions, maxSessionsLimit)
	}
	for i, a := range c.Agents {
		for j, g := range a.StatePaths {
			if _, err := pathglob.Compile(g); err != nil {
				add("agents[%d].state_paths[%d]: %v", i, j, err)
			}
		}
	}
	errs = append(errs, c.validateIntent()...)
	errs = append(errs, c.validateEnforce()...)
	errs = append(errs, c.validateSecrets()...)
	return errors.Join(errs...)
}

// matchers compiles the agent matchers (user ones first, then built-ins).
func (c *Config) matchers() (*matcher.Set, error) {
	return matcher.New(c.Agents, c.BuiltinAgents, c.DisableAgents)
}

// sessionConfig is the session tracker's part of the config; the tracker
// reads the boot id and host name itself.
func (c *Config) sessionConfig(m *matcher.Set, backend string) session.Config {
	return session.Config{
		Matcher:      m,
		Backend:      backend,
		Grace:        c.SessionEndGrace,
		MaxSessions:  c.MaxSessions,
		MaxProcesses: int(c.MaxProcesses),
		ProcRoot:     c.ProcPath,
		DedupWindow:  c.DedupWindow,
		AgentState:   c.agentState(m),

		GitMetadata:    c.Noise.GitMetadata,
		DropCleanExits: c.Noise.DropCleanExits,
	}
}

func (c *Config) agentState(m *matcher.Set) map[string][]string {
	if !c.Noise.AgentState || m == nil {
		return nil
	}
	return m.StatePaths()
}
