package session

import (
	"bufio"
	"bytes"
	"github.com/agentwatch/agentwatch/internal/dns"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/agentwatch/agentwatch/internal/semconv"
)

// Where server.address of a connect comes from (semconv.PeerNameSource).
const (
	peerDNS   = "dns"
	peerHosts = "hosts"
	peerArgv  = "argv"
	peerTLS   = "tls"
)

// peerName is a name the session knows for an address, and its source.
type peerName struct {
	name   string
	source string
	// generic: a hosts file's name for a loopback address, used only when
	// the TLS layer of the connection confirms a name.
	generic bool
}

const (
	// maxHostsCaches bounds the parsed /etc/hosts files kept (one per mount
	// namespace and mtime); a host has few namespaces, more means churn.
	maxHostsCaches = 64
	maxHostsBytes  = 1 << 20
	maxHostsNames  = 4096
	// heldConnectWindow is how long an unnamed connect waits for the first
	// HTTP request of a new TLS connection of its process to name it.
	heldConnectWindow = 2_000_000_000 // ns
	maxHeldPerSession = 256
)

type rootFileKey struct {
	mntNS uint64
	dev   uint64
	ino   uint64
	mtime int64
	size  int64
}

// rootFiles caches what a file under each process's own root says
// (/etc/hosts, /etc/resolv.conf): a process in another mount namespace has
// its own. The key is the file's identity (mount namespace, device, inode,
// mtime, size), so an edited or bind-mounted file is read again and an
// unchanged one costs two stats.
type rootFiles[T any] struct {
	procRoot string
	name     string // under the root, e.g. "etc/hosts"
	parse    func([]byte) T
	m        map[rootFileKey]T
	reads    uint64
}

func newRootFiles[T any](procRoot, name string, parse func([]byte) T) *rootFiles[T] {
	return &rootFiles[T]{procRoot: procRoot, name: name, parse: parse, m: map[rootFileKey]T{}}
}

// get returns the parsed file under pid's root; ok is false when it cannot
// be read (the process is gone). A file over maxHostsBytes parses as zero.
func (c *rootFiles[T]) get(pid uint32) (T, bool) {
	var zero T
	if pid == 0 {
		return zero, false
	}
	base := c.procRoot + "/" + strconv.FormatUint(uint64(pid), 10)
	var k rootFileKey
	var st syscall.Stat_t
	if syscall.Stat(base+"/ns/mnt", &st) == nil {
		k.mntNS = st.Ino
	}
	path := base + "/root/" + c.name
	if syscall.Stat(path, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return zero, false
	}
	k.dev, k.ino, k.mtime, k.size = uint64(st.Dev), st.Ino, st.Mtim.Nano(), st.Size
	v, ok := c.m[k]
	if !ok {
		if st.Size <= maxHostsBytes {
			if b, err := os.ReadFile(path); err == nil {
				v = c.parse(b)
				c.reads++
			}
		}
		if len(c.m) >= maxHostsCaches {
			clear(c.m)
		}
		c.m[k] = v
	}
	return v, true
}

// of is what the file under p's root says. A short-lived process may be
// gone when its record is handled: its parent's and the session root's
// roots are most likely its own.
func (c *rootFiles[T]) of(p *proc) (T, bool) {
	for _, pid := range [...]uint32{p.key.PID, p.ppid, p.sess.rootPID} {
		if v, ok := c.get(pid); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// hostsCache: the address → name tables of the /etc/hosts files processes
// see under their own root.
type hostsCache = rootFiles[map[netip.Addr]string]

func newHostsCache(procRoot string) *hostsCache {
	return newRootFiles(procRoot, "etc/hosts", parseHosts)
}

// resolversCache: the nameservers of the /etc/resolv.conf each process
// sees under its own root. A sandbox with its own resolver configuration
// uses that resolver as its system's: no foreign resolver.
type resolversCache = rootFiles[[]netip.Addr]

func newResolversCache(procRoot string) *resolversCache {
	return newRootFiles(procRoot, "etc/resolv.conf", func(b []byte) []netip.Addr {
		addrs, _ := dns.ParseResolvConf(bytes.NewReader(b))
		return addrs
	})
}

// loopbackAliases are the generic names hosts files give the loopback
// address; a more specific name on the same address (an API pointed at a
// local server) is the one the process asked for.
var loopbackAliases = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "localhost4": true, "localhost6": true,
	"localhost4.localdomain4": true, "localhost6.localdomain6": true,
	"ip6-localhost": true, "ip6-loopback": true,
}

// parseHosts reads a hosts(5) file. An address named on several lines
// keeps its first name, except that a specific name beats the generic
// loopback aliases.
func parseHosts(b []byte) map[netip.Addr]string {
	tab := map[netip.Addr]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() && len(tab) < maxHostsNames {
		line := sc.Bytes()
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		a = a.WithZone("").Unmap()
		name := strings.TrimSuffix(strings.ToLower(f[1]), ".")
		if !validHostName(name) {
			continue
		}
		if old, ok := tab[a]; ok && !(loopbackAliases[old] && !loopbackAliases[name]) {
			continue
		}
		// Aliases on the line: a specific one beats a generic first name.
		if loopbackAliases[name] {
			for _, al := range f[2:] {
				al = strings.TrimSuffix(strings.ToLower(al), ".")
				if validHostName(al) && !loopbackAliases[al] {
					name = al
					break
				}
			}
		}
		tab[a] = name
	}
	return tab
}

func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// argvPeerName finds the name a command line pins to addr:port: curl's
// --resolve HOST:PORT:ADDR[,ADDR…] and --connect-to HOST1:PORT1:HOST2:PORT2
// when HOST2 is an address. known is the name another source gives addr,
// for --connect-to to a host name (HOST2 then resolves to addr and the
// request is for HOST1).
func argvPeerName(args []string, addr netip.Addr, port uint16, known string) string {
	addr = addr.WithZone("").Unmap()
	for i := 0; i < len(args); i++ {
		a := args[i]
		var opt, val string
		switch {
		case a == "--resolve" || a == "--connect-to":
			if i+1 >= len(args) {
				return ""
			}
			opt, val = a, args[i+1]
			i++
		case strings.HasPrefix(a, "--resolve="):
			opt, val = "--resolve", a[len("--resolve="):]
		case strings.HasPrefix(a, "--connect-to="):
			opt, val = "--connect-to", a[len("--connect-to="):]
		case a == "--":
			return ""
		default:
			continue
		}
		if opt == "--resolve" {
			if n := matchResolve(val, addr, port); n != "" {
				return n
			}
		} else if n := matchConnectTo(val, addr, port, known); n != "" {
			return n
		}
	}
	return ""
}

func matchResolve(val string, addr netip.Addr, port uint16) string {
	val = strings.TrimPrefix(strings.TrimPrefix(val, "+"), "-")
	host, rest, ok := strings.Cut(val, ":")
	if !ok {
		return ""
	}
	p, addrs, ok := strings.Cut(rest, ":")
	if !ok || p != strconv.Itoa(int(port)) {
		return ""
	}
	host = strings.ToLower(host)
	if host == "*" || !validHostName(host) {
		return ""
	}
	for _, s := range strings.Split(addrs, ",") {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if a, err := netip.ParseAddr(s); err == nil && a.WithZone("").Unmap() == addr {
			return host
		}
	}
	return ""
}

func matchConnectTo(val string, addr netip.Addr, port uint16, known string) string {
	// HOST1:PORT1:HOST2:PORT2, HOST2 possibly a [v6] literal; empty HOST1
	// or PORT1 mean any.
	h1, rest, ok := strings.Cut(val, ":")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	k := strings.LastIndexByte(rest, ':')
	if k < 0 {
		return ""
	}
	h2, p2 := rest[:k], rest[k+1:]
	if p2 != "" && p2 != strconv.Itoa(int(port)) {
		return ""
	}
	h1 = strings.ToLower(h1)
	if !validHostName(h1) {
		return ""
	}
	h2 = strings.TrimSuffix(strings.TrimPrefix(h2, "["), "]")
	if a, err := netip.ParseAddr(h2); err == nil {
		if a.WithZone("").Unmap() == addr {
			return h1
		}
		return ""
	}
	if known != "" && strings.EqualFold(h2, known) {
		return h1
	}
	return ""
}

// heldConnect is a connect record no source named yet, kept out of the
// session's records until the TLS layer of its process names it or the
// window passes.
type heldConnect struct {
	lr   plog.LogRecord // standalone
	pid  uint32
	at   uint64
	addr netip.Addr
}

// peerNameOf returns what names addr for p's connect, trying the sources
// from the most specific to the least: the process's own pinning, the
// session's DNS answers (and names the TLS layer gave), then the hosts
// file under its root.
func (t *Tracker) peerNameOf(p *proc, addr netip.Addr, port uint16) peerName {
	addr = addr.WithZone("").Unmap()
	var known peerName
	if t.in.cfg.DNS && p.sess.intent != nil {
		known = p.sess.intent.names[addr]
	}
	if n := argvPeerName(p.img.args, addr, port, known.name); n != "" {
		return peerName{name: n, source: peerArgv}
	}
	if known.name != "" {
		return known
	}
	if t.in.hosts != nil {
		if tab, _ := t.in.hosts.of(p); tab[addr] != "" {
			// Loopback names of a hosts file are many (localhost, the host's
			// own name, APIs pointed at a local server): the TLS layer's
			// says which one the process talked to.
			return peerName{name: tab[addr], source: peerHosts, generic: addr.IsLoopback()}
		}
	}
	return peerName{}
}

// holdConnect keeps an unnamed connect record back; false when it cannot
// (bounds, or no TLS capture to name it).
func (t *Tracker) holdConnect(p *proc, addr netip.Addr, at uint64) (plog.LogRecord, bool) {
	if t.in == nil || !t.in.cfg.TLS {
		return plog.LogRecord{}, false
	}
	si := p.sess.intentState()
	if len(si.held) >= maxHeldPerSession {
		return plog.LogRecord{}, false
	}
	lr := plog.NewLogRecord()
	si.held = append(si.held, &heldConnect{lr: lr, pid: p.key.PID, at: at, addr: addr.WithZone("").Unmap()})
	return lr, true
}

// nameHeldConnect names the oldest held connect of pid from the Host of
// the first request on a new TLS connection: connect comes before the
// handshake, so that connection is the one this connect opened (processes
// that open several at once may get them paired out of order; the name is
// the host they talked to either way).
func (t *Tracker) nameHeldConnect(p *proc, host string, at uint64) {
	si := p.sess.intent
	if si == nil || host == "" {
		return
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return // an address names nothing
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if !validHostName(host) {
		return
	}
	for i, h := range si.held {
		if h.pid != p.key.PID || h.at > at || at-h.at > heldConnectWindow {
			continue
		}
		a := h.lr.Attributes()
		a.PutStr(semconv.ServerAddress, host)
		a.PutStr(semconv.PeerNameSource, peerTLS)
		a.PutBool(semconv.PeerResolved, true)
		if !h.addr.IsLoopback() {
			// a loopback address is every local server's: no name for it
			t.rememberName(p.sess, h.addr, peerName{name: host, source: peerTLS})
		}
		t.releaseHeldAt(p.sess, i)
		return
	}
}

func (t *Tracker) releaseHeldAt(s *session, i int) {
	si := s.intent
	h := si.held[i]
	h.lr.MoveTo(s.logs.AppendEmpty())
	copy(si.held[i:], si.held[i+1:])
	si.held[len(si.held)-1] = nil
	si.held = si.held[:len(si.held)-1]
}

// releaseHeld puts the held connects of s that are older than the window
// (all of them when all is set) among its records.
func (t *Tracker) releaseHeld(s *session, nowBoot uint64, all bool) {
	si := s.intent
	if si == nil || len(si.held) == 0 {
		return
	}
	kept := si.held[:0]
	for _, h := range si.held {
		if all || nowBoot < h.at || nowBoot-h.at >= heldConnectWindow {
			h.lr.MoveTo(s.logs.AppendEmpty())
			continue
		}
		kept = append(kept, h)
	}
	clear(si.held[len(kept):])
	si.held = kept
}

// ReleaseHeld ends the wait of every held connect record, so that the
// next Flush hands them over: call it before the last Flush at shutdown.
func (t *Tracker) ReleaseHeld() {
	for _, s := range t.sessions {
		t.releaseHeld(s, 0, true)
	}
}
