package dns

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf is the system resolver configuration.
const ResolvConf = "/etc/resolv.conf"

// ResolvedUpstreamConf is where systemd-resolved lists the upstream servers
// its local stub forwards to.
const ResolvedUpstreamConf = "/run/systemd/resolve/resolv.conf"

// maxResolvConf bounds how much of a resolv.conf is read.
const maxResolvConf = 64 << 10

var (
	resolvedStub      = netip.AddrFrom4([4]byte{127, 0, 0, 53})
	resolvedProxyStub = netip.AddrFrom4([4]byte{127, 0, 0, 54})
)

// SystemResolvers returns the nameservers listed in the resolv.conf at path,
// in order. When one of them is the systemd-resolved stub (127.0.0.53, or
// its proxy 127.0.0.54), the upstream servers from ResolvedUpstreamConf
// are appended if that file exists, since a query to those from an agent
// is as legitimate as one to the stub. Duplicates are dropped.
func SystemResolvers(path string) ([]netip.Addr, error) {
	return systemResolvers(path, ResolvedUpstreamConf)
}

func systemResolvers(path, upstreamPath string) ([]netip.Addr, error) {
	addrs, err := readNameservers(path)
	if err != nil {
		return nil, err
	}
	stub := false
	for _, a := range addrs {
		if a == resolvedStub || a == resolvedProxyStub {
			stub = true
		}
	}
	if stub && upstreamPath != "" && upstreamPath != path {
		up, err := readNameservers(upstreamPath)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return addrs, err
		}
		for _, a := range up {
			if !containsAddr(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, nil
}

func readNameservers(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseResolvConf(io.LimitReader(f, maxResolvConf))
}

// ParseResolvConf returns the addresses of the "nameserver" lines of a
// resolv.conf, without duplicates. Comments start with '#' or ';'; lines
// whose address does not parse are skipped, as the C library does. IPv6
// zones ("fe80::1%eth0") are kept.
func ParseResolvConf(r io.Reader) ([]netip.Addr, error) {
	var out []netip.Addr
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxResolvConf)
	for sc.Scan() {
		line := sc.Text()
		if k := strings.IndexAny(line, "#;"); k >= 0 {
			line = line[:k]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		a = a.Unmap()
		if !containsAddr(out, a) {
			out = append(out, a)
		}
	}
	return out, sc.Err()
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}
