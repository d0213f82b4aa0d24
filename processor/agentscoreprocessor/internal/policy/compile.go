package policy

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"

	"github.com/agentwatch/agentwatch/internal/pathglob"
)

// Options are the matcher settings that are not part of the policy lists.
type Options struct {
	// StandardPorts are the ports net.non_standard_port does not flag.
	StandardPorts []int
	// DNSMaxLabelLength: a longer label fires dns.long_label.
	DNSMaxLabelLength int
	// DNSEntropyThreshold (bits per character) and DNSEntropyMinLength: a
	// label at least that long with more entropy fires dns.high_entropy_label.
	DNSEntropyThreshold float64
	DNSEntropyMinLength int
	// SystemResolvers are the resolvers dns.foreign_resolver accepts. Empty
	// means the nameservers of ResolvConf plus the systemd-resolved stub.
	SystemResolvers []string
	// ResolvConf is the resolver configuration read when SystemResolvers is
	// empty; "" means /etc/resolv.conf.
	ResolvConf string
	// Homes resolves "~"; nil means the system user database.
	Homes *pathglob.Homes
	// ModelProviders are the model APIs of the built-in agents, allowed as
	// destinations besides allowed_destinations: an agent talking to its own
	// provider is the agent at work. Names or *.domain.
	ModelProviders []string
}

// DefaultModelProviders are the API hosts of the built-in agents' default
// providers (Claude Code, Codex, Gemini CLI, OpenCode's defaults).
var DefaultModelProviders = []string{
	"api.anthropic.com", "api.openai.com",
	"generativelanguage.googleapis.com", "cloudcode-pa.googleapis.com",
}

// Defaults for Options.
const (
	DefaultDNSMaxLabelLength   = 50
	DefaultDNSEntropyThreshold = 3.5
	DefaultDNSEntropyMinLength = 16
)

// DefaultStandardPorts are the ports a connect may use without
// net.non_standard_port.
func DefaultStandardPorts() []int { return []int{80, 443} }

// systemdStub is the address of the systemd-resolved stub resolver, which
// resolv.conf may not list when another manager writes it.
var systemdStub = netip.MustParseAddr("127.0.0.53")

type pathEntry struct {
	glob      *pathglob.Glob
	rule      int
	anywhere  bool // also scored inside the session's working directory
	sensitive bool // a credential_access rule: a read is a chain step
}

type binaryEntry struct {
	glob *pathglob.Glob // for entries with a slash; else name is used
	name string
	rule int
}

type customExec struct {
	hasBinary bool // false: any binary
	binary    binaryEntry
	argv      *regexp.Regexp // nil: any command line
	rule      int
}

type customSet struct {
	set  destSet
	rule int
}

type customPorts struct {
	ports map[int]struct{}
	rule  int
}

// Policy is a compiled policy. It is immutable and safe for concurrent use.
type Policy struct {
	rules   []Rule
	byID    map[string]int
	enabled RuleSet

	paths       []pathEntry
	sensitive   []pathEntry // the credential_access subset, for argv checks
	persistence []pathEntry // write targets of file.persistence
	binNames    map[string]int
	binGlobs    []binaryEntry
	encoders    map[string]struct{}
	archivers   map[string]struct{}
	customExec  []customExec
	allowed     destSet
	customDest  []customSet
	customPorts []customPorts
	customDNS   []customSet

	standardPorts   [65536 / 64]uint64
	maxLabel        int
	entropyMin      int
	entropyBits     float64
	systemResolvers map[netip.Addr]struct{}

	homes *pathglob.Homes
}

// Compile merges the layers (later layers win: a list a layer sets replaces
// the earlier one, and so does a rule override for the same id; custom rules
// of all layers are kept, and an id defined twice is an error) and compiles
// the result. Errors name the field, and the file and line for files.
func Compile(layers []Layer, opts Options) (*Policy, error) {
	p := &Policy{
		rules:       BuiltinRules(),
		byID:        map[string]int{},
		binNames:    map[string]int{},
		encoders:    map[string]struct{}{},
		archivers:   map[string]struct{}{},
		maxLabel:    opts.DNSMaxLabelLength,
		entropyMin:  opts.DNSEntropyMinLength,
		entropyBits: opts.DNSEntropyThreshold,
		homes:       opts.Homes,
	}
	if p.homes == nil {
		p.homes = pathglob.NewHomes(nil)
	}
	if p.maxLabel <= 0 {
		p.maxLabel = DefaultDNSMaxLabelLength
	}
	if p.entropyMin <= 0 {
		p.entropyMin = DefaultDNSEntropyMinLength
	}
	if p.entropyBits <= 0 {
		p.entropyBits = DefaultDNSEntropyThreshold
	}
	for i, r := range p.rules {
		p.byID[r.ID] = i
	}
	for name := range builtinEncoders {
		p.encoders[name] = struct{}{}
	}
	for name := range builtinArchivers {
		p.archivers[name] = struct{}{}
	}

	// Pick each list from the last layer that sets it.
	var lists [3]struct {
		vals []string
		src  *source
	}
	for i := range layers {
		l := &layers[i]
		for j, v := range []*[]string{l.SensitivePaths, l.RiskyBinaries, l.AllowedDestinations} {
			if v != nil {
				lists[j].vals, lists[j].src = *v, &l.src
			}
		}
	}
	var errs []error
	if lists[0].src != nil {
		errs = append(errs, p.compileSensitive(lists[0].vals, lists[0].src)...)
	}
	if lists[1].src != nil {
		errs = append(errs, p.compileRisky(lists[1].vals, lists[1].src)...)
	}
	if lists[2].src != nil {
		set, e := compileDestSet(lists[2].vals, lists[2].src, lists[2].src.list("allowed_destinations"), true)
		p.allowed = set
		errs = append(errs, e...)
	}
	if len(opts.ModelProviders) > 0 {
		set, e := compileDestSet(opts.ModelProviders, &source{}, "model_providers", false)
		errs = append(errs, e...)
		p.allowed.merge(&set)
	}
	errs = append(errs, p.compileBuiltinPaths()...)

	// Custom rules first, so overrides may name them too.
	defined := map[string]*source{}
	for i := range layers {
		l := &layers[i]
		for j := range l.CustomRules {
			errs = append(errs, p.compileCustom(&l.CustomRules[j], indexPath("custom_rules", j), &l.src, defined)...)
		}
	}
	for i := range layers {
		l := &layers[i]
		for _, id := range sortedKeys(l.Rules) {
			errs = append(errs, p.applyOverride(id, l.Rules[id], &l.src)...)
		}
	}

	ports := opts.StandardPorts
	if ports == nil {
		ports = DefaultStandardPorts()
	}
	for i, port := range ports {
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Errorf("standard_ports[%d]: port %d out of range 1–65535", i, port))
			continue
		}
		p.standardPorts[port>>6] |= 1 << (uint(port) & 63)
	}
	resolvers, err := systemResolvers(opts)
	if err != nil {
		errs = append(errs, err)
	}
	p.systemResolvers = resolvers

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Disabled rules leave the match tables entirely, so they cost nothing
	// and count as neither sensitive nor allowed.
	for i, r := range p.rules {
		if r.Enabled {
			p.enabled.Add(i)
		}
	}
	keep := p.paths[:0]
	for _, e := range p.paths {
		if p.rules[e.rule].Enabled {
			e.sensitive = p.rules[e.rule].Category == CatCredentialAccess
			keep = append(keep, e)
			if e.sensitive {
				p.sensitive = append(p.sensitive, e)
			}
		}
	}
	p.paths = keep
	if !p.rules[RuleFilePersistence].Enabled {
		p.persistence = nil // nor are its files persistence targets for other rules
	}
	return p, nil
}

func (p *Policy) compileSensitive(vals []string, src *source) []error {
	var errs []error
	field := src.list("sensitive_paths")
	for i, v := range vals {
		g, err := pathglob.Compile(wholeDir(v))
		if err != nil {
			errs = append(errs, src.errorf(indexPath(field, i), "invalid glob %q: %v", v, err))
			continue
		}
		p.paths = append(p.paths, pathEntry{glob: g, rule: classifyPath(g), anywhere: g.AnyDepth()})
	}
	return errs
}

// wholeDir makes a sensitive_paths entry "dir/*" mean the whole directory
// tree, as the seed's list means it: a key under ~/.gnupg/private-keys-v1.d/
// is as sensitive as one directly in ~/.gnupg. Other patterns keep the
// glob meaning ('*' does not cross '/').
func wholeDir(v string) string {
	if strings.HasSuffix(v, "/*") {
		return v + "*"
	}
	return v
}

var shadowGlobs = []string{"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-"}

// persistenceGlobs are the files whose content runs later without anyone
// asking: at a login shell, on a schedule, at session start, on a git
// action, in every dynamically linked program.
var persistenceGlobs = []string{
	"~/.bashrc", "~/.bash_profile", "~/.bash_login", "~/.bash_logout", "~/.profile",
	"~/.zshrc", "~/.zshenv", "~/.zprofile", "~/.zlogin", "~/.config/fish/config.fish", "~/.config/fish/conf.d/*",
	"~/.ssh/authorized_keys", "~/.ssh/authorized_keys2", "~/.ssh/rc",
	"~/.config/systemd/user/**", "~/.config/autostart/**", "~/.local/share/systemd/user/**",
	"/etc/crontab", "/etc/cron.d/**", "/etc/cron.hourly/**", "/etc/cron.daily/**", "/etc/cron.weekly/**",
	"/etc/cron.monthly/**", "/var/spool/cron/**", "/etc/systemd/system/**", "/etc/profile", "/etc/profile.d/**",
	"/etc/bash.bashrc", "/etc/zsh/*", "/etc/ld.so.preload", "/etc/rc.local", "/etc/sudoers.d/**",
	"**/.git/hooks/*", "**/.husky/*",
}

func (p *Policy) compileBuiltinPaths() []error {
	for _, s := range shadowGlobs {
		p.paths = append(p.paths, pathEntry{glob: pathglob.MustCompile(s), rule: RuleFileShadow, anywhere: true})
	}
	for _, s := range persistenceGlobs {
		p.persistence = append(p.persistence, pathEntry{glob: pathglob.MustCompile(s), rule: RuleFilePersistence, anywhere: true})
	}
	return nil
}

// classifyPath assigns a sensitive_paths entry to the rule of its class by
// the directory or file name it names.
func classifyPath(g *pathglob.Glob) int {
	segs := strings.Split(strings.TrimPrefix(g.String(), "~"), "/")
	has := func(names ...string) bool {
		for _, s := range segs {
			for _, n := range names {
				if s == n {
					return true
				}
			}
		}
		return false
	}
	last := segs[len(segs)-1]
	switch {
	case has(".aws", ".azure", ".oci", ".aliyun"):
		return RuleFileCloudCredentials
	case has(".ssh"):
		return RuleFileSSHKey
	case has(".kube"):
		return RuleFileKube
	case has("gcloud"):
		return RuleFileGcloud
	case has(".gnupg"):
		return RuleFileGnupg
	case strings.HasPrefix(g.String(), "/etc/shadow") || strings.HasPrefix(g.String(), "/etc/gshadow"):
		return RuleFileShadow
	case strings.HasPrefix(last, ".env"):
		return RuleFileDotenv
	case strings.HasPrefix(last, "credentials"):
		return RuleFileCredentials
	}
	return RuleFileSensitive
}

// Binary classes. A risky_binaries entry takes the rule of its class; the
// argv heuristics use the encoder and archiver sets whatever the list says.
var (
	binaryClass = map[string]int{
		"curl": RuleBinTransfer, "wget": RuleBinTransfer, "wget2": RuleBinTransfer, "aria2c": RuleBinTransfer,
		"ftp": RuleBinTransfer, "tftp": RuleBinTransfer, "lftp": RuleBinTransfer, "rclone": RuleBinTransfer,
		"http": RuleBinTransfer, "https": RuleBinTransfer, "xh": RuleBinTransfer,

		"base64": RuleBinEncode, "base32": RuleBinEncode, "basenc": RuleBinEncode, "xxd": RuleBinEncode,
		"od": RuleBinEncode, "hexdump": RuleBinEncode, "uuencode": RuleBinEncode,

		"dig": RuleBinDNSTool, "nslookup": RuleBinDNSTool, "host": RuleBinDNSTool, "drill": RuleBinDNSTool,
		"delv": RuleBinDNSTool, "kdig": RuleBinDNSTool, "resolvectl": RuleBinDNSTool,

		"nc": RuleBinReverseShell, "ncat": RuleBinReverseShell, "netcat": RuleBinReverseShell,
		"socat": RuleBinReverseShell, "telnet": RuleBinReverseShell,

		"tar": RuleBinStaging, "gtar": RuleBinStaging, "bsdtar": RuleBinStaging, "zip": RuleBinStaging,
		"7z": RuleBinStaging, "7za": RuleBinStaging, "7zr": RuleBinStaging, "gzip": RuleBinStaging,
		"bzip2": RuleBinStaging, "xz": RuleBinStaging, "zstd": RuleBinStaging, "rar": RuleBinStaging,
		"pigz": RuleBinStaging, "cpio": RuleBinStaging, "lz4": RuleBinStaging,

		"ssh": RuleBinLateral, "scp": RuleBinLateral, "sftp": RuleBinLateral, "rsync": RuleBinLateral,
		"rsh": RuleBinLateral, "rlogin": RuleBinLateral, "sshpass": RuleBinLateral,

		"chmod": RuleBinPermission, "chown": RuleBinPermission, "chattr": RuleBinPermission,
		"setcap": RuleBinPermission,
	}
	builtinEncoders  = classSet(RuleBinEncode)
	builtinArchivers = classSet(RuleBinStaging)
	// transferTools write downloads; a file they create is "fresh".
	transferTools = func() map[string]struct{} {
		m := classSet(RuleBinTransfer)
		for _, n := range []string{"scp", "sftp", "rsync", "nc", "ncat", "netcat", "socat"} {
			m[n] = struct{}{}
		}
		return m
	}()
)

func classSet(rule int) map[string]struct{} {
	m := map[string]struct{}{}
	for n, r := range binaryClass {
		if r == rule {
			m[n] = struct{}{}
		}
	}
	return m
}

func (p *Policy) compileRisky(vals []string, src *source) []error {
	var errs []error
	field := src.list("risky_binaries")
	for i, v := range vals {
		e, err := compileBinary(v)
		if err != nil {
			errs = append(errs, src.errorf(indexPath(field, i), "%v", err))
			continue
		}
		name := e.name
		if e.glob != nil {
			name = lastSegment(e.glob.String())
		}
		rule, ok := binaryClass[name]
		if !ok {
			rule = RuleBinOther
		}
		e.rule = rule
		if e.glob != nil {
			p.binGlobs = append(p.binGlobs, e)
		} else {
			p.binNames[e.name] = rule
		}
		switch rule {
		case RuleBinEncode:
			p.encoders[name] = struct{}{}
		case RuleBinStaging:
			p.archivers[name] = struct{}{}
		}
	}
	return errs
}

func compileBinary(v string) (binaryEntry, error) {
	switch {
	case strings.TrimSpace(v) == "":
		return binaryEntry{}, errors.New("empty binary name")
	case strings.ContainsAny(v, " \t\n"):
		return binaryEntry{}, fmt.Errorf("binary %q contains whitespace; argv patterns go in a custom rule's argv", v)
	case strings.Contains(v, "/"):
		if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "**") {
			return binaryEntry{}, fmt.Errorf("binary path %q must be absolute or start with **", v)
		}
		g, err := pathglob.Compile(v)
		if err != nil {
			return binaryEntry{}, fmt.Errorf("invalid binary glob %q: %v", v, err)
		}
		return binaryEntry{glob: g}, nil
	}
	return binaryEntry{name: v}, nil
}

func lastSegment(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

var ruleIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func (p *Policy) compileCustom(c *CustomRule, field string, src *source, defined map[string]*source) []error {
	var errs []error
	bad := func(sub, format string, args ...any) {
		f := field
		if sub != "" {
			f += "." + sub
		}
		errs = append(errs, src.errorf(f, format, args...))
	}
	switch {
	case !ruleIDRE.MatchString(c.ID):
		bad("id", "rule id %q must be 1–64 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit", c.ID)
	case isBuiltinID(c.ID):
		bad("id", "rule id %q is a built-in rule; re-score or disable it under rules instead", c.ID)
	case defined[c.ID] != nil:
		where := "the collector config"
		if f := defined[c.ID].file; f != "" {
			where = fmt.Sprintf("policy_file %q", f)
		}
		bad("id", "rule id %q is already defined in %s", c.ID, where)
	}
	if strings.TrimSpace(c.Category) == "" {
		bad("category", "required")
	}
	if strings.TrimSpace(c.Description) == "" {
		bad("description", "required")
	}
	if c.Score < 1 || c.Score > 100 {
		bad("score", "must be between 1 and 100, got %d", c.Score)
	}
	kinds := 0
	for _, set := range []bool{len(c.Paths) > 0, c.Binary != "" || c.Argv != "", len(c.Destinations) > 0, len(c.Ports) > 0, len(c.DNS) > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		bad("", "set exactly one matcher: paths, binary/argv, destinations, ports or dns (found %d)", kinds)
	}
	if len(p.rules) >= MaxRules {
		bad("", "too many custom rules (at most %d)", MaxCustomRules)
	}
	if len(errs) > 0 {
		return errs
	}

	idx := len(p.rules)
	p.rules = append(p.rules, Rule{ID: c.ID, Category: c.Category, Score: c.Score, Description: c.Description, Enabled: true, Custom: true})
	p.byID[c.ID] = idx
	defined[c.ID] = src

	for i, v := range c.Paths {
		g, err := pathglob.Compile(v)
		if err != nil {
			bad(indexPath("paths", i), "invalid glob %q: %v", v, err)
			continue
		}
		p.paths = append(p.paths, pathEntry{glob: g, rule: idx, anywhere: g.AnyDepth() || c.IncludeWorkdir})
	}
	if c.Binary != "" || c.Argv != "" {
		ce := customExec{rule: idx}
		if c.Binary != "" {
			b, err := compileBinary(c.Binary)
			if err != nil {
				bad("binary", "%v", err)
			}
			b.rule = idx
			ce.binary, ce.hasBinary = b, true
		}
		if c.Argv != "" {
			re, err := regexp.Compile(c.Argv)
			if err != nil {
				bad("argv", "invalid regular expression: %v", err)
			}
			ce.argv = re
		}
		p.customExec = append(p.customExec, ce)
	}
	if len(c.Destinations) > 0 {
		set, e := compileDestSet(c.Destinations, src, field+".destinations", true)
		errs = append(errs, e...)
		p.customDest = append(p.customDest, customSet{set: set, rule: idx})
	}
	if len(c.Ports) > 0 {
		cp := customPorts{ports: map[int]struct{}{}, rule: idx}
		for i, port := range c.Ports {
			if port < 1 || port > 65535 {
				bad(indexPath("ports", i), "port %d out of range 1–65535", port)
			}
			cp.ports[port] = struct{}{}
		}
		p.customPorts = append(p.customPorts, cp)
	}
	if len(c.DNS) > 0 {
		set, e := compileDestSet(c.DNS, src, field+".dns", false)
		errs = append(errs, e...)
		p.customDNS = append(p.customDNS, customSet{set: set, rule: idx})
	}
	return errs
}

func isBuiltinID(id string) bool {
	for _, r := range builtinRules {
		if r.ID == id {
			return true
		}
	}
	return false
}

func (p *Policy) applyOverride(id string, o RuleOverride, src *source) []error {
	field := keyPath("rules", id)
	idx, ok := p.byID[id]
	if !ok {
		return []error{src.errorf(field, "unknown rule id %q", id)}
	}
	var errs []error
	if o.Enabled != nil {
		p.rules[idx].Enabled = *o.Enabled
	}
	if o.Score != nil {
		s := *o.Score
		switch {
		case s < 1 || s > 100:
			errs = append(errs, src.errorf(field+".score", "must be between 1 and 100, got %d", s))
		case idx == RuleEnforceDenied && s < MinDenialScore:
			errs = append(errs, src.errorf(field+".score", "must be at least %d: a denial is at least high", MinDenialScore))
		default:
			p.rules[idx].Score = s
		}
	}
	return errs
}

func systemResolvers(opts Options) (map[netip.Addr]struct{}, error) {
	set := map[netip.Addr]struct{}{}
	if len(opts.SystemResolvers) > 0 {
		var errs []error
		for i, s := range opts.SystemResolvers {
			a, err := netip.ParseAddr(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("system_resolvers[%d]: %q is not an IP address", i, s))
				continue
			}
			set[a.Unmap()] = struct{}{}
		}
		return set, errors.Join(errs...)
	}
	set[systemdStub] = struct{}{}
	name := opts.ResolvConf
	if name == "" {
		name = "/etc/resolv.conf"
	}
	servers := readResolvConf(name)
	if len(servers) == 0 {
		// glibc queries the local host when resolv.conf names no server.
		servers = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	}
	for _, a := range servers {
		set[a] = struct{}{}
	}
	return set, nil
}

// readResolvConf returns the nameserver addresses of a resolv.conf; a
// missing or unreadable file yields none.
func readResolvConf(name string) []netip.Addr {
	f, err := os.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		// A link-local v6 server may carry a zone ("fe80::1%eth0").
		if a, err := netip.ParseAddr(fields[1]); err == nil {
			out = append(out, a.WithZone("").Unmap())
		}
	}
	return out
}

// Rules returns the compiled rules (built-in first, then custom), by index.
func (p *Policy) Rules() []Rule { return p.rules }

// Rule returns rule i.
func (p *Policy) Rule(i int) *Rule { return &p.rules[i] }

// RuleIndex returns the index of a rule id.
func (p *Policy) RuleIndex(id string) (int, bool) {
	i, ok := p.byID[id]
	return i, ok
}

// Enabled reports whether rule i is enabled.
func (p *Policy) Enabled(i int) bool { return p.enabled.Has(i) }

// Homes returns the uid → home cache the policy matches "~" with.
func (p *Policy) Homes() *pathglob.Homes { return p.homes }
