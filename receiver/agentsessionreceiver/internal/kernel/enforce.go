package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Enforcement modes, as in the receiver config's `enforce.mode`.
const (
	EnforceOff     = ""
	EnforceMonitor = "monitor"
	EnforceEnforce = "enforce"
)

// denyKeyLen is DENY_KEY_LEN of enforce.h: a rule path plus its NUL.
const denyKeyLen = 256

// EnforceOptions are the compiled enforcement rules (CompileEnforce).
type EnforceOptions struct {
	Mode         string // EnforceOff, EnforceMonitor or EnforceEnforce
	Kill         bool   // action: kill
	DenyPaths    []DenyPath
	AllowConnect []netip.Prefix // empty: no allowlist rule
	DenyPorts    map[uint16]uint32
	// Rules names every rule id the kernel can report.
	Rules map[uint32]string
	// HomeRules are the "~/" deny_open rules, kept to expand for homes
	// seen at run time (Tracer.AddHome): an agent's HOME or the passwd
	// home in its own mount namespace may be none of those known at start.
	HomeRules []HomeRule
	// Homes are the homes DenyPaths already expand "~/" to.
	Homes []string
}

// HomeRule is a "~/" deny_open rule, relative to a home.
type HomeRule struct {
	Lit    string
	Prefix bool
	Rule   uint32
}

// homePaths expands the home rules for one home.
func homePaths(rules []HomeRule, home string) []DenyPath {
	var out []DenyPath
	for _, h := range rules {
		p := path.Clean(home + h.Lit)
		if len(p)+2 > denyKeyLen {
			continue
		}
		out = append(out, DenyPath{Path: p, Rule: h.Rule})
		if h.Prefix {
			out = append(out, DenyPath{Path: p, Prefix: true, Rule: h.Rule})
		}
	}
	return out
}

// DenyPath is one kernel deny entry: an exact path, or a directory and
// everything under it.
type DenyPath struct {
	Path   string
	Prefix bool
	Rule   uint32
}

// portRuleBase keeps deny_ports rule ids apart from deny_open's indices.
const portRuleBase = 1 << 16

// KernelDenyPattern says how the kernel evaluates an open deny glob: a
// literal path (exact), or a literal directory followed by "/**" or "/"
// (the directory and everything under it). home is true for "~/..."
// patterns, which are expanded per user home. Other globs ("*", "?", "[",
// relative or any-depth patterns) cannot be evaluated by one trie lookup
// and are rejected.
func KernelDenyPattern(glob string) (lit string, prefix, home bool, err error) {
	if _, err := pathglob.Compile(glob); err != nil {
		return "", false, false, err
	}
	p := glob
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		home, p = true, strings.TrimPrefix(p, "~")
		if p == "" {
			p = "/"
		}
	case !strings.HasPrefix(p, "/"):
		return "", false, false, fmt.Errorf("%q: the kernel only evaluates absolute or ~/ paths", glob)
	}
	if strings.HasSuffix(p, "/**") {
		prefix, p = true, strings.TrimSuffix(p, "/**")
	} else if len(p) > 1 && strings.HasSuffix(p, "/") {
		prefix, p = true, strings.TrimSuffix(p, "/")
	}
	if strings.ContainsAny(p, "*?[\\") {
		return "", false, false, fmt.Errorf("%q: the kernel only evaluates literal paths and literal directories followed by /**", glob)
	}
	if p == "" {
		p = "/"
	}
	p = path.Clean(p)
	if len(p)+2 > denyKeyLen {
		return "", false, false, fmt.Errorf("%q: longer than the kernel's %d-byte limit", glob, denyKeyLen-2)
	}
	return p, prefix, home, nil
}

// Homes lists the home directories "~/" deny rules expand to: those of
// the users in passwd with a home under /root or /home, plus root's and
// every existing /home/* directory.
func Homes(passwd string) []string {
	set := map[string]bool{"/root": true}
	if f, err := os.Open(passwd); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			fs := strings.Split(s.Text(), ":")
			if len(fs) >= 6 && (fs[5] == "/root" || strings.HasPrefix(fs[5], "/home/")) {
				set[path.Clean(fs[5])] = true
			}
		}
		f.Close()
	}
	if ds, err := os.ReadDir("/home"); err == nil {
		for _, d := range ds {
			if d.IsDir() {
				set[filepath.Join("/home", d.Name())] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// CompileEnforce turns the config's rules into kernel entries. Errors name
// the field; homes expands "~/" patterns.
func CompileEnforce(mode string, kill bool, denyOpen []string, allowConnect []string, denyPorts []int, homes []string) (EnforceOptions, error) {
	o := EnforceOptions{Mode: mode, Kill: kill, DenyPorts: map[uint16]uint32{}, Rules: map[uint32]string{}, Homes: homes}
	for i, g := range denyOpen {
		lit, prefix, home, err := KernelDenyPattern(g)
		if err != nil {
			return o, fmt.Errorf("enforce.deny_open[%d]: %w", i, err)
		}
		rule := uint32(i)
		o.Rules[rule] = "deny_open:" + g
		if !home {
			o.DenyPaths = append(o.DenyPaths, homePaths([]HomeRule{{Lit: lit, Prefix: prefix, Rule: rule}}, "")...)
			continue
		}
		o.HomeRules = append(o.HomeRules, HomeRule{Lit: lit, Prefix: prefix, Rule: rule})
		for _, r := range homes {
			o.DenyPaths = append(o.DenyPaths, homePaths([]HomeRule{{Lit: lit, Prefix: prefix, Rule: rule}}, r)...)
		}
	}
	for i, s := range allowConnect {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return o, fmt.Errorf("enforce.allow_connect[%d]: %q is neither an IP address nor a CIDR", i, s)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		o.AllowConnect = append(o.AllowConnect, pfx.Masked())
	}
	if len(o.AllowConnect) > 0 {
		o.Rules[kevent.RuleAllowConnect] = "allow_connect"
	}
	for i, p := range denyPorts {
		if p < 1 || p > 65535 {
			return o, fmt.Errorf("enforce.deny_ports[%d]: %d is not a port (1..65535)", i, p)
		}
		rule := uint32(portRuleBase + i)
		o.DenyPorts[uint16(p)] = rule
		o.Rules[rule] = fmt.Sprintf("deny_ports:%d", p)
	}
	return o, nil
}

// enforceVars sets enforce.h's load-time variables in a spec.
func enforceVars(spec *ebpf.CollectionSpec, e EnforceOptions) error {
	mode := uint8(0)
	switch e.Mode {
	case EnforceMonitor:
		mode = 1
	case EnforceEnforce:
		mode = 2
	}
	if err := setVar(spec, "cfg_enforce", mode); err != nil {
		return err
	}
	if err := setVar(spec, "cfg_enforce_kill", boolByte(e.Kill)); err != nil {
		return err
	}
	return setVar(spec, "cfg_connect_allowlist", boolByte(len(e.AllowConnect) > 0))
}

type denyKey struct {
	PrefixLen uint32
	Data      [denyKeyLen]byte
}

type netKey struct {
	PrefixLen uint32
	Addr      [16]byte
}

// maxHomes bounds the homes AddHome expands rules for: each costs a few
// deny_paths entries, and HOME is whatever a process sets.
const maxHomes = 256

// AddHome expands the "~/" deny_open rules for a home seen at run time
// (a session process's HOME, or its uid's home under its own root). Safe
// for concurrent use; known homes cost a map lookup.
//
// The home's sensitive files are found and known by identity from then
// on, and the kernel keeps their failed and O_PATH opens too.
func (t *Tracer) AddHome(home string) error {
	if !strings.HasPrefix(home, "/") {
		return nil
	}
	home = path.Clean(home)
	t.homesMu.Lock()
	defer t.homesMu.Unlock()
	if t.homes[home] {
		return nil
	}
	if len(t.homes) >= maxHomes {
		return fmt.Errorf("more than %d homes; %q not added", maxHomes, home)
	}
	t.homes[home] = true
	if t.ids != nil {
		t.ids.scanHome(home)
	}
	prefixes, _ := KeepSet(t.keepGlobs, []string{home})
	if err := t.putOpenClass(nil, prefixes); err != nil {
		return err
	}
	return t.putDenyPaths(homePaths(t.enforce.HomeRules, home))
}

func (t *Tracer) fillEnforce(e EnforceOptions) error {
	t.enforce = e
	t.homes = map[string]bool{}
	for _, h := range e.Homes {
		t.homes[path.Clean(h)] = true
	}
	if err := t.putDenyPaths(e.DenyPaths); err != nil {
		return err
	}
	return t.fillNet(e)
}

func (t *Tracer) putDenyPaths(ds []DenyPath) error {
	for _, d := range ds {
		var k denyKey
		s := d.Path + "\x00" // exact: the path and its end
		if d.Prefix {
			s = strings.TrimSuffix(d.Path, "/") + "/"
		}
		copy(k.Data[:], s)
		k.PrefixLen = uint32(len(s) * 8)
		if err := t.objs.DenyPaths.Update(k, d.Rule, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("deny_paths[%q]: %w", s, err)
		}
	}
	return nil
}

func (t *Tracer) fillNet(e EnforceOptions) error {
	for _, p := range e.AllowConnect {
		k := netKey{Addr: p.Addr().As16(), PrefixLen: uint32(p.Bits())}
		if p.Addr().Is4() {
			k.PrefixLen += 96 // v4-mapped
		}
		if err := t.objs.AllowNet.Update(k, uint32(0), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("allow_net[%s]: %w", p, err)
		}
	}
	for port, rule := range e.DenyPorts {
		if err := t.objs.DenyPorts.Update(port, rule, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("deny_ports[%d]: %w", port, err)
		}
	}
	return nil
}

func (e *EnforceOptions) deniesOpens() bool { return len(e.DenyPaths) > 0 || len(e.HomeRules) > 0 }

func (e *EnforceOptions) deniesConnects() bool {
	return len(e.AllowConnect) > 0 || len(e.DenyPorts) > 0
}

// ErrEnforceNeedsLSM: tracepoints cannot deny an open.
var ErrEnforceNeedsLSM = errors.New("enforce.mode: enforce needs the LSM backend to deny opens (connects are denied by cgroup programs on any backend), " +
	"and this kernel runs the tracepoint backend; use mode: monitor, or opt in to action: kill " +
	"(SIGKILL at the syscall, which does not stop the syscall itself)")
