package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// SeedSensitivePaths, SeedRiskyBinaries and SeedAllowedDestinations are the
// seed policy of DESIGN.md; they are the defaults of both policy sources.
var (
	SeedSensitivePaths = []string{
		"~/.aws/*", "~/.ssh/*", "~/.kube/*", "~/.config/gcloud/*", "~/.gnupg/*", "**/.env*", "**/credentials*",
	}
	SeedRiskyBinaries = []string{
		"curl", "wget", "base64", "xxd", "dig", "nslookup", "nc", "ncat", "tar", "zip", "chmod", "ssh", "scp",
	}
	SeedAllowedDestinations = []string{
		"api.anthropic.com", "api.openai.com", "api.github.com", "registry.npmjs.org", "pypi.org", "crates.io",
	}
)

// RuleOverride disables or re-scores a rule. Nil fields keep the default.
type RuleOverride struct {
	Enabled *bool `mapstructure:"enabled" toml:"enabled"`
	Score   *int  `mapstructure:"score" toml:"score"`
}

// CustomRule is a user rule. Exactly one matcher kind is set: paths,
// binary and/or argv, destinations, ports, or dns.
type CustomRule struct {
	ID          string `mapstructure:"id" toml:"id"`
	Category    string `mapstructure:"category" toml:"category"`
	Score       int    `mapstructure:"score" toml:"score"`
	Description string `mapstructure:"description" toml:"description"`

	// Paths are path globs matched against file opens.
	Paths []string `mapstructure:"paths" toml:"paths"`
	// IncludeWorkdir also scores opens inside the session's working
	// directory for location patterns (those not starting with "**").
	IncludeWorkdir bool `mapstructure:"include_workdir" toml:"include_workdir"`

	// Binary is an executable name ("rm") or path glob ("/opt/**/bin/*").
	Binary string `mapstructure:"binary" toml:"binary"`
	// Argv is a regular expression (RE2) matched against the command line,
	// argv joined by single spaces, argv[0] included.
	Argv string `mapstructure:"argv" toml:"argv"`

	// Destinations are names, "*.domain" wildcards, IP addresses or CIDRs
	// matched against connects.
	Destinations []string `mapstructure:"destinations" toml:"destinations"`
	// Ports are destination ports matched against connects.
	Ports []int `mapstructure:"ports" toml:"ports"`
	// DNS are names or "*.domain" wildcards matched against DNS questions.
	DNS []string `mapstructure:"dns" toml:"dns"`
}

// Layer is one policy source. A nil list means the source does not set it.
type Layer struct {
	SensitivePaths      *[]string
	RiskyBinaries       *[]string
	AllowedDestinations *[]string
	Rules               map[string]RuleOverride
	CustomRules         []CustomRule

	src source
}

// InlineLayer wraps the lists and rules from the collector config; it sets
// all three lists.
func InlineLayer(sensitive, risky, allowed []string, rules map[string]RuleOverride, custom []CustomRule) Layer {
	return Layer{
		SensitivePaths: &sensitive, RiskyBinaries: &risky, AllowedDestinations: &allowed,
		Rules: rules, CustomRules: custom,
	}
}

// source names where a layer came from, so errors point at the right place.
type source struct {
	file       string         // "" for the collector config
	lines      map[string]int // field path → line, for files
	listPrefix string         // where the three lists live: "agent_monitoring." in files
}

// FieldError is a policy error that names the field, and for the policy file
// the file and the line.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "policy_file %q: ", e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", e.Line)
		}
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// list returns the displayed path of a list field, e.g. "sensitive_paths" or
// "agent_monitoring.sensitive_paths".
func (s *source) list(name string) string { return s.listPrefix + name }

func (s *source) errorf(field, format string, args ...any) error {
	e := &FieldError{File: s.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if s.file != "" {
		e.Line = s.lineOf(field)
	}
	return e
}

// lineOf finds the line of field, or of its nearest enclosing field, since
// not every value node carries a position.
func (s *source) lineOf(field string) int {
	for f := field; f != ""; f = parentField(f) {
		if l, ok := s.lines[f]; ok {
			return l
		}
	}
	return 0
}

// parentField strips the last element of a field path: "a.b[2]" → "a.b",
// `rules."x.y".score` → `rules."x.y"`.
func parentField(f string) string {
	if strings.HasSuffix(f, "]") {
		if i := strings.LastIndexByte(f, '['); i >= 0 {
			return f[:i]
		}
	}
	inQuote := false
	last := -1
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case '.':
			if !inQuote {
				last = i
			}
		}
	}
	if last < 0 {
		return ""
	}
	return f[:last]
}

// keyPath appends a key to a field path, quoting it when it is not a bare
// TOML key, so rule ids with dots stay one element: rules."net.foo".
func keyPath(prefix, key string) string {
	k := key
	if !bareKey(key) {
		k = strconv.Quote(key)
	}
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func bareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func indexPath(prefix string, i int) string { return prefix + "[" + strconv.Itoa(i) + "]" }
