package kevent_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent/keventtest"
)

func connCloseEvents() []kevent.Event {
	h := hdr(kevent.KindConnClose, 0, 42)
	return []kevent.Event{
		&kevent.ConnClose{Header: h, ConnectTime: 400, Dest: netip.MustParseAddrPort("127.0.0.1:8443"),
			OldState: kevent.TCPEstablished, NewState: kevent.TCPFinWait1, BytesAcked: 101, BytesReceived: 50, SndUna: 1101, WriteSeq: 1101},
		&kevent.ConnClose{Header: h, ConnectTime: 400, Dest: netip.MustParseAddrPort("[2001:db8::1]:443"),
			OldState: kevent.TCPSynSent, NewState: kevent.TCPClose, Err: 111},
		&kevent.ConnClose{Header: h, Dest: netip.MustParseAddrPort("10.0.0.1:22"),
			OldState: kevent.TCPFinWait2, NewState: kevent.TCPClose, BytesAcked: 12, BytesReceived: 4, FinReceived: true, SndUna: 7, WriteSeq: 7},
	}
}

func TestDecodeConnClose(t *testing.T) {
	for _, ev := range connCloseEvents() {
		got, err := kevent.Decode(keventtest.Encode(ev))
		require.NoError(t, err)
		require.Equal(t, ev, got)
	}
	// a v4-mapped destination (an AF_INET6 socket connected to IPv4)
	mapped := &kevent.ConnClose{Header: hdr(kevent.KindConnClose, 0, 1), Dest: netip.MustParseAddrPort("[::ffff:10.1.2.3]:80"),
		OldState: kevent.TCPEstablished, NewState: kevent.TCPClose}
	got, err := kevent.Decode(keventtest.Encode(mapped))
	require.NoError(t, err)
	require.Equal(t, "10.1.2.3:80", got.(*kevent.ConnClose).Dest.String())

	good := keventtest.Encode(connCloseEvents()[0])
	for name, tc := range map[string]struct {
		rec  []byte
		want error
	}{
		"short":        {good[:90], kevent.ErrShort},
		"family":       {patch(good, hdrSize+36, 1), kevent.ErrCorrupt},
		"old state":    {patch(good, hdrSize+56, 0), kevent.ErrCorrupt},
		"new state":    {patch(good, hdrSize+57, 200), kevent.ErrCorrupt},
		"error errno":  {patch(good, hdrSize+35, 0x80), kevent.ErrCorrupt},
		"wrong length": {good[:hdrSize+8], kevent.ErrShort},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kevent.Decode(tc.rec)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
		})
	}
}

// The kernel's counters count the SYN and the FINs; Bytes takes them out,
// and adds what was written but not acked to what was sent.
func TestConnCloseBytes(t *testing.T) {
	for name, tc := range map[string]struct {
		c                     kevent.ConnClose
		sent, acked, received uint64
	}{
		// close(2) of an established connection: our FIN is not queued yet
		"closed, all acked": {kevent.ConnClose{OldState: kevent.TCPEstablished, NewState: kevent.TCPFinWait1,
			BytesAcked: 101, BytesReceived: 50, SndUna: 1101, WriteSeq: 1101}, 100, 100, 50},
		"closed with data in flight": {kevent.ConnClose{OldState: kevent.TCPEstablished, NewState: kevent.TCPFinWait1,
			BytesAcked: 1 + 4000, SndUna: 5000, WriteSeq: 5000 + 60000}, 64000, 4000, 0},
		"sequence numbers wrap": {kevent.ConnClose{OldState: kevent.TCPEstablished, NewState: kevent.TCPFinWait1,
			BytesAcked: 1 << 33, SndUna: 0xfffffff0, WriteSeq: 0x10}, 1<<33 - 1 + 0x20, 1<<33 - 1, 0},
		// the peer closed first: its FIN is in bytes_received
		"peer closed first": {kevent.ConnClose{OldState: kevent.TCPCloseWait, NewState: kevent.TCPLastAck,
			BytesAcked: 11, BytesReceived: 21, FinReceived: true, SndUna: 9, WriteSeq: 9}, 10, 10, 20},
		// after a half close, at the end: our FIN acked
		"half closed, FIN acked": {kevent.ConnClose{OldState: kevent.TCPFinWait2, NewState: kevent.TCPClose,
			BytesAcked: 1 + 5 + 1, BytesReceived: 30 + 1, FinReceived: true, SndUna: 100, WriteSeq: 100}, 5, 5, 30},
		// a reset while our FIN was still out
		"reset in FIN_WAIT1": {kevent.ConnClose{OldState: kevent.TCPFinWait1, NewState: kevent.TCPClose, Err: 104,
			BytesAcked: 1 + 10, SndUna: 100, WriteSeq: 100 + 20 + 1}, 30, 10, 0},
		"refused": {kevent.ConnClose{OldState: kevent.TCPSynSent, NewState: kevent.TCPClose, Err: 111,
			SndUna: 5, WriteSeq: 6}, 0, 0, 0},
		"zero counters": {kevent.ConnClose{OldState: kevent.TCPEstablished, NewState: kevent.TCPClose}, 0, 0, 0},
	} {
		sent, acked, received := tc.c.Bytes()
		require.Equal(t, [3]uint64{tc.sent, tc.acked, tc.received}, [3]uint64{sent, acked, received}, name)
	}
}
