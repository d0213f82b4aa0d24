package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// maxFileSize bounds what LoadFile reads; a policy is a few kilobytes.
const maxFileSize = 4 << 20

// fileDoc is the TOML form of a policy. [agent_monitoring] is the seed form
// of DESIGN.md; [rules.<id>] and [[custom_rules]] are agentwatch's additions.
type fileDoc struct {
	AgentMonitoring struct {
		SensitivePaths      *[]string `toml:"sensitive_paths"`
		RiskyBinaries       *[]string `toml:"risky_binaries"`
		AllowedDestinations *[]string `toml:"allowed_destinations"`
	} `toml:"agent_monitoring"`
	Rules       map[string]RuleOverride `toml:"rules"`
	CustomRules []CustomRule            `toml:"custom_rules"`
}

// LoadFile reads and parses a policy file. The warnings name keys that were
// ignored: unknown keys in [agent_monitoring] and unknown top-level tables,
// which another tool sharing the file may own. Unknown keys inside agentwatch's
// own tables are errors, since they are most likely typos.
func LoadFile(name string) (Layer, []string, error) {
	f, err := os.Open(name)
	if err != nil {
		return Layer{}, nil, &FieldError{File: name, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Layer{}, nil, &FieldError{File: name, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	if len(data) > maxFileSize {
		return Layer{}, nil, &FieldError{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	}
	return ParseFile(name, data)
}

// ParseFile parses policy file content; name is used in errors.
func ParseFile(name string, data []byte) (Layer, []string, error) {
	src := source{file: name, lines: indexLines(data), listPrefix: "agent_monitoring."}
	var doc fileDoc
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&doc)

	var warnings []string
	var strict *toml.StrictMissingError
	var decErr *toml.DecodeError
	switch {
	case err == nil:
	case errors.As(err, &strict):
		var errs []error
		for i := range strict.Errors {
			e := &strict.Errors[i]
			key := e.Key()
			row, _ := e.Position()
			field := ""
			for _, k := range key {
				field = keyPath(field, k)
			}
			if len(key) > 0 && (key[0] == "agent_monitoring" || (key[0] != "rules" && key[0] != "custom_rules")) {
				warnings = append(warnings, fmt.Sprintf("policy_file %q: line %d: unknown key %s ignored", name, row, field))
				continue
			}
			errs = append(errs, &FieldError{File: name, Line: row, Field: fieldAt(src, row, field), Msg: "unknown key"})
		}
		if len(errs) > 0 {
			return Layer{}, warnings, errors.Join(errs...)
		}
	case errors.As(err, &decErr):
		row, _ := decErr.Position()
		return Layer{}, nil, &FieldError{File: name, Line: row, Field: fieldAt(src, row, ""), Msg: tidyDecodeMessage(decErr.Error())}
	default:
		return Layer{}, nil, &FieldError{File: name, Msg: tidyDecodeMessage(err.Error())}
	}

	l := Layer{
		SensitivePaths:      doc.AgentMonitoring.SensitivePaths,
		RiskyBinaries:       doc.AgentMonitoring.RiskyBinaries,
		AllowedDestinations: doc.AgentMonitoring.AllowedDestinations,
		Rules:               doc.Rules,
		CustomRules:         doc.CustomRules,
		src:                 src,
	}
	return l, warnings, nil
}

var decodeTypeRE = regexp.MustCompile(`cannot decode TOML (\w+) into .* of type (\S+)$`)

// tidyDecodeMessage keeps go-toml's reason but drops the Go type names of
// this package, which mean nothing to the person editing the file.
func tidyDecodeMessage(msg string) string {
	msg = strings.TrimPrefix(msg, "toml: ")
	if m := decodeTypeRE.FindStringSubmatch(msg); m != nil {
		want := m[2]
		switch {
		case strings.Contains(want, "[]string"):
			want = "an array of strings"
		case strings.Contains(want, "[]int"):
			want = "an array of integers"
		case strings.Contains(want, "int"):
			want = "an integer"
		case strings.Contains(want, "bool"):
			want = "a boolean"
		case strings.Contains(want, "string"):
			want = "a string"
		case strings.Contains(want, "map"), strings.Contains(want, "CustomRule"), strings.Contains(want, "RuleOverride"), strings.Contains(want, "struct"):
			want = "a table"
		}
		return fmt.Sprintf("wrong type: found a TOML %s, want %s", m[1], want)
	}
	return msg
}

// fieldAt returns the field path at a line, preferring fallback; the longest
// path on the line is the most precise one.
func fieldAt(src source, line int, fallback string) string {
	if fallback != "" {
		return fallback
	}
	best := ""
	for f, l := range src.lines {
		if l == line && (len(f) > len(best) || len(f) == len(best) && f < best) {
			best = f
		}
	}
	return best
}

// indexLines maps each field path of the document to its line, so semantic
// errors found after decoding (a bad glob in an array) can name the line.
// It is best effort: on a syntax error it indexes what it parsed, and the
// decoder reports the error itself.
func indexLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	prefix := ""
	arrayTables := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			k, line := keyOf(&p, e.Key())
			prefix = k
			setLine(lines, prefix, line)
		case unstable.ArrayTable:
			k, line := keyOf(&p, e.Key())
			i := arrayTables[k]
			arrayTables[k] = i + 1
			prefix = indexPath(k, i)
			setLine(lines, prefix, line)
		case unstable.KeyValue:
			k, line := keyOf(&p, e.Key())
			full := joinPath(prefix, k)
			setLine(lines, full, line)
			indexValue(&p, lines, full, e.Value())
		}
	}
	return lines
}

func setLine(lines map[string]int, field string, line int) {
	if _, ok := lines[field]; !ok && line > 0 {
		lines[field] = line
	}
}

func joinPath(prefix, k string) string {
	if prefix == "" {
		return k
	}
	if k == "" {
		return prefix
	}
	return prefix + "." + k
}

// keyOf renders a (possibly dotted) key as a field path and returns the line
// of its first part.
func keyOf(p *unstable.Parser, it unstable.Iterator) (string, int) {
	path, line := "", 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = nodeLine(p, n)
		}
		path = keyPath(path, string(n.Data))
	}
	return path, line
}

// nodeLine is the line of a node that has a raw range (keys and strings).
func nodeLine(p *unstable.Parser, n *unstable.Node) int {
	if n.Raw.Length == 0 || int(n.Raw.Offset)+int(n.Raw.Length) > len(p.Data()) {
		return 0
	}
	return p.Shape(n.Raw).Start.Line
}

func indexValue(p *unstable.Parser, lines map[string]int, path string, v *unstable.Node) {
	if v == nil {
		return
	}
	switch v.Kind {
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); i++ {
			n := it.Node()
			ip := indexPath(path, i)
			setLine(lines, ip, nodeLine(p, n))
			indexValue(p, lines, ip, n)
		}
	case unstable.InlineTable:
		it := v.Children()
		first := 0
		for it.Next() {
			kv := it.Node()
			k, line := keyOf(p, kv.Key())
			if first == 0 {
				first = line
			}
			full := joinPath(path, k)
			setLine(lines, full, line)
			indexValue(p, lines, full, kv.Value())
		}
		setLine(lines, path, first)
	}
}

// sortedKeys returns map keys in order, for deterministic errors.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
