package policy

import (
	"strings"
)

func (e *pathEntry) covers(p string, homes *Homes) bool {
	g := e.glob
	if !g.HasHome() {
		return g.Covers(p, "")
	}
	for i := range homes {
		if homes.has(i) && g.Covers(p, homes[i]) {
			return true
		}
	}
	return false
}

// IsPersistence reports whether p is a persistence target (the files of
// file.persistence), whatever the open mode. It is false for everything
// when file.persistence is disabled.
func (pol *Policy) IsPersistence(p string, homes Homes) bool {
	var rs RuleSet
	pol.MatchPersistence(p, homes, &rs)
	return rs.Has(RuleFilePersistence)
}

// MatchProcSecrets adds file.process_secrets when p is the environment or
// memory of another process: /proc/<N>/environ, /proc/<N>/mem, or
// /proc/<N>/task/<M>/{environ,mem}, with N not the opener's pid. target,
// when hasTarget, is the receiver's word on N (agent.file.proc_target_pid);
// else N comes from the path. /proc/self, /proc/thread-self and every other
// /proc file are not scored. It reports whether the match makes the open a
// sensitive read (false when the rule is disabled).
func (pol *Policy) MatchProcSecrets(p string, pid int64, hasPID bool, target int64, hasTarget bool, rs *RuleSet) bool {
	n, ok := procSecretTarget(p)
	if !ok {
		return false
	}
	if hasTarget {
		n = target
	}
	if hasPID && n == pid {
		return false
	}
	rs.Add(RuleFileProcessSecrets)
	return pol.Enabled(RuleFileProcessSecrets)
}

// procSecretTarget parses /proc/<N>/{environ,mem} and
// /proc/<N>/task/<M>/{environ,mem} (p clean) and returns N.
func procSecretTarget(p string) (int64, bool) {
	rest, ok := strings.CutPrefix(p, "/proc/")
	if !ok {
		return 0, false
	}
	n, rest, ok := leadingPID(rest)
	if !ok {
		return 0, false
	}
	if t, ok := strings.CutPrefix(rest, "/task/"); ok {
		if _, r, ok := leadingPID(t); ok {
			rest = r
		} else {
			return 0, false
		}
	}
	return n, rest == "/environ" || rest == "/mem"
}

// leadingPID splits s at its leading decimal number (a pid or tid).
func leadingPID(s string) (int64, string, bool) {
	var n int64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i >= 10 { // beyond any pid_max
			return 0, "", false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, s[i:], i > 0
}

// IsBindMount reports whether mount flags ("MS_BIND|MS_REC") make a bind
// mount: the source is another name of an existing file or tree.
func IsBindMount(flags string) bool {
	for flags != "" {
		f := flags
		if i := strings.IndexByte(flags, '|'); i >= 0 {
			f, flags = flags[:i], flags[i+1:]
		} else {
			flags = ""
		}
		if strings.TrimSpace(f) == "MS_BIND" {
			return true
		}
	}
	return false
}

// ModeAddsExec reports whether a file mode has an execute bit (any of 0111).
func ModeAddsExec(mode uint32) bool { return mode&0o111 != 0 }
