package kevent

import (
	"fmt"
	"math"
	"net/netip"
)

// TCP states (include/net/tcp_states.h), as ConnClose reports them.
const (
	TCPEstablished = 1
	TCPSynSent     = 2
	TCPSynRecv     = 3
	TCPFinWait1    = 4
	TCPFinWait2    = 5
	TCPTimeWait    = 6
	TCPClose       = 7
	TCPCloseWait   = 8
	TCPLastAck     = 9
	TCPListen      = 10
	TCPClosing     = 11
	tcpMaxStates   = 13
)

const connCloseSize = hdrSize + 64

// ConnClose is the end of a TCP connection a session process connected
// (struct conn_close_event), once per connect. The header names the
// socket's owner, the process that connected; it may come after that
// process's exit record (an exit closes its files after sched_process_exit).
type ConnClose struct {
	Header
	ConnectTime uint64         // CLOCK_BOOTTIME ns of the connect
	Dest        netip.AddrPort // v4-mapped v6 addresses are unmapped
	// OldState -> NewState is the transition reported (TCP*).
	OldState, NewState uint8
	// Err is the error that ended it (positive errno; 0: none).
	Err int32
	// The kernel's counters, raw: BytesAcked counts the SYN (and the FIN
	// once acked), BytesReceived the peer's FIN. Use Bytes.
	BytesAcked    uint64
	BytesReceived uint64
	SndUna        uint32
	WriteSeq      uint32
	FinReceived   bool // the peer's FIN came (SOCK_DONE)
}

// Established reports whether the connect completed (the handshake did).
func (c *ConnClose) Established() bool {
	return c.OldState != TCPSynSent && c.OldState != TCPSynRecv
}

// finQueued: our FIN was in the sequence space before the transition.
func finQueued(state uint8) bool {
	switch state {
	case TCPFinWait1, TCPFinWait2, TCPClosing, TCPLastAck, TCPTimeWait:
		return true
	}
	return false
}

// Bytes returns the payload of the connection at the record: sent, the
// bytes the process wrote to it; acked, those of them the peer
// acknowledged (the rest were in flight or queued: they may still arrive,
// or, after a reset, never); received, the bytes that came from the peer.
// The SYN and the FINs are not payload. A connect that never completed
// moved none.
func (c *ConnClose) Bytes() (sent, acked, received uint64) {
	if !c.Established() {
		return 0, 0, 0
	}
	dec := func(v *uint64) {
		if *v > 0 {
			*v--
		}
	}
	acked, received = c.BytesAcked, c.BytesReceived
	unacked := uint64(c.WriteSeq - c.SndUna)
	dec(&acked) // the SYN
	if finQueued(c.OldState) {
		if unacked == 0 {
			dec(&acked) // our FIN, acked
		} else {
			unacked-- // our FIN, not yet
		}
	}
	if c.FinReceived {
		dec(&received)
	}
	sent = acked + unacked
	if sent < acked {
		sent = math.MaxUint64 // garbled counters: saturate, never wrap
	}
	return sent, acked, received
}

func decodeConnClose(h Header, b []byte) (*ConnClose, error) {
	if len(b) < connCloseSize {
		return nil, ErrShort
	}
	c := &ConnClose{
		Header:        h,
		ConnectTime:   le.Uint64(b[hdrSize:]),
		BytesAcked:    le.Uint64(b[hdrSize+8:]),
		BytesReceived: le.Uint64(b[hdrSize+16:]),
		SndUna:        le.Uint32(b[hdrSize+24:]),
		WriteSeq:      le.Uint32(b[hdrSize+28:]),
		Err:           int32(le.Uint32(b[hdrSize+32:])),
		OldState:      b[hdrSize+56],
		NewState:      b[hdrSize+57],
		FinReceived:   b[hdrSize+58] != 0,
	}
	family, port := le.Uint16(b[hdrSize+36:]), le.Uint16(b[hdrSize+38:])
	raw := b[hdrSize+40 : hdrSize+56]
	var addr netip.Addr
	switch family {
	case 2:
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	case 10:
		addr = netip.AddrFrom16([16]byte(raw)).Unmap()
	default:
		return nil, fmt.Errorf("%w: conn_close family %d", ErrCorrupt, family)
	}
	if c.OldState == 0 || c.OldState >= tcpMaxStates || c.NewState == 0 || c.NewState >= tcpMaxStates {
		return nil, fmt.Errorf("%w: conn_close states %d -> %d", ErrCorrupt, c.OldState, c.NewState)
	}
	if c.Err < 0 {
		return nil, fmt.Errorf("%w: conn_close error %d", ErrCorrupt, c.Err)
	}
	c.Dest = netip.AddrPortFrom(addr, port)
	return c, nil
}
