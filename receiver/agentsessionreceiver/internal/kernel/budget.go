package kernel

import (
	"fmt"
	"path"
	"strings"

	"github.com/cilium/ebpf"
)

// open_class values (agentwatch.bpf.c).
const (
	openClassNoise = 1
	openClassKeep  = 2
)

// KeepSet turns sensitive-path globs into what the kernel keeps of the
// failed and O_PATH opens it would otherwise drop: literal prefixes
// ("~/.ssh/*" per home, "/etc/shadow") and basename prefixes ("**/.env*",
// "**/credentials*", "**/id_rsa"). Globs of other shapes keep their literal
// directory part, which keeps more, never less.
func KeepSet(globs, homes []string) (prefixes, names []string) {
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	for _, g := range globs {
		if strings.HasPrefix(g, "**/") {
			base := g[3:]
			if strings.Contains(base, "/") {
				continue // any-depth directory patterns: kept by no key; see README
			}
			add(&names, literalPrefix(base))
			continue
		}
		roots := []string{""}
		rest := g
		if g == "~" || strings.HasPrefix(g, "~/") {
			roots, rest = homes, strings.TrimPrefix(g, "~")
		} else if !strings.HasPrefix(g, "/") {
			add(&names, literalPrefix(path.Base(g)))
			continue
		}
		// "~/.ssh/*" keeps the directory itself too (an O_PATH open of
		// ~/.ssh): a prefix without the '/' keeps more, never less.
		lit := strings.TrimSuffix(literalPrefix(rest), "/")
		for _, r := range roots {
			if r == "" {
				add(&prefixes, lit)
			} else {
				add(&prefixes, strings.TrimSuffix(path.Clean(r), "/")+lit)
			}
		}
	}
	return prefixes, names
}

// literalPrefix is a glob up to its first metacharacter.
func literalPrefix(g string) string {
	if i := strings.IndexAny(g, `*?[\{`); i >= 0 {
		return g[:i]
	}
	return g
}

func (t *Tracer) fillOpenClass(opts Options) error {
	if err := t.putOpenClass(opts.NoiseFiles, opts.KeepPrefixes); err != nil {
		return err
	}
	for _, n := range opts.KeepNames {
		if len(n) > nameKeyLen {
			n = n[:nameKeyLen]
		}
		var k prefixKey
		copy(k.Data[:], n)
		k.PrefixLen = uint32(len(n) * 8)
		if err := t.objs.KeepNames.Update(k, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("keep_names[%q]: %w", n, err)
		}
	}
	return nil
}

// putOpenClass adds exact noise files and keep prefixes to open_class.
func (t *Tracer) putOpenClass(noiseFiles, keepPrefixes []string) error {
	put := func(m *ebpf.Map, s string, cls uint32, exact bool) error {
		var k prefixKey
		if exact && len(s) >= prefixKeyLen {
			return nil // cannot be matched whole: never dropped
		}
		if len(s) > prefixKeyLen {
			s = s[:prefixKeyLen] // keeps more
		}
		copy(k.Data[:], s)
		k.PrefixLen = uint32(len(s) * 8)
		return m.Update(k, cls|uint32(len(s))<<8, ebpf.UpdateAny)
	}
	for _, f := range noiseFiles {
		if err := put(t.objs.OpenClass, f, openClassNoise, true); err != nil {
			return fmt.Errorf("open_class[%q]: %w", f, err)
		}
	}
	for _, p := range keepPrefixes {
		if err := put(t.objs.OpenClass, p, openClassKeep, false); err != nil {
			return fmt.Errorf("open_class[%q]: %w", p, err)
		}
	}
	return nil
}
