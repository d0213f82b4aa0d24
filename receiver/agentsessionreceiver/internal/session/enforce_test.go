package session

import (
	"net/netip"
	"testing"

	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// Enforcement records become agent.enforce.action logs whose action values
// agent_score scores: "deny"/"kill" as enforce.denied, "audit" as
// enforce.action; the hook comes from the record for LSM opens.
func TestEnforceEvents(t *testing.T) {
	for _, backend := range []string{BackendLSM, BackendTracepoint} {
		tr, _ := newTestTracker(t, func(c *Config) {
			c.Backend = backend
			c.EnforceRules = map[uint32]string{0: "deny_open:/etc/shadow", kevent.RuleAllowConnect: "allow_connect"}
		})
		const s0 = 1000 * sec
		tr.Handle(execEv(100, s0, s0+1*ms, kevent.FlagExecMatched, 1, "/opt/aw/aw-agent", "/w", "aw-agent"))
		tr.Handle(&kevent.Enforce{Header: hdr(kevent.KindEnforce, 0, 100, s0, s0+2*ms), Rule: 0,
			What: kevent.EnforceOpen, Action: kevent.EnforceDeny, Path: "/etc/shadow"})
		tr.Handle(openEv(100, s0, s0+3*ms, 0, "/etc/shadow", 0, -1))
		tr.Handle(&kevent.Enforce{Header: hdr(kevent.KindEnforce, 0, 100, s0, s0+4*ms), Rule: kevent.RuleAllowConnect,
			What: kevent.EnforceConnect, Action: kevent.EnforceAudit, Port: 443, Addr: netip.MustParseAddr("192.0.2.1")})
		tr.Handle(&kevent.Enforce{Header: hdr(kevent.KindEnforce, 0, 100, s0, s0+5*ms), Rule: 7,
			What: kevent.EnforceOpen, Action: kevent.EnforceKill, Path: "/x"})
		ld, _ := tr.Flush(wall(s0 + 10*ms))
		var got []map[string]any
		for _, l := range flatLogs(t, ld) {
			if l.event == semconv.EventEnforce {
				got = append(got, l.attrs)
			}
		}
		if len(got) != 3 {
			t.Fatalf("%s: %d enforce logs, want 3", backend, len(got))
		}
		openHook, connHook := "tracepoint/syscalls/sys_exit_open*", "tracepoint/syscalls/sys_enter_connect"
		if backend == BackendLSM {
			openHook, connHook = "lsm/file_open", "lsm/socket_connect"
		}
		want := []map[string]any{
			{semconv.EnforceRule: "deny_open:/etc/shadow", semconv.EnforceAction: "deny", semconv.FilePath: "/etc/shadow", semconv.Hook: openHook},
			{semconv.EnforceRule: "allow_connect", semconv.EnforceAction: "audit", semconv.NetworkPeerAddress: "192.0.2.1",
				semconv.NetworkPeerPort: int64(443), semconv.Hook: connHook},
			{semconv.EnforceRule: "rule-7", semconv.EnforceAction: "kill", semconv.FilePath: "/x"},
		}
		for i, w := range want {
			for k, v := range w {
				if got[i][k] != v {
					t.Errorf("%s: enforce %d: %s = %v, want %v", backend, i, k, got[i][k], v)
				}
			}
		}
	}
}

// The hook of an open comes from the record: lsm/file_open for LSM records.
func TestLSMOpenHook(t *testing.T) {
	h := hooksFor(BackendTracepoint)
	if got := h.forOpen(kevent.SyscallLSMFileOpen); got != "lsm/file_open" {
		t.Fatalf("hook %q", got)
	}
}
