package session

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

func writeHosts(t *testing.T, procRoot string, pid uint32, content string) string {
	t.Helper()
	dir := filepath.Join(procRoot, strconv.Itoa(int(pid)), "root", "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "hosts")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseHosts(t *testing.T) {
	tab := parseHosts([]byte("# comment\n127.0.0.1 localhost\n::1 ip6-localhost ip6-loopback\n" +
		"127.0.0.1 api.anthropic.com # pointed at the fake API\n10.0.0.5\tDB.internal. db\n" +
		"10.0.0.5 other\nnot-an-ip name\n10.0.0.6 bad/name\n127.0.1.1 localhost host-a\n\x00\xff garbage\n"))
	want := map[string]string{
		"127.0.0.1": "api.anthropic.com", "::1": "ip6-localhost", "10.0.0.5": "db.internal", "127.0.1.1": "host-a",
	}
	for a, n := range want {
		if got := tab[netip.MustParseAddr(a)]; got != n {
			t.Errorf("%s: %q, want %q", a, got, n)
		}
	}
	if len(tab) != len(want) {
		t.Errorf("table %v", tab)
	}
}

func TestArgvPeerName(t *testing.T) {
	a := netip.MustParseAddr("127.0.0.1")
	v6 := netip.MustParseAddr("::1")
	cases := []struct {
		args  []string
		addr  netip.Addr
		port  uint16
		known string
		want  string
	}{
		{[]string{"curl", "--resolve", "api.example.com:443:127.0.0.1", "https://api.example.com/"}, a, 443, "", "api.example.com"},
		{[]string{"curl", "--resolve=API.example.com:443:10.0.0.1,127.0.0.1"}, a, 443, "", "api.example.com"},
		{[]string{"curl", "--resolve", "+api.example.com:443:[::1]"}, v6, 443, "", "api.example.com"},
		{[]string{"curl", "--resolve", "api.example.com:8443:127.0.0.1"}, a, 443, "", ""}, // other port
		{[]string{"curl", "--resolve", "*:443:127.0.0.1"}, a, 443, "", ""},                // no name
		{[]string{"curl", "--resolve"}, a, 443, "", ""},
		{[]string{"curl", "--connect-to", "api.example.com:443:127.0.0.1:443"}, a, 443, "", "api.example.com"},
		{[]string{"curl", "--connect-to", "api.example.com::[::1]:"}, v6, 443, "", "api.example.com"},
		{[]string{"curl", "--connect-to", "api.example.com:443:proxy.local:443"}, a, 443, "proxy.local", "api.example.com"},
		{[]string{"curl", "--connect-to", "api.example.com:443:proxy.local:443"}, a, 443, "", ""},
		{[]string{"curl", "--connect-to", "garbage"}, a, 443, "", ""},
		{[]string{"curl", "--", "--resolve", "x.example:443:127.0.0.1"}, a, 443, "", ""},
		{[]string{"echo", "--resolve=x.example:443:127.0.0.1"}, a, 443, "", "x.example"},
	}
	for _, c := range cases {
		if got := argvPeerName(c.args, c.addr, c.port, c.known); got != c.want {
			t.Errorf("%q %s:%d: %q, want %q", c.args, c.addr, c.port, got, c.want)
		}
	}
}

func connects(t *testing.T, ls []logRec) []logRec {
	t.Helper()
	var out []logRec
	for _, l := range ls {
		if l.event == semconv.EventNetConnect {
			out = append(out, l)
		}
	}
	return out
}

// The hosts file under the process's root names a connect no DNS packet
// explained; an edit of the file is seen; argv pinning names curl's.
func TestPeerNameHostsAndArgv(t *testing.T) {
	procRoot := t.TempDir()
	tr, _ := newTestTracker(t, func(c *Config) {
		c.ProcRoot = procRoot
		c.Intent = IntentConfig{DNS: true}
	})
	hosts := writeHosts(t, procRoot, 100, "127.0.0.1 localhost\n127.0.0.1 api.anthropic.com\n")
	writeHosts(t, procRoot, 101, "10.1.1.1 elsewhere.example\n")
	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	tr.Handle(connectEv(100, s0, s0+10*ms, "127.0.0.1", 443, 1, 0))
	tr.Handle(connectEv(100, s0, s0+11*ms, "10.1.1.1", 443, 1, 0)) // only pid 101's root names it
	// the file changes (size and mtime): read again
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n10.1.1.1 mine.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	os.Chtimes(hosts, future, future)
	tr.Handle(connectEv(100, s0, s0+12*ms, "10.1.1.1", 443, 1, 0))
	tr.Handle(forkEv(101, s0+20*ms, s0+20*ms, 100, s0))
	tr.Handle(execEv(101, s0+20*ms, s0+21*ms, 0, 100, "/usr/bin/curl", "/w", "curl", "--resolve", "evil.example:8443:198.51.100.9", "https://evil.example:8443/"))
	tr.Handle(connectEv(101, s0+20*ms, s0+22*ms, "198.51.100.9", 8443, 1, 0))
	tr.Handle(connectEv(101, s0+20*ms, s0+23*ms, "10.1.1.1", 443, 1, 0))
	ld, _ := tr.Flush(wall(s0 + sec))
	cs := connects(t, flatLogs(t, ld))
	// The loopback connect: the hosts file resolved it (not an IP from
	// nowhere) but names no server, as nothing confirmed which one it was.
	want := []struct {
		name, source string
		resolved     bool
	}{
		{"", "", true}, {"", "", false}, {"mine.example", peerHosts, true}, {"evil.example", peerArgv, true}, {"elsewhere.example", peerHosts, true},
	}
	if len(cs) != len(want) {
		t.Fatalf("%d connects", len(cs))
	}
	for i, w := range want {
		a := cs[i].attrs
		if a[semconv.ServerAddress] != nil && a[semconv.ServerAddress] != w.name || w.name != "" && a[semconv.ServerAddress] != w.name {
			t.Errorf("connect %d: %v, want %s", i, a, w.name)
		}
		if w.name != "" && (a[semconv.PeerNameSource] != w.source || a[semconv.PeerResolved] != true) {
			t.Errorf("connect %d: %v, want source %s", i, a, w.source)
		}
		if w.name == "" && (a[semconv.PeerResolved] != w.resolved || a[semconv.PeerNameSource] != nil) {
			t.Errorf("connect %d: %v, want no name, resolved %v", i, a, w.resolved)
		}
	}
	if tr.in.hosts.reads != 3 {
		t.Errorf("hosts read %d times, want 3 (cached when unchanged)", tr.in.hosts.reads)
	}
}

// A connect no source names waits for the first request of a new TLS
// connection of its process, whose Host names it; one nothing names is
// released unnamed after the window, and at session end all are.
func TestPeerNameTLSHost(t *testing.T) {
	tr, _ := newTestTracker(t, func(c *Config) {
		c.Intent = IntentConfig{DNS: true, TLS: true}
	})
	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	tr.Handle(connectEv(100, s0, s0+10*ms, "203.0.113.50", 443, 1, -115)) // EINPROGRESS
	tr.Handle(connectEv(100, s0, s0+11*ms, "198.51.100.7", 443, 1, 0))
	tr.Handle(connectEv(100, s0, s0+12*ms, "198.51.100.8", 53, 2, 0)) // UDP: not held
	// a flush inside the window keeps them back
	ld, _ := tr.Flush(wall(s0 + 500*ms))
	if cs := connects(t, flatLogs(t, ld)); len(cs) != 1 || cs[0].attrs[semconv.NetworkPeerPort] != int64(53) {
		t.Fatalf("first flush: %v", cs)
	}
	req := "GET /v1/models HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n"
	at := s0 + 600*ms
	tr.Handle(&kevent.TLS{Header: hdr(kevent.KindTLS, 0, 100, s0, at), Conn: 0x1, Dir: kevent.TLSWrite,
		Total: uint32(len(req)), Data: []byte(req)})
	// a second request on the same connection names nothing more
	tr.Handle(&kevent.TLS{Header: hdr(kevent.KindTLS, 0, 100, s0, at+ms), Conn: 0x1, Dir: kevent.TLSWrite,
		Total: uint32(len(req)), Data: []byte(req)})
	ld, _ = tr.Flush(wall(s0 + 700*ms))
	cs := connects(t, flatLogs(t, ld))
	if len(cs) != 1 || cs[0].attrs[semconv.NetworkPeerAddress] != "203.0.113.50" ||
		cs[0].attrs[semconv.ServerAddress] != "api.anthropic.com" || cs[0].attrs[semconv.PeerNameSource] != peerTLS ||
		cs[0].attrs[semconv.PeerResolved] != true {
		t.Fatalf("named: %v", cs)
	}
	if cs[0].ts != pcommon.NewTimestampFromTime(wall(s0+10*ms)) {
		t.Errorf("held record keeps its time: %v", cs[0].ts)
	}
	// the name sticks to the address for the session's later connects
	tr.Handle(connectEv(100, s0, s0+800*ms, "203.0.113.50", 443, 1, 0))
	ld, _ = tr.Flush(wall(s0 + 900*ms))
	if cs := connects(t, flatLogs(t, ld)); len(cs) != 1 || cs[0].attrs[semconv.PeerNameSource] != peerTLS {
		t.Fatalf("remembered: %v", cs)
	}
	// the window passes for the other one
	ld, _ = tr.Flush(wall(s0 + 2*sec + 20*ms))
	cs = connects(t, flatLogs(t, ld))
	if len(cs) != 1 || cs[0].attrs[semconv.NetworkPeerAddress] != "198.51.100.7" || cs[0].attrs[semconv.PeerResolved] != false {
		t.Fatalf("released: %v", cs)
	}
	// at shutdown nothing is left behind
	tr.Handle(connectEv(100, s0, s0+3*sec, "198.51.100.9", 443, 1, 0))
	tr.ReleaseHeld()
	ld, _ = tr.Flush(wall(s0 + 3*sec + ms))
	if cs := connects(t, flatLogs(t, ld)); len(cs) != 1 {
		t.Fatalf("shutdown: %v", cs)
	}
	// and at session end
	tr.Handle(connectEv(100, s0, s0+4*sec, "198.51.100.10", 443, 1, 0))
	tr.Handle(exitEv(100, s0, s0+4*sec+ms, 0))
	ld, _ = tr.Flush(wall(s0 + 10*sec))
	if cs := connects(t, flatLogs(t, ld)); len(cs) != 1 {
		t.Fatalf("session end: %v", cs)
	}
}

// A hosts file's name for a loopback address (here the host's own name)
// gives way to the Host of the TLS connection; without one the connect is
// resolved but unnamed (a local listener is not the API a hosts line
// points at it).
func TestPeerNameLoopbackHostsThenTLS(t *testing.T) {
	procRoot := t.TempDir()
	tr, _ := newTestTracker(t, func(c *Config) {
		c.ProcRoot = procRoot
		c.Intent = IntentConfig{DNS: true, TLS: true}
	})
	writeHosts(t, procRoot, 100, "127.0.0.1 localhost myhost\n")
	const s0 = 1000 * sec
	tr.Handle(execEv(100, s0, s0+ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
	tr.Handle(connectEv(100, s0, s0+10*ms, "127.0.0.1", 8443, 1, 0))
	req := "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: 0\r\n\r\n"
	tr.Handle(&kevent.TLS{Header: hdr(kevent.KindTLS, 0, 100, s0, s0+20*ms), Conn: 0x1, Dir: kevent.TLSWrite,
		Total: uint32(len(req)), Data: []byte(req)})
	tr.Handle(connectEv(100, s0, s0+30*ms, "127.0.0.1", 8443, 1, 0))
	ld, _ := tr.Flush(wall(s0 + 3*sec))
	cs := connects(t, flatLogs(t, ld))
	if len(cs) != 2 {
		t.Fatalf("%d connects", len(cs))
	}
	if a := cs[0].attrs; a[semconv.ServerAddress] != "api.anthropic.com" || a[semconv.PeerNameSource] != peerTLS {
		t.Errorf("first: %v", a)
	}
	if a := cs[1].attrs; a[semconv.ServerAddress] != nil || a[semconv.PeerNameSource] != nil || a[semconv.PeerResolved] != true {
		t.Errorf("second (no TLS request followed): %v, want resolved with no name", a)
	}
}
