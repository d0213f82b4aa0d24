package kevent_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent/keventtest"
)

func TestRoundTrip(t *testing.T) {
	h := kevent.Header{Kind: kevent.KindExec, Version: kevent.Version, Flags: kevent.FlagArgsTruncated, PID: 7, TID: 8, Time: 9, Start: 10}
	for _, ev := range []kevent.Event{
		&kevent.Exec{Header: h, PPID: 1, UID: 2, EUID: 3, PStart: 4, Exe: "/bin/x", Filename: "x", Args: []string{"x", "-y"}, Cwd: "/w", Home: "/home/sandbox"},
		&kevent.Open{Header: withKind(h, kevent.KindOpen), Ret: -13, OpenFlags: 0o2, Mode: 0o644, Syscall: kevent.SyscallOpenat2, Path: "/etc/shadow"},
		&kevent.Connect{Header: withKind(h, kevent.KindConnect), Ret: 0, Family: 10, Port: 443, Addr: netip.MustParseAddr("2001:db8::2"), SockType: 1},
		&kevent.Connect{Header: withKind(h, kevent.KindConnect), Family: 2, Port: 53, Addr: netip.MustParseAddr("10.0.0.1"), SockType: 2},
		&kevent.Exit{Header: withKind(h, kevent.KindExit), Status: 3 << 8},
		&kevent.Fork{Header: withKind(h, kevent.KindFork), PPID: 6, PStart: 5},
		&kevent.Enforce{Header: withKind(h, kevent.KindEnforce), Rule: 3, What: kevent.EnforceOpen, Action: kevent.EnforceDeny, Path: "/root/.ssh/id_rsa"},
		&kevent.Enforce{Header: withKind(h, kevent.KindEnforce), Rule: kevent.RuleAllowConnect, What: kevent.EnforceConnect, Action: kevent.EnforceKill, Port: 443, Addr: netip.MustParseAddr("10.0.0.1")},
		&kevent.Enforce{Header: withKind(h, kevent.KindEnforce), Rule: 1, What: kevent.EnforceConnect, Action: kevent.EnforceAudit, Port: 22, Addr: netip.MustParseAddr("2001:db8::2")},
		&kevent.ConnClose{Header: withKind(h, kevent.KindConnClose), ConnectTime: 3, Dest: netip.MustParseAddrPort("10.0.0.1:443"),
			OldState: kevent.TCPEstablished, NewState: kevent.TCPFinWait1, BytesAcked: 101, BytesReceived: 7, SndUna: 9, WriteSeq: 19},
	} {
		got, err := kevent.Decode(keventtest.Encode(ev))
		require.NoError(t, err)
		require.Equal(t, ev, got)
	}
}

func withKind(h kevent.Header, k kevent.Kind) kevent.Header { h.Kind = k; return h }
