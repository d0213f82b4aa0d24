package kevent_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent/keventtest"
)

func intentEvents() []kevent.Event {
	h := kevent.Header{Version: kevent.Version, PID: 7, TID: 8, Time: 9, Start: 10}
	return []kevent.Event{
		&kevent.DNS{Header: withKind(h, kevent.KindDNS), Conn: 0xffff888001234560, Total: 29, Dir: kevent.DNSSent, Transport: 2,
			Resolver: netip.MustParseAddrPort("127.0.0.53:53"), Payload: []byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")},
		&kevent.DNS{Header: withKind(h, kevent.KindDNS), Conn: 1, Total: 4000, Dir: kevent.DNSReceived, Transport: 1,
			Resolver: netip.MustParseAddrPort("[2001:db8::53]:53"), Payload: []byte{0, 2, 1, 2}},
		&kevent.TLS{Header: withKind(h, kevent.KindTLS), Conn: 0x55d0c0ffee00, Total: 70000, Offset: 65536, Dir: kevent.TLSWrite, Truncated: true,
			Data: []byte("POST /v1/messages HTTP/1.1\r\n")},
		&kevent.TLS{Header: withKind(h, kevent.KindTLS), Conn: 2, Total: 0, Dir: kevent.TLSRead, Data: []byte{}},
	}
}

func TestIntentRoundTrip(t *testing.T) {
	for _, ev := range intentEvents() {
		got, err := kevent.Decode(keventtest.Encode(ev))
		require.NoError(t, err)
		require.Equal(t, ev, got)
	}
	require.Equal(t, "dns", kevent.KindDNS.String())
	require.Equal(t, "tls", kevent.KindTLS.String())
}

func TestIntentCorrupt(t *testing.T) {
	evs := intentEvents()
	dns := keventtest.Encode(evs[0])
	tls := keventtest.Encode(evs[2])
	for name, b := range map[string][]byte{
		"dns short":        dns[:60],
		"dns payload long": dns[:len(dns)-1],
		"dns family":       patch(dns, 46, 7),
		"dns direction":    patch(dns, 50, 5),
		"tls short":        tls[:40],
		"tls data long":    tls[:len(tls)-1],
		"tls direction":    patch(tls, 50, 2),
		"tls beyond total": patch(tls, 42, 0), // total 70000 -> 4464: chunk at 65536 ends past it
	} {
		ev, err := kevent.Decode(b)
		require.Error(t, err, name)
		require.Nil(t, ev, name)
	}
}

func patch(b []byte, at int, v byte) []byte {
	c := bytes.Clone(b)
	c[at] = v
	return c
}
