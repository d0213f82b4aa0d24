package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// destSet matches destinations: exact names, "*.domain" wildcards (which
// match subdomains, not the domain itself), IP addresses and CIDRs.
type destSet struct {
	names    map[string]struct{}
	suffixes []string // ".github.com" for "*.github.com"
	prefixes []netip.Prefix
}

func compileDestSet(vals []string, src *source, field string, allowIP bool) (destSet, []error) {
	d := destSet{names: map[string]struct{}{}}
	var errs []error
	for i, raw := range vals {
		v := strings.TrimSpace(raw)
		f := indexPath(field, i)
		if allowIP {
			if pfx, err := netip.ParsePrefix(v); err == nil {
				d.prefixes = append(d.prefixes, unmapPrefix(pfx).Masked())
				continue
			}
			if a, err := netip.ParseAddr(v); err == nil {
				a = a.Unmap()
				d.prefixes = append(d.prefixes, netip.PrefixFrom(a, a.BitLen()))
				continue
			}
		}
		name := NormalizeName(v)
		wildcard := false
		if strings.HasPrefix(name, "*.") {
			wildcard, name = true, name[2:]
		}
		if err := validName(name); err != nil {
			what := "a name or *.domain"
			if allowIP {
				what = "a name, *.domain, IP address or CIDR"
			}
			errs = append(errs, src.errorf(f, "%q is not %s: %v", raw, what, err))
			continue
		}
		if wildcard {
			d.suffixes = append(d.suffixes, "."+name)
		} else {
			d.names[name] = struct{}{}
		}
	}
	return d, errs
}

// merge adds every destination of o.
func (d *destSet) merge(o *destSet) {
	if d.names == nil {
		d.names = map[string]struct{}{}
	}
	for n := range o.names {
		d.names[n] = struct{}{}
	}
	d.suffixes = append(d.suffixes, o.suffixes...)
	d.prefixes = append(d.prefixes, o.prefixes...)
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n ≥ 96) into a.b.c.d/(n-96), so a
// v4-mapped CIDR matches the v4 addresses connects are normalised to.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case len(name) > 253:
		return fmt.Errorf("longer than 253 characters")
	case strings.Contains(name, "*"):
		return fmt.Errorf(`a wildcard is only allowed as a leading "*."`)
	case strings.Contains(name, ":"):
		return fmt.Errorf("ports are not part of a destination; use standard_ports or a custom ports rule")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return fmt.Errorf("empty label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("invalid character %q", c)
			}
		}
	}
	return nil
}

// NormalizeName lowercases a DNS name and drops the trailing dot. It does
// not allocate when the name is already normal.
func NormalizeName(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

func (d *destSet) matchName(name string) bool {
	if name == "" {
		return false
	}
	if _, ok := d.names[name]; ok {
		return true
	}
	for _, s := range d.suffixes {
		if len(name) > len(s) && strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func (d *destSet) matchAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range d.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
