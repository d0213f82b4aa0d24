package engine

import (
	"testing"

	"github.com/agentwatch/agentwatch/processor/agentscoreprocessor/internal/policy"
)

func closeEv(s SessionKey, pid int64, ts int64, addr, name string, sent int64) *Event {
	return &Event{Kind: KindNetClose, Session: s, Span: spanOf(pid), Time: ts, PID: pid, HasPID: true,
		PeerAddr: addr, Port: 443, ServerAddr: name, SentBytes: sent, HasSentBytes: true, PeerResolved: -1}
}

// A closed connection scores only what it carried out: at least
// egress_volume_bytes to a destination that is not allowed. Allowed
// destinations (by name, or by the session's DNS answers) and small
// transfers score nothing, and the connect rules are not scored again.
func TestNetCloseEgressVolume(t *testing.T) {
	e, _ := newEngine(t, func(s *Settings) { s.EgressVolumeBytes = 1000 })
	s := sess(1)
	e.Score(dnsEv(s, 10, at(0), "api.anthropic.com", "127.0.0.53", "203.0.113.5"))
	for _, tc := range []struct {
		name       string
		addr, host string
		sent       int64
		want       bool
	}{
		{"big to a stranger", "198.51.100.7", "", 1000, true},
		{"big to a named stranger", "198.51.100.7", "evil.example", 5000, true},
		{"small to a stranger", "198.51.100.7", "", 999, false},
		{"big to an allowed name", "198.51.100.8", "api.github.com", 1 << 30, false},
		{"big to an address the session resolved to an allowed name", "203.0.113.5", "", 1 << 30, false},
		{"big to loopback", "127.0.0.1", "", 5000, true},
	} {
		r := e.Score(closeEv(s, 11, at(1), tc.addr, tc.host, tc.sent))
		if got := has(e, r, "net.egress_volume"); got != tc.want {
			t.Errorf("%s: net.egress_volume = %v, want %v (rules %v)", tc.name, got, tc.want, ruleIDs(e, r.Rules))
		}
		var others policy.RuleSet
		others.Union(&r.Rules)
		if tc.want {
			if ids := ruleIDs(e, r.Rules); len(ids) != 1 {
				t.Errorf("%s: rules %v, want only net.egress_volume", tc.name, ids)
			}
			if r.Score != 60 || r.Alert {
				t.Errorf("%s: score %d alert %v", tc.name, r.Score, r.Alert)
			}
		} else if !others.Empty() {
			t.Errorf("%s: rules %v", tc.name, ruleIDs(e, r.Rules))
		}
	}
	// without the byte count (an older receiver) nothing is scored
	ev := closeEv(s, 11, at(2), "198.51.100.7", "", 0)
	ev.HasSentBytes = false
	if r := e.Score(ev); r.Score != 0 {
		t.Errorf("no bytes: score %d", r.Score)
	}
	// the default threshold is 1 MiB
	d, _ := newEngine(t)
	if r := d.Score(closeEv(s, 11, at(3), "198.51.100.7", "", 1<<20-1)); r.Score != 0 {
		t.Errorf("under 1 MiB: %v", ruleIDs(d, r.Rules))
	}
	if r := d.Score(closeEv(s, 11, at(3), "198.51.100.7", "", 1<<20)); !has(d, r, "net.egress_volume") {
		t.Errorf("1 MiB: %v", ruleIDs(d, r.Rules))
	}
}
