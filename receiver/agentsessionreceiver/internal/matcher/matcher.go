// Package matcher decides which processes are AI coding agents: the compiled
// form of the receiver's `agents:` config plus the built-in matchers, and the
// keys the kernel uses to decide at exec time, before userspace can look.
package matcher

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Spec is one `agents:` entry. Several criteria given means all must hold;
// within Executables any pattern may match.
type Spec struct {
	// Name is the agent name, exported as service.name.
	Name string `mapstructure:"name"`
	// Executables are path.Match globs. A pattern without '/' is matched
	// against the basename of the executable (both the name it was invoked
	// as and the resolved image); one with '/' must be absolute and is
	// matched against the whole path ('*' does not cross '/'). One of the
	// form "**/<dir>/<dir>/<glob>" (two literal directory names) matches a
	// resolved image in any directory ending in those two, for installers
	// that name the binary by its version
	// ("**/claude/versions/*" for ~/.local/share/claude/versions/2.1.197).
	Executables []string `mapstructure:"executables"`
	// CommandLine is a regular expression (RE2) over argv joined by spaces.
	CommandLine string `mapstructure:"command_line"`
	// Cgroup is a cgroup v2 path prefix, e.g. "/system.slice/agent.service";
	// it matches that cgroup and every cgroup below it.
	Cgroup string `mapstructure:"cgroup"`
	// StatePaths are the agent's own state and cache files (globs, "~" is
	// the process's home): opens of them by the agent's own processes are
	// dropped as noise when noise.agent_state is on. A tool the agent runs
	// that opens them is still reported. Built-ins have defaults.
	StatePaths []string `mapstructure:"state_paths"`
}

// Proc is what a match is decided on.
type Proc struct {
	Exe        string   // canonical path of the executable image
	Filename   string   // path as invoked, absolute (or a bare name when unknown)
	Args       []string // argv
	CgroupPath string   // cgroup v2 path, the "0::" line of /proc/<pid>/cgroup
}

// Action tells the kernel what a comm or cgroup hit at exec means.
type Action uint8

const (
	// Start: the hit alone proves the match; the kernel starts tracking
	// the process as a session member.
	Start Action = 1
	// Candidate: track the process (and its children) from exec on, and
	// let userspace decide with Match.
	Candidate Action = 2
)

func (a Action) String() string {
	switch a {
	case Start:
		return "start"
	case Candidate:
		return "candidate"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// CommLen is how much of a basename the kernel keeps in comm
// (TASK_COMM_LEN - 1).
const CommLen = 15

// KernelKeys are the exec-time keys for the kernel's matcher maps.
type KernelKeys struct {
	// Names maps a comm (basename truncated to CommLen bytes) to an action.
	Names map[string]Action
	// Cgroups maps a cgroup v2 path prefix to an action.
	Cgroups map[string]Action
	// Dirs maps the names of the resolved image's grandparent and parent
	// directories to an action.
	Dirs map[DirKey]Action
	// MatchAllExecs makes every exec outside a session a candidate; set
	// when some pattern's basename is a wildcard, which comm cannot key.
	MatchAllExecs bool
}

// Interpreters are the comms watched for a matcher that has a command_line
// but no executables: the program it names runs under one of these. A
// program run by another interpreter needs `executables` too.
var Interpreters = []string{
	"node", "nodejs", "bun", "deno", "npx",
	"python", "python3",
	"python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14",
	"pypy3", "uv", "uvx",
}

// DirKey is the kernel's directory key: the names of the image's
// grandparent and parent directories.
type DirKey struct{ Grandparent, Parent string }

// DirKeyLen is how much of a directory name the kernel keeps.
const DirKeyLen = 31

type dirGlob struct {
	dirs DirKey
	base string
}

type compiled struct {
	name   string
	bases  []string // globs on the basename
	paths  []string // globs on the whole path
	dirs   []dirGlob
	cmd    *regexp.Regexp
	cgroup string
}

// Set is a compiled, ordered list of matchers: user matchers first, then
// the enabled built-ins. The first match names the agent.
type Set struct {
	state      map[string][]string // agent name → StatePaths
	ms         []compiled
	needCgroup bool
	needArgs   bool
	keys       KernelKeys
}

// New compiles the user's matchers and, if builtins is set, the built-ins
// not listed in disable. A user matcher named like a built-in replaces it.
// Errors name the offending field as in the config, e.g.
// "agents[2].command_line: ...".
func New(user []Spec, builtins bool, disable []string) (*Set, error) {
	var errs []error
	seen := map[string]bool{}
	s := &Set{}
	for i, sp := range user {
		c, err := compile(sp, fmt.Sprintf("agents[%d]", i))
		if seen[sp.Name] {
			err = errors.Join(fmt.Errorf("agents[%d].name: %q is used twice", i, sp.Name), err)
		}
		seen[sp.Name] = true
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.ms = append(s.ms, c)
		s.addState(sp)
	}
	known := BuiltinNames()
	off := map[string]bool{}
	for i, n := range disable {
		if !slices.Contains(known, n) {
			errs = append(errs, fmt.Errorf("disable_agents[%d]: %q is not a built-in agent (built-ins: %s)", i, n, strings.Join(known, ", ")))
		}
		off[n] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if builtins {
		for _, sp := range builtinSpecs {
			if off[sp.Name] || seen[sp.Name] {
				continue
			}
			c, err := compile(sp, "builtin "+sp.Name)
			if err != nil {
				panic(err) // the built-in table is covered by tests
			}
			s.ms = append(s.ms, c)
			s.addState(sp)
		}
	}
	s.keys = kernelKeys(s.ms)
	for _, c := range s.ms {
		s.needCgroup = s.needCgroup || c.cgroup != ""
		s.needArgs = s.needArgs || c.cmd != nil
	}
	return s, nil
}

func compile(sp Spec, field string) (compiled, error) {
	c := compiled{name: sp.Name}
	var errs []error
	if strings.TrimSpace(sp.Name) == "" {
		errs = append(errs, fmt.Errorf("%s.name: required", field))
	} else if strings.ContainsFunc(sp.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		errs = append(errs, fmt.Errorf("%s.name: %q has control characters", field, sp.Name))
	}
	if len(sp.Executables) == 0 && sp.CommandLine == "" && sp.Cgroup == "" {
		errs = append(errs, fmt.Errorf("%s: needs at least one of executables, command_line, cgroup", field))
	}
	for j, p := range sp.Executables {
		f := fmt.Sprintf("%s.executables[%d]", field, j)
		switch {
		case p == "":
			errs = append(errs, fmt.Errorf("%s: empty pattern", f))
			continue
		case strings.HasSuffix(p, "/"):
			errs = append(errs, fmt.Errorf("%s: %q names a directory, not an executable", f, p))
			continue
		case strings.HasPrefix(p, "**/"):
			parts := strings.Split(p[3:], "/")
			if len(parts) != 3 || !isLiteral(parts[0]) || !isLiteral(parts[1]) || parts[0] == "" || parts[1] == "" || parts[2] == "" {
				errs = append(errs, fmt.Errorf("%s: %q: a \"**/\" pattern is **/<dir>/<dir>/<glob> with two literal directory names", f, p))
				continue
			}
			if len(parts[0]) > DirKeyLen || len(parts[1]) > DirKeyLen {
				errs = append(errs, fmt.Errorf("%s: %q: directory names longer than %d bytes cannot be keyed in the kernel", f, p, DirKeyLen))
				continue
			}
			if _, err := path.Match(parts[2], ""); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q: %w", f, p, err))
				continue
			}
			c.dirs = append(c.dirs, dirGlob{dirs: DirKey{parts[0], parts[1]}, base: parts[2]})
			continue
		case strings.Contains(p, "/") && !strings.HasPrefix(p, "/"):
			errs = append(errs, fmt.Errorf("%s: %q has a '/' but is not absolute; use a basename or an absolute path glob", f, p))
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: %w", f, p, err))
			continue
		}
		if strings.Contains(p, "/") {
			c.paths = append(c.paths, p)
		} else {
			c.bases = append(c.bases, p)
		}
	}
	if sp.CommandLine != "" {
		re, err := regexp.Compile(sp.CommandLine)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.command_line: %w", field, err))
		}
		c.cmd = re
	}
	if sp.Cgroup != "" {
		switch {
		case !strings.HasPrefix(sp.Cgroup, "/"):
			errs = append(errs, fmt.Errorf("%s.cgroup: %q must be an absolute cgroup v2 path such as /system.slice/agent.service", field, sp.Cgroup))
		case path.Clean(sp.Cgroup) == "/":
			errs = append(errs, fmt.Errorf("%s.cgroup: %q would match every process", field, sp.Cgroup))
		case path.Clean(sp.Cgroup) != sp.Cgroup:
			errs = append(errs, fmt.Errorf("%s.cgroup: %q is not clean; write %q", field, sp.Cgroup, path.Clean(sp.Cgroup)))
		}
		c.cgroup = sp.Cgroup
	}
	return c, errors.Join(errs...)
}

// Match returns the name of the first matcher p satisfies.
func (s *Set) addState(sp Spec) {
	if len(sp.StatePaths) == 0 {
		return
	}
	if s.state == nil {
		s.state = map[string][]string{}
	}
	for _, p := range sp.StatePaths {
		if !slices.Contains(s.state[sp.Name], p) {
			s.state[sp.Name] = append(s.state[sp.Name], p)
		}
	}
}

// StatePaths returns the state path globs of every agent that has some.
func (s *Set) StatePaths() map[string][]string { return s.state }

func (s *Set) Match(p Proc) (string, bool) {
	var joined string
	if s.needArgs {
		joined = strings.Join(p.Args, " ")
	}
	for i := range s.ms {
		if s.ms[i].match(&p, joined) {
			return s.ms[i].name, true
		}
	}
	return "", false
}

// MatchProgram is Match on what names a program (executables and command
// line) only: cgroup criteria are ignored, and a matcher that has nothing
// else matches nothing. It tells an agent's own processes from its tools'.
func (s *Set) MatchProgram(p Proc) (string, bool) {
	var joined string
	if s.needArgs {
		joined = strings.Join(p.Args, " ")
	}
	for i := range s.ms {
		c := &s.ms[i]
		hasExe := len(c.bases)+len(c.paths)+len(c.dirs) > 0
		if !hasExe && c.cmd == nil {
			continue
		}
		if hasExe && !c.matchExe(&p) || c.cmd != nil && !c.cmd.MatchString(joined) {
			continue
		}
		return c.name, true
	}
	return "", false
}

func (c *compiled) match(p *Proc, joined string) bool {
	if len(c.bases)+len(c.paths)+len(c.dirs) > 0 && !c.matchExe(p) {
		return false
	}
	if c.cmd != nil && !c.cmd.MatchString(joined) {
		return false
	}
	if c.cgroup != "" && !underCgroup(p.CgroupPath, c.cgroup) {
		return false
	}
	return true
}

func (c *compiled) matchExe(p *Proc) bool {
	for _, f := range [2]string{p.Filename, p.Exe} {
		if f == "" {
			continue
		}
		base := f[strings.LastIndexByte(f, '/')+1:]
		for _, g := range c.bases {
			if ok, _ := path.Match(g, base); ok {
				return true
			}
		}
		for _, g := range c.paths {
			if ok, _ := path.Match(g, f); ok {
				return true
			}
		}
	}
	// Directory keys are the resolved image's: the name it was invoked by
	// (a symlink in ~/.local/bin) says nothing about where it lives.
	if len(c.dirs) > 0 && p.Exe != "" {
		dir, base := path.Split(p.Exe)
		dir = strings.TrimSuffix(dir, "/")
		par := dir[strings.LastIndexByte(dir, '/')+1:]
		dir = dir[:max(strings.LastIndexByte(dir, '/'), 0)]
		gp := dir[strings.LastIndexByte(dir, '/')+1:]
		for _, g := range c.dirs {
			if g.dirs.Parent == par && g.dirs.Grandparent == gp {
				if ok, _ := path.Match(g.base, base); ok {
					return true
				}
			}
		}
	}
	return false
}

func underCgroup(cg, prefix string) bool {
	return cg == prefix || (strings.HasPrefix(cg, prefix) && cg[len(prefix)] == '/')
}

// NeedsCgroup reports whether some matcher looks at the cgroup, so callers
// read /proc/<pid>/cgroup only when it matters.
func (s *Set) NeedsCgroup() bool { return s.needCgroup }

// Names lists the agent names in match order, without repeats.
func (s *Set) Names() []string {
	var out []string
	for _, c := range s.ms {
		if !slices.Contains(out, c.name) {
			out = append(out, c.name)
		}
	}
	return out
}

// KernelKeys returns the exec-time keys for the kernel. The maps are copies.
func (s *Set) KernelKeys() KernelKeys {
	k := KernelKeys{
		Names:         make(map[string]Action, len(s.keys.Names)),
		Cgroups:       make(map[string]Action, len(s.keys.Cgroups)),
		Dirs:          make(map[DirKey]Action, len(s.keys.Dirs)),
		MatchAllExecs: s.keys.MatchAllExecs,
	}
	for n, a := range s.keys.Dirs {
		k.Dirs[n] = a
	}
	for n, a := range s.keys.Names {
		k.Names[n] = a
	}
	for n, a := range s.keys.Cgroups {
		k.Cgroups[n] = a
	}
	return k
}

func isLiteral(p string) bool { return !strings.ContainsAny(p, `*?[\`) }

// kernelKeys derives the kernel's keys. A comm proves a match only when it
// cannot be a prefix of a longer name (fewer than CommLen bytes: a 15-byte
// comm is also what a 16+-byte basename is cut to) and the matcher has no
// other criterion. Start wins when two matchers share a key: the Start
// matcher matches whatever the other one decides.
func kernelKeys(ms []compiled) KernelKeys {
	k := KernelKeys{Names: map[string]Action{}, Cgroups: map[string]Action{}, Dirs: map[DirKey]Action{}}
	put := func(m map[string]Action, key string, a Action) {
		if m[key] != Start {
			m[key] = a
		}
	}
	for _, c := range ms {
		exeOnly := c.cmd == nil && c.cgroup == ""
		for _, g := range append(slices.Clip(c.bases), c.paths...) {
			base := g[strings.LastIndexByte(g, '/')+1:]
			if !isLiteral(base) {
				k.MatchAllExecs = true
				continue
			}
			if len(base) < CommLen && exeOnly && !strings.Contains(g, "/") {
				put(k.Names, base, Start)
				continue
			}
			if len(base) > CommLen {
				base = base[:CommLen]
			}
			put(k.Names, base, Candidate)
		}
		for _, g := range c.dirs {
			// The kernel checks only the directories; the base glob is
			// proved by userspace unless it matches every name.
			a := Candidate
			if exeOnly && g.base == "*" {
				a = Start
			}
			if k.Dirs[g.dirs] != Start {
				k.Dirs[g.dirs] = a
			}
		}
		switch {
		case len(c.bases)+len(c.paths)+len(c.dirs) > 0:
			// The executables keys already catch every process this
			// matcher can match; a cgroup key would only add candidates.
		case c.cgroup != "":
			a := Candidate
			if c.cmd == nil {
				a = Start
			}
			put(k.Cgroups, c.cgroup, a)
		case c.cmd != nil:
			for _, n := range Interpreters {
				put(k.Names, n, Candidate)
			}
		}
	}
	return k
}
